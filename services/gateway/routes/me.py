"""Which project does this key belong to (clients start here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header

from gateway.deps import DepsDep, Unauthorized, api_key

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
