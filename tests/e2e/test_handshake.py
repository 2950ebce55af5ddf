"""Handshake over real sockets: the happy path and every rejection."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agenthub.client import DeviceIdentity, GatewayClient, InvalidRequestError

from ..conftest import GatewayProc, RawClient
from ..conftest import signed_device as device


async def test_hello_ok(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as c:
        assert c.challenge["event"] == "connect.challenge"
        assert set(c.challenge["payload"]) == {"nonce", "ts"}
        ident = DeviceIdentity.generate()
        res = await c.connect(device=device(c, ident))
        assert res["ok"] is True
        hello = res["payload"]
        assert hello["type"] == "hello-ok" and hello["protocol"] == 4
        assert {"health", "agent", "chat.send", "chat.abort", "agent.replay"} <= set(hello["features"]["methods"])
        assert {"agent", "chat", "tick", "presence", "shutdown"} <= set(hello["features"]["events"])
        assert hello["auth"]["role"] == "operator"
        assert "operator.admin" in hello["auth"]["scopes"]
        assert hello["policy"]["tickIntervalMs"] == 15000
        assert hello["snapshot"]["authMode"] == "none"
        assert hello["snapshot"]["health"]["ok"] is True
        # The first event after hello-ok is numbered 1: our own presence broadcast.
        presence = await c.until(lambda f: f.get("event") == "presence")
        assert presence["seq"] == 1 and presence["stateVersion"]["presence"] >= 1
        assert any(p.get("deviceId") == ident.device_id for p in presence["payload"]["presence"])


@pytest.mark.parametrize(
    ("first", "rid"),
    [
        ("this is not json", None),
        ('{"type":"event","event":"hello","payload":{}}', None),
        ('{"type":"req","id":"x1","method":"health","params":{}}', "x1"),
        ('{"type":"req","id":"x2","method":"connect","params":{"minProtocol":3}}', "x2"),
    ],
)
async def test_wrong_first_frame(gateway: GatewayProc, first: str, rid: str | None) -> None:
    async with RawClient.open(gateway.url) as c:
        await c.send(first)
        if rid is not None:
            res = await c.recv()
            assert res["type"] == "res" and res["id"] == rid and res["ok"] is False
            assert res["error"]["code"] == "INVALID_REQUEST"
        code, _ = await c.closed()
        assert code == 1008


async def test_protocol_mismatch_closes_1002(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as c:
        res = await c.connect(minProtocol=5, maxProtocol=7)
        assert res["error"]["code"] == "INVALID_REQUEST" and res["error"]["message"] == "protocol mismatch"
        assert (await c.closed())[0] == 1002


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("signature", "DEVICE_AUTH_SIGNATURE"),
        ("stale", "DEVICE_AUTH_STALE"),
        ("nonce", "DEVICE_AUTH_NONCE_MISMATCH"),
        ("id", "DEVICE_AUTH_ID_MISMATCH"),
    ],
)
async def test_device_rejections(gateway: GatewayProc, kind: str, code: str) -> None:
    ident = DeviceIdentity.generate()
    async with RawClient.open(gateway.url) as c:
        dev = device(c, ident)
        if kind == "signature":
            dev = device(c, ident, scopes=["operator.read"])  # signed for other scopes than requested
        elif kind == "stale":
            dev = device(c, ident, signed_at=int(time.time() * 1000) - 10 * 60_000)
        elif kind == "nonce":
            dev = device(c, ident, nonce="x" * 32)
        else:
            dev["id"] = DeviceIdentity.generate().device_id
        res = await c.connect(device=dev)
        assert res["ok"] is False and res["error"]["details"]["code"] == code
        assert (await c.closed())[0] == 1008


async def test_replayed_nonce_from_an_earlier_connection(gateway: GatewayProc) -> None:
    ident = DeviceIdentity.generate()
    async with RawClient.open(gateway.url) as first:
        captured = device(first, ident)
        assert (await first.connect(device=captured))["ok"]
    async with RawClient.open(gateway.url) as second:
        res = await second.connect(device=captured)
        assert res["error"]["details"]["code"] == "DEVICE_AUTH_NONCE_MISMATCH"
        assert (await second.closed())[0] == 1008


async def test_token_auth(make_gateway: Any) -> None:
    gw = make_gateway(env={"AGENTHUB_GATEWAY_TOKEN": "s3cret-token"})
    async with RawClient.open(gw.url) as c:
        res = await c.connect()
        # OpenClaw's recovery hints ride along, so its clients know what to do next.
        assert res["error"]["details"] == {
            "code": "AUTH_TOKEN_MISSING",
            "authReason": "token_missing",
            "canRetryWithDeviceToken": False,
            "recommendedNextStep": "update_auth_configuration",
        }
        assert (await c.closed())[0] == 1008
    async with RawClient.open(gw.url) as c:
        res = await c.connect(auth={"token": "wrong"})
        assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        assert res["error"]["details"]["recommendedNextStep"] == "update_auth_credentials"
        assert (await c.closed())[0] == 1008
    async with RawClient.open(gw.url) as c:
        ident = DeviceIdentity.generate()
        res = await c.connect(auth={"token": "wrong"}, device=device(c, ident, token="wrong"))
        # A device that sent the shared token may retry with its own device token.
        assert res["error"]["details"]["canRetryWithDeviceToken"] is True
        assert res["error"]["details"]["recommendedNextStep"] == "retry_with_device_token"
    async with RawClient.open(gw.url) as c:
        ident = DeviceIdentity.generate()
        res = await c.connect(auth={"token": "s3cret-token"}, device=device(c, ident, token="s3cret-token"))
        assert res["ok"] and res["payload"]["snapshot"]["authMode"] == "token"
    async with GatewayClient(gw.url, token="s3cret-token", device=DeviceIdentity.generate()) as sdk:
        assert (await sdk.call("health"))["ok"] is True
    with pytest.raises(InvalidRequestError) as info:
        async with GatewayClient(gw.url, token="nope"):
            pass
    assert info.value.details["code"] == "AUTH_TOKEN_MISMATCH"
    assert info.value.details["authReason"] == "token_mismatch"
    assert "s3cret-token" not in gw.output()


async def test_oversized_pre_connect_frame_closes_1009(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as c:
        await c.send('{"type":"req","id":"big","method":"connect","params":{"pad":"' + "x" * 70_000 + '"}}')
        assert (await c.closed())[0] == 1009


async def test_handshake_timeout(make_gateway: Any) -> None:
    gw = make_gateway(config={"limits": {"handshake_timeout_ms": 300}})
    async with RawClient.open(gw.url) as c:
        started = time.monotonic()
        code, reason = await c.closed(timeout=5)
        assert code == 1008 and reason == "connect timeout"
        assert time.monotonic() - started < 4


def test_refuses_public_bind_without_token(tmp_path: Any) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "agenthub", "gateway", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "without a token" in proc.stderr


async def test_after_connect_bad_frames_keep_or_close(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as c:
        await c.connect()
        res = await c.call("chat.history", {"sessionKey": 5})
        assert res["error"]["code"] == "INVALID_REQUEST" and "sessionKey" in res["error"]["message"]
        res = await c.call("connect", {})
        assert res["error"]["message"] == "already connected"
        assert (await c.call("health"))["ok"] is True
        await c.send("garbage")
        assert (await c.closed())[0] == 1008
