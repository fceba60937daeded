"""The review app in the browser: its static files, and its session. The project's API key
is entered once (``POST /ui/session``) and kept in an HttpOnly, SameSite=Strict cookie
(Secure over HTTPS), so it is never in a URL, a page's script or a log line."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, Field

from bdisc.errors import Unauthorized
from bdisc.webapp import STATIC
from gateway.deps import SESSION_COOKIE, DepsDep

router = APIRouter(tags=["review app"], include_in_schema=False)
SESSION_S = 12 * 3600


class SessionIn(BaseModel):
    key: str = Field(min_length=8, max_length=200)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui/")
def ui_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@router.post("/ui/session")
def open_session(
    body: SessionIn, deps: DepsDep, request: Request, response: Response
) -> dict[str, str]:
    """Check the key and keep it in the session cookie; returns its project."""
    project = deps.projects.by_key(body.key)
    if project is None:
        raise Unauthorized("unknown API key")
    response.set_cookie(
        SESSION_COOKIE,
        body.key,
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return {"project": project.id}


@router.get("/ui/session")
def session(deps: DepsDep, request: Request) -> dict[str, str]:
    """The session's project (or the key's, for clients that send one: ``bdisc review``)."""
    key = request.cookies.get(SESSION_COOKIE) or request.headers.get("x-api-key")
    project = deps.projects.by_key(key) if key else None
    if project is None:
        raise Unauthorized("no session: log in with the project's API key")
    return {"project": project.id}


@router.delete("/ui/session")
def close_session(response: Response) -> dict[str, str]:
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"status": "logged out"}
