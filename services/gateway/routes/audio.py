"""Upload and list a project's recordings."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query, UploadFile, status
from pydantic import BaseModel, Field

from bdisc.app.keys import audio_prefix
from bdisc.app.object_file import open_object
from bdisc.audio.formats import AUDIO_EXTENSIONS, is_audio_path
from bdisc.audio.reader import probe, probe_file
from bdisc.discovery.recordings import timestamp_from_name
from bdisc.errors import UnsupportedFormat, UserError
from bdisc.ports.object_store import check_key
from gateway.deps import DepsDep, ExpiresS, ProjectDep
from gateway.uploads import receive

router = APIRouter(prefix="/v1/projects/{project}/audio", tags=["audio"])


class AudioInfoOut(BaseModel):
    path: str
    duration_s: float
    sample_rate: int
    channels: int
    timestamp: str | None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AudioInfoOut)
def upload(
    project: ProjectDep,
    deps: DepsDep,
    file: UploadFile,
    path: Annotated[
        str,
        Query(
            description="where it goes, e.g. siteA/20230604_053000"
            ".wav; the folder is the deployment"
        ),
    ],
) -> AudioInfoOut:
    """Upload one recording. It is checked (format, header, duration) before it is stored;
    nothing is stored for a file that fails."""
    rel = check_key(path)
    if not is_audio_path(PurePosixPath(rel)):
        raise UnsupportedFormat(
            f"{rel}: not a supported audio file ({', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / PurePosixPath(rel).name
        receive(file.file, local, deps.max_upload_bytes)
        info = probe(local)  # AudioError -> 4xx, nothing stored
        deps.objects.put_file(audio_prefix(project.id) + rel, local)
    stamp = timestamp_from_name(rel)
    return AudioInfoOut(
        path=rel,
        duration_s=round(info.duration_s, 3),
        sample_rate=info.sample_rate,
        channels=info.channels,
        timestamp=stamp.isoformat() if stamp else None,
    )


@router.get("")
def list_audio(project: ProjectDep, deps: DepsDep, prefix: str = "") -> dict[str, list[str]]:
    root = audio_prefix(project.id)
    return {"recordings": [k[len(root) :] for k in deps.objects.list(root + prefix)]}


class PresignIn(BaseModel):
    path: str


class UploadFormOut(BaseModel):
    url: str = Field(description="POST here as multipart/form-data")
    fields: dict[str, str] = Field(description="form fields to send as they are, before the file")
    max_bytes: int = Field(description="the largest file the store accepts with this form")


class PresignOut(BaseModel):
    path: str
    upload: UploadFormOut


@router.post(":presign", response_model=PresignOut)
def presign_upload(
    project: ProjectDep, deps: DepsDep, body: PresignIn, expires_s: ExpiresS = 3600
) -> PresignOut:
    """A form to POST a (large) recording straight to the object store with, then POST
    :register to check it in. The store itself refuses another path, an empty file, a
    file over the gateway's upload limit, or an upload after ``expires_s``."""
    rel = check_key(body.path)
    if not is_audio_path(PurePosixPath(rel)):
        raise UnsupportedFormat(f"{rel}: not a supported audio file")
    form = deps.objects.upload_form(
        audio_prefix(project.id) + rel, deps.max_upload_bytes, expires_s
    )
    return PresignOut(
        path=rel, upload=UploadFormOut(url=form.url, fields=form.fields, max_bytes=form.max_bytes)
    )


class RegisterIn(BaseModel):
    prefix: str = ""


@router.post(":register")
def register(project: ProjectDep, deps: DepsDep, body: RegisterIn) -> dict[str, object]:
    """Check recordings already in the bucket (uploaded with :presign, or copied there):
    each is probed through ranged reads of its header (a 24-h recording costs kilobytes,
    not a download); what is not usable audio is removed and reported."""
    root = audio_prefix(project.id)
    if body.prefix:
        check_key(body.prefix.rstrip("/"))
    accepted, refused = [], []
    for key in list(deps.objects.list(root + body.prefix)):
        rel = key[len(root) :]
        try:
            if not is_audio_path(PurePosixPath(rel)):
                raise UnsupportedFormat("not a supported audio file")
            size = deps.objects.size(key)
            with open_object(deps.objects, key, size) as source:
                info = probe_file(source, rel, size)
            accepted.append({"path": rel, "duration_s": round(info.duration_s, 3)})
        except UserError as exc:
            deps.objects.delete(key)
            refused.append({"path": rel, "error": exc.kind, "message": exc.message})
    return {"accepted": accepted, "refused": refused}
