"""The one exception tree of bdisc, and its mapping to HTTP and gRPC status codes.

    BdiscError
    ├── UserError                 the caller can fix it; never retried
    │   ├── ConfigError           invalid parameters or settings
    │   ├── NotFound              a named input or artifact does not exist
    │   ├── IncompatibleArtifact  provenance differs (model, rate, window, ...): refuse to mix
    │   └── AudioError            one recording cannot be used (a per-file error; the run goes on)
    │       ├── UnsupportedFormat not one of the audio formats we read
    │       ├── CorruptAudio      the decoder failed (truncated, not audio, broken header)
    │       ├── EmptyAudio        zero frames
    │       └── TooShort          shorter than the minimum window length
    ├── Retryable                 transient infrastructure trouble; try again with backoff
    └── InternalError             a bug: report it

Every error carries a message for people and a `context` dict for logs.
The transport adapters (HTTP gateway, gRPC servers, queue consumers) translate with
`http_status()` and `grpc_code()` and nothing else.
"""

from __future__ import annotations

from typing import Any


class BdiscError(Exception):
    """Base of every error bdisc raises on purpose."""

    http_status: int = 500
    grpc_code: str = "INTERNAL"
    retryable: bool = False

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    @property
    def kind(self) -> str:
        """Short machine-readable name, e.g. ``CorruptAudio``."""
        return type(self).__name__


class UserError(BdiscError):
    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ConfigError(UserError):
    http_status = 422


class NotFound(UserError):
    http_status = 404
    grpc_code = "NOT_FOUND"


class IncompatibleArtifact(UserError):
    http_status = 409
    grpc_code = "FAILED_PRECONDITION"


class AudioError(UserError):
    http_status = 422


class UnsupportedFormat(AudioError):
    http_status = 415


class CorruptAudio(AudioError):
    pass


class EmptyAudio(AudioError):
    pass


class TooShort(AudioError):
    pass


class Retryable(BdiscError):
    http_status = 503
    grpc_code = "UNAVAILABLE"
    retryable = True


class InternalError(BdiscError):
    pass


def http_status(exc: BaseException) -> int:
    """HTTP status for any exception; unknown exceptions are bugs (500)."""
    return exc.http_status if isinstance(exc, BdiscError) else 500


def grpc_code(exc: BaseException) -> str:
    """Name of the ``grpc.StatusCode`` member for any exception."""
    return exc.grpc_code if isinstance(exc, BdiscError) else "INTERNAL"


def from_grpc_code(code: str, message: str) -> BdiscError:
    """The error a gRPC status names (a client of our gRPC services raises it again)."""
    by_code: dict[str, type[BdiscError]] = {
        "INVALID_ARGUMENT": ConfigError,
        "NOT_FOUND": NotFound,
        "FAILED_PRECONDITION": IncompatibleArtifact,
        "UNAVAILABLE": Retryable,
        "DEADLINE_EXCEEDED": Retryable,
    }
    return by_code.get(code, InternalError)(message)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BdiscError) and exc.retryable


def describe(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of any exception, for per-file error reports."""
    if isinstance(exc, BdiscError):
        return exc.kind, exc.message
    return type(exc).__name__, str(exc) or repr(exc)
