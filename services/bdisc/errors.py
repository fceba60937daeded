"""The one exception tree of bdisc, and its mapping to HTTP and gRPC status codes.

    BdiscError                     HTTP  gRPC
    ├── UserError                   400   INVALID_ARGUMENT     the caller can fix it; no retry
    │   ├── ConfigError             422   INVALID_ARGUMENT     invalid parameters or settings
    │   ├── NotFound                404   NOT_FOUND            a named input does not exist
    │   ├── IncompatibleArtifact    409   FAILED_PRECONDITION  provenance differs: refuse to mix
    │   ├── NameClash               409   FAILED_PRECONDITION  two recordings' outputs share a name
    │   ├── TooLarge                413   RESOURCE_EXHAUSTED   an upload past the size limit
    │   ├── TooManyRequests         429   RESOURCE_EXHAUSTED   a key past its request rate
    │   ├── Conflict                409   ABORTED              a write based on a stale revision
    │   └── AudioError              422   INVALID_ARGUMENT     one recording cannot be used
    │       ├── UnsupportedFormat   415                        not an audio format we read
    │       ├── CorruptAudio        422                        the decoder failed
    │       ├── EmptyAudio          422                        zero frames
    │       └── TooShort            422                        shorter than the minimum window
    ├── Unauthorized                401   UNAUTHENTICATED      no API key, or an unknown one
    ├── Forbidden                   403   PERMISSION_DENIED    the key is another project's
    ├── ServerError                 (the status it names)      a bdisc server answered an error
    ├── Retryable                   503   UNAVAILABLE          transient trouble; retry with backoff
    └── InternalError               500   INTERNAL             a bug: report it

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


class NameClash(UserError):
    """A recording whose outputs would take the same file names as another recording's
    of the run (``x.flac`` and ``x.mp3``); ``context["kept"]`` is the one processed."""

    http_status = 409
    grpc_code = "FAILED_PRECONDITION"


class TooLarge(UserError):
    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class TooManyRequests(UserError):
    """A key (or an address without one) past its rate: retry after ``retry_after_s``."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class Conflict(UserError):
    """A write that names a revision older than the current one (someone else saved
    first); ``context`` holds the current revision."""

    http_status = 409
    grpc_code = "ABORTED"


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


class PartShort(CorruptAudio):
    """A part of a long recording ended before its last window: the file is shorter
    than its header says (the recording is then processed whole)."""


class Unauthorized(BdiscError):
    http_status = 401
    grpc_code = "UNAUTHENTICATED"


class Forbidden(BdiscError):
    http_status = 403
    grpc_code = "PERMISSION_DENIED"


class ServerError(BdiscError):
    """A bdisc server (the gateway, seen from ``bdisc submit``) answered with an error;
    ``context["status"]`` is its HTTP status."""


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
        "RESOURCE_EXHAUSTED": TooLarge,
        "ABORTED": Conflict,
        "UNAUTHENTICATED": Unauthorized,
        "PERMISSION_DENIED": Forbidden,
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
