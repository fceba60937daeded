from __future__ import annotations

import pytest

from bdisc import errors


def test_every_error_maps_to_http_and_grpc() -> None:
    cases = {
        errors.ConfigError("x"): (422, "INVALID_ARGUMENT"),
        errors.NotFound("x"): (404, "NOT_FOUND"),
        errors.IncompatibleArtifact("x"): (409, "FAILED_PRECONDITION"),
        errors.NameClash("x"): (409, "FAILED_PRECONDITION"),
        errors.UnsupportedFormat("x"): (415, "INVALID_ARGUMENT"),
        errors.CorruptAudio("x"): (422, "INVALID_ARGUMENT"),
        errors.TooLarge("x"): (413, "RESOURCE_EXHAUSTED"),
        errors.Conflict("x"): (409, "ABORTED"),
        errors.Unauthorized("x"): (401, "UNAUTHENTICATED"),
        errors.Forbidden("x"): (403, "PERMISSION_DENIED"),
        errors.Retryable("x"): (503, "UNAVAILABLE"),
        errors.InternalError("x"): (500, "INTERNAL"),
        ValueError("bug"): (500, "INTERNAL"),
    }
    for exc, (http, grpc) in cases.items():
        assert errors.http_status(exc) == http
        assert errors.grpc_code(exc) == grpc
        if isinstance(exc, errors.BdiscError) and grpc != "INTERNAL":
            # a client of our gRPC services raises what the server raised (the nearest kind)
            again = errors.from_grpc_code(grpc, "x")
            assert errors.grpc_code(again) == grpc
    assert errors.is_retryable(errors.Retryable("x"))
    assert not errors.is_retryable(errors.CorruptAudio("x"))


def test_describe_carries_kind_and_context() -> None:
    exc = errors.TooShort("0.3 s", path="/a.wav")
    assert errors.describe(exc) == ("TooShort", "0.3 s")
    assert exc.context == {"path": "/a.wav"}
    assert errors.describe(KeyError("k"))[0] == "KeyError"


@pytest.mark.parametrize(
    "error", [errors.NotFound("x"), errors.ConfigError("x"), errors.Retryable("x")]
)
def test_grpc_codes_map_back_to_the_same_errors(error: Exception) -> None:
    again = errors.from_grpc_code(errors.grpc_code(error), "x")
    assert errors.grpc_code(again) == errors.grpc_code(error)
    assert type(again).http_status == type(error).http_status  # type: ignore[attr-defined]
