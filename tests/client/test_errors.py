"""Every wire error code, and every detail code the gateway sends, maps to its own exception."""

from __future__ import annotations

import pytest

from agenthub.client import errors
from agenthub.protocol.errors import ErrorCode


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_error_code_has_its_exception(code: ErrorCode) -> None:
    exc = errors.error_from_shape({"code": code.value, "message": "m", "retryable": True})
    assert type(exc) is not errors.GatewayError
    assert exc.code == code and exc.message == "m" and exc.retryable is True
    assert isinstance(exc, errors.GatewayError)


@pytest.mark.parametrize(
    ("code", "detail", "cls"),
    [
        ("INVALID_REQUEST", "AUTH_TOKEN_MISSING", errors.AuthTokenMissingError),
        ("INVALID_REQUEST", "AUTH_TOKEN_MISMATCH", errors.AuthTokenMismatchError),
        ("INVALID_REQUEST", "DEVICE_AUTH_SIGNATURE", errors.DeviceAuthError),
        ("INVALID_REQUEST", "REPLAY_GAP", errors.ReplayGapError),
    ],
)
def test_detail_codes_refine_the_exception(code: str, detail: str, cls: type[errors.GatewayError]) -> None:
    exc = errors.error_from_shape({"code": code, "message": "m", "details": {"code": detail}})
    assert type(exc) is cls and exc.detail_code == detail


def test_unknown_codes_fall_back_to_the_root() -> None:
    exc = errors.error_from_shape({"code": "SOMETHING_NEW", "message": "m"})
    assert type(exc) is errors.GatewayError and exc.code == "SOMETHING_NEW"
    assert type(errors.error_from_shape({"code": "INVALID_REQUEST", "message": "unknown method: x"})) is (
        errors.UnknownMethodError
    )


def test_a_missing_thing_is_an_invalid_request_naming_it() -> None:
    exc = errors.error_from_shape(
        {"code": "INVALID_REQUEST", "message": "unknown run: r1", "details": {"reason": "RUN_NOT_FOUND"}}
    )
    assert type(exc) is errors.NotFoundError and isinstance(exc, errors.InvalidRequestError)
    assert exc.code == "INVALID_REQUEST"
