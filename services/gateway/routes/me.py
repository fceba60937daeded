"""Which project does this key belong to (clients start here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field

from bdisc.app.webhooks import check_target
from bdisc.errors import Unauthorized
from gateway.deps import DepsDep, KeyHolderDep, api_key

router = APIRouter(prefix="/v1", tags=["projects"])


def _key(
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    return api_key(x_api_key, authorization)


@router.get("/me")
def me(deps: DepsDep, key: Annotated[str, Depends(_key)]) -> dict[str, str]:
    project = deps.projects.by_key(key)
    if project is None:
        raise Unauthorized("unknown API key")
    return {"project": project.id}


class WebhookIn(BaseModel):
    url: str = Field(
        description="called with a signed POST when a job of this project ends; "
        "empty to turn it off"
    )


@router.put("/projects/{project}/webhook")
def set_webhook(project: KeyHolderDep, deps: DepsDep, body: WebhookIn) -> dict[str, str]:
    """Set the project's webhook. Deliveries carry X-Bdisc-Signature: sha256=HMAC of the
    body with the secret returned here."""
    if body.url:  # a public http(s) target only: no internal service
        check_target(body.url, deps.webhook_allow_private)
    updated = deps.projects.set_webhook(project.id, body.url)
    return {"url": updated.webhook_url, "secret": updated.webhook_secret}


@router.post("/projects/{project}/key:rotate")
def rotate_key(project: KeyHolderDep, deps: DepsDep) -> dict[str, str]:
    """A new API key for the project, shown only in this answer; the key this request
    was made with stops working at once (rotate on a schedule, or at once when a key
    may have leaked). An operator whose project lost its key runs
    ``python -m gateway rotate-key PROJECT``."""
    return {"project": project.id, "api_key": deps.projects.rotate_key(project.id)}
