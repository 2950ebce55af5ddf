"""The connect machine without a socket: every rejection is a few lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agenthub.client.identity import DeviceIdentity
from agenthub.protocol.errors import CloseCode, HandshakeError
from agenthub.protocol.handshake import HandshakeLimits, HandshakeState, ServerHandshake, auth_failure_details
from agenthub.protocol.methods import ConnectParams

NOW = 1_800_000_000_000


def connect(params: dict[str, Any] | None = None, rid: str = "c1") -> str:
    base: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "1", "platform": "Linux", "mode": "cli", "deviceFamily": "Desktop"},
        "role": "operator",
        "scopes": ["operator.read"],
    }
    base.update(params or {})
    return json.dumps({"type": "req", "id": rid, "method": "connect", "params": base})


def signed(hs: ServerHandshake, ident: DeviceIdentity, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        nonce=hs.nonce,
        signed_at_ms=NOW,
        client_id="cli",
        client_mode="cli",
        role="operator",
        scopes=["operator.read"],
        token="",
        platform="Linux",
        device_family="Desktop",
    )
    fields.update(over)
    return {"device": ident.sign_connect(**fields)}


def reject(hs: ServerHandshake, text: str | bytes) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        hs.receive_connect(text, NOW)
    assert hs.state is HandshakeState.REJECTED
    return info.value


def test_accepts_and_negotiates_highest_common_protocol() -> None:
    hs = ServerHandshake(NOW)
    ok = hs.receive_connect(connect({"minProtocol": 1, "maxProtocol": 9}), NOW)
    assert ok.protocol == 4 and ok.request_id == "c1" and hs.state is HandshakeState.ACCEPTED
    assert ServerHandshake(NOW).receive_connect(connect({"maxProtocol": 3}), NOW).protocol == 3


def test_protocol_mismatch_closes_1002() -> None:
    err = reject(ServerHandshake(NOW), connect({"minProtocol": 5, "maxProtocol": 6}))
    assert err.message == "protocol mismatch" and err.close_code == CloseCode.PROTOCOL_ERROR
    assert err.request_id == "c1"


@pytest.mark.parametrize(
    ("text", "rid"),
    [
        ("not json", None),
        (json.dumps({"type": "event", "event": "x"}), None),
        (json.dumps({"type": "req", "id": "r9", "method": "health", "params": {}}), "r9"),
        (json.dumps({"type": "req", "id": "r8", "method": "connect", "params": {"minProtocol": 3}}), "r8"),
        (json.dumps({"type": "req", "id": "r7"}), "r7"),
    ],
)
def test_wrong_first_frame_is_invalid_request_then_1008(text: str, rid: str | None) -> None:
    err = reject(ServerHandshake(NOW), text)
    assert err.code == "INVALID_REQUEST" and err.close_code == CloseCode.POLICY_VIOLATION
    assert err.request_id == rid


def test_bad_params_name_the_field() -> None:
    err = reject(ServerHandshake(NOW), connect({"client": {"id": "x"}}))
    assert "client.version" in err.message


def test_oversized_pre_connect_frame_closes_1009() -> None:
    hs = ServerHandshake(NOW, HandshakeLimits(max_frame_bytes=1024))
    err = reject(hs, connect({"userAgent": "x" * 2000}))
    assert err.close_code == CloseCode.MESSAGE_TOO_BIG


def test_signed_device_accepted_v3_and_v2() -> None:
    ident = DeviceIdentity.generate()
    hs = ServerHandshake(NOW)
    ok = hs.receive_connect(connect(signed(hs, ident)), NOW + 1000)
    assert ok.device_id == ident.device_id
    # The v2 form (without platform and device family) is accepted too.
    from agenthub.protocol.device import b64url_encode, sign_payload, signature_payload

    hs2 = ServerHandshake(NOW)
    payload = signature_payload(
        version="v2",
        device_id=ident.device_id,
        client_id="cli",
        client_mode="cli",
        role="operator",
        scopes=["operator.read"],
        signed_at_ms=NOW,
        token="",
        nonce=hs2.nonce,
    )
    device = {
        "id": ident.device_id,
        "publicKey": b64url_encode(ident.public_key_raw),
        "signature": sign_payload(ident.private_key, payload),
        "signedAt": NOW,
        "nonce": hs2.nonce,
    }
    assert hs2.receive_connect(connect({"device": device}), NOW).device_id == ident.device_id


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda hs, ident: signed(hs, ident, role="node"), "DEVICE_AUTH_SIGNATURE"),
        (lambda hs, ident: signed(hs, ident, scopes=["operator.admin"]), "DEVICE_AUTH_SIGNATURE"),
        (lambda hs, ident: signed(hs, ident, token="other"), "DEVICE_AUTH_SIGNATURE"),
        (lambda hs, ident: signed(hs, ident, nonce="old-nonce"), "DEVICE_AUTH_NONCE_MISMATCH"),
        (lambda hs, ident: signed(hs, ident, signed_at_ms=NOW - 121_000), "DEVICE_AUTH_STALE"),
        (lambda hs, ident: signed(hs, ident, signed_at_ms=NOW + 121_000), "DEVICE_AUTH_STALE"),
        (
            lambda hs, ident: {"device": {**signed(hs, ident)["device"], "id": "ab" * 32}},
            "DEVICE_AUTH_ID_MISMATCH",
        ),
        (
            lambda hs, ident: {"device": {**signed(hs, ident)["device"], "publicKey": "!!"}},
            "DEVICE_AUTH_ID_MISMATCH",
        ),
    ],
)
def test_device_signature_attacks(mutate: Any, code: str) -> None:
    hs = ServerHandshake(NOW)
    err = reject(hs, connect(mutate(hs, DeviceIdentity.generate())))
    assert err.details == {"code": code} and err.close_code == CloseCode.POLICY_VIOLATION


def test_second_connect_is_a_misuse() -> None:
    hs = ServerHandshake(NOW)
    hs.receive_connect(connect(), NOW)
    with pytest.raises(RuntimeError):
        hs.receive_connect(connect(), NOW)


def _params(**over: Any) -> ConnectParams:
    base: dict[str, Any] = {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
    }
    base.update(over)
    return ConnectParams.model_validate(base)


def _device() -> dict[str, Any]:
    return {"id": "d", "publicKey": "k", "signature": "s", "signedAt": 1, "nonce": "n"}


@pytest.mark.parametrize(
    ("code", "reason", "step"),
    [
        ("AUTH_TOKEN_MISSING", "token_missing", "update_auth_configuration"),
        ("AUTH_TOKEN_MISMATCH", "token_mismatch", "update_auth_credentials"),
        ("AUTH_DEVICE_TOKEN_MISMATCH", "device_token_mismatch", "update_auth_credentials"),
        ("AUTH_PASSWORD_MISSING", "password_missing", "update_auth_configuration"),
        ("AUTH_PASSWORD_MISMATCH", "password_mismatch", "update_auth_credentials"),
        ("AUTH_RATE_LIMITED", "rate_limited", "wait_then_retry"),
    ],
)
def test_auth_failures_carry_openclaws_recovery_hints(code: str, reason: str, step: str) -> None:
    details = auth_failure_details(code, _params(auth={"token": "t"}))
    assert details == {
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": False,
        "recommendedNextStep": step,
    }


def test_a_device_with_a_wrong_shared_token_may_retry_with_its_device_token() -> None:
    with_device = _params(auth={"token": "t"}, device=_device())
    assert auth_failure_details("AUTH_TOKEN_MISMATCH", with_device)["recommendedNextStep"] == "retry_with_device_token"
    already = _params(auth={"token": "t", "deviceToken": "d"}, device=_device())
    assert auth_failure_details("AUTH_TOKEN_MISMATCH", already)["canRetryWithDeviceToken"] is False
    assert auth_failure_details("AUTH_TOKEN_MISMATCH", None)["canRetryWithDeviceToken"] is False
