"""Device pairing and device tokens over real sockets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from agenthub.client import DeviceIdentity

from ..conftest import GatewayProc, RawClient
from ..conftest import signed_device as signed
from .test_openclaw_schema import SCHEMA_PATH, assert_valid

ALL = ["operator.read", "operator.write", "operator.admin"]


async def event(c: RawClient, name: str) -> dict[str, Any]:
    """The oldest unconsumed event ``name`` (events read while awaiting responses included)."""
    for i, frame in enumerate(c.events):
        if frame.get("event") == name:
            return c.events.pop(i)
    frame = await c.until(lambda f: f.get("event") == name)
    c.events.remove(frame)
    return frame


async def try_connect(
    gw: GatewayProc, ident: DeviceIdentity, scopes: list[str], device_token: str | None = None
) -> tuple[dict[str, Any], int | None]:
    """One connect attempt; returns the response and, on refusal, the close code."""
    async with RawClient.open(gw.url) as c:
        extra: dict[str, Any] = {}
        if device_token is not None:
            extra["auth"] = {"deviceToken": device_token}
        res = await c.connect(scopes=scopes, device=signed(c, ident, scopes=scopes, token=device_token or ""), **extra)
        code = None if res["ok"] else (await c.closed())[0]
        return res, code


async def test_remote_pairing_end_to_end(make_gateway: Any) -> None:
    gw = make_gateway("--require-pairing")
    ident = DeviceIdentity.generate()
    scopes = ["operator.read", "operator.write"]
    async with RawClient.open(gw.url) as op:
        # The holder of gateway access without a device identity is the operator who approves.
        assert (await op.connect(scopes=["operator.admin"]))["ok"]

        res, code = await try_connect(gw, ident, scopes)
        assert res["ok"] is False and code == 1008
        err = res["error"]
        assert err["code"] == "NOT_PAIRED" and err["message"] == "pairing required"
        assert err["details"]["code"] == "PAIRING_REQUIRED" and err["details"]["reason"] == "not-paired"
        request_id = err["details"]["requestId"]

        ev = await event(op, "device.pair.requested")
        p = ev["payload"]
        assert p["requestId"] == request_id and p["deviceId"] == ident.device_id
        assert p["scopes"] == scopes and p["role"] == "operator" and p["clientId"] == "test"
        assert p["remoteIp"] == "127.0.0.1" and p["platform"] == "linux" and p["publicKey"]
        schema = json.loads(SCHEMA_PATH.read_text())
        assert_valid(schema, "DevicePairRequestedEvent", p)

        listed = (await op.call("device.pair.list"))["payload"]
        assert [r["requestId"] for r in listed["pending"]] == [request_id]
        # Asking again while pending keeps the same request.
        res, _ = await try_connect(gw, ident, scopes)
        assert res["error"]["details"]["requestId"] == request_id

        approved = await op.call("device.pair.approve", {"requestId": request_id})
        assert approved["ok"], approved
        resolved = await event(op, "device.pair.resolved")
        assert resolved["payload"]["decision"] == "approved" and resolved["payload"]["deviceId"] == ident.device_id
        assert_valid(schema, "DevicePairResolvedEvent", resolved["payload"])
        assert (await op.call("device.pair.approve", {"requestId": request_id}))["error"]["details"]["reason"].endswith(
            "_NOT_FOUND"
        )

        # Approved: the device gets in and receives its device token, once.
        res, _ = await try_connect(gw, ident, scopes)
        assert res["ok"], res
        auth = res["payload"]["auth"]
        token = auth["deviceToken"]
        assert len(token) >= 32 and auth["scopes"] == scopes and auth["issuedAtMs"] > 0
        assert_valid(schema, "HelloOk", res["payload"])
        assert token not in gw.output()

        # The device token replaces the shared credential; using it mints nothing new.
        res, _ = await try_connect(gw, ident, scopes, device_token=token)
        assert res["ok"] and "deviceToken" not in res["payload"]["auth"]
        # It is bound to the role: the same token does not open a node connection.
        async with RawClient.open(gw.url) as c:
            res = await c.connect(
                role="node",
                scopes=[],
                auth={"deviceToken": token},
                device=signed(c, ident, scopes=[], role="node", token=token),
            )
            # Refused as a token that does not match (the same token just opened an operator socket),
            # not for a bad signature or a missing credential.
            assert res["ok"] is False and res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH", res
            assert (await c.closed())[0] == 1008

        # Rotation: the old token is refused at once, the new one works.
        rotated = await op.call("device.token.rotate", {"deviceId": ident.device_id, "role": "operator"})
        new_token = rotated["payload"]["token"]
        assert new_token != token and rotated["payload"]["scopes"] == scopes
        res, code = await try_connect(gw, ident, scopes, device_token=token)
        assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH" and code == 1008

        # Revocation closes the device's open sockets.
        async with RawClient.open(gw.url) as dev:
            res = await dev.connect(
                scopes=scopes,
                auth={"deviceToken": new_token},
                device=signed(dev, ident, scopes=scopes, token=new_token),
            )
            assert res["ok"]
            revoked = await op.call("device.token.revoke", {"deviceId": ident.device_id, "role": "operator"})
            assert revoked["ok"] and revoked["payload"]["closed"] == 1
            code, reason = await dev.closed()
            assert code == 1008 and reason == "device token revoked"
        res, code = await try_connect(gw, ident, scopes, device_token=new_token)
        # The revoked token (accepted a moment ago) no longer matches.
        assert res["ok"] is False and res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH", res
        assert code == 1008

        # Removal unpairs: the next connect is a new pairing request.
        listed = (await op.call("device.pair.list"))["payload"]
        assert ident.device_id in [d["deviceId"] for d in listed["paired"]]
        assert "token" not in str(listed["paired"]).lower().replace("tokens", "")
        assert (await op.call("device.pair.remove", {"deviceId": ident.device_id}))["ok"]
        res, _ = await try_connect(gw, ident, scopes)
        assert res["error"]["code"] == "NOT_PAIRED"


async def test_reject_and_approver_cannot_grant_what_it_lacks(make_gateway: Any) -> None:
    gw = make_gateway("--require-pairing")
    ident = DeviceIdentity.generate()
    async with RawClient.open(gw.url) as op:
        assert (await op.connect(scopes=["operator.pairing", "operator.read"]))["ok"]
        res, _ = await try_connect(gw, ident, ALL)
        rid = res["error"]["details"]["requestId"]
        denied = await op.call("device.pair.approve", {"requestId": rid})
        assert denied["error"]["code"] == "FORBIDDEN"
        assert denied["error"]["details"]["missingScope"] in {"operator.admin", "operator.write"}
        rejected = await op.call("device.pair.reject", {"requestId": rid})
        assert rejected["ok"]
        ev = await event(op, "device.pair.resolved")
        assert ev["payload"]["decision"] == "rejected"
        assert (await op.call("device.pair.list"))["payload"]["pending"] == []
        # Rotation cannot hand out scopes the caller lacks either.
        res = await op.call("device.token.rotate", {"deviceId": ident.device_id, "role": "operator"})
        assert res["error"]["details"]["reason"].endswith("_NOT_FOUND")


async def test_loopback_first_sight_is_silent_but_upgrades_are_not(gateway: GatewayProc) -> None:
    ident = DeviceIdentity.generate()
    res, _ = await try_connect(gateway, ident, ["operator.read"])
    assert res["ok"] and res["payload"]["auth"]["deviceToken"]
    res, _ = await try_connect(gateway, ident, ["operator.read"])
    assert res["ok"]
    res, code = await try_connect(gateway, ident, ["operator.read", "operator.write"])
    assert res["error"]["code"] == "NOT_PAIRED" and code == 1008
    assert res["error"]["details"]["reason"] == "scope-upgrade"
    async with RawClient.open(gateway.url) as op:
        assert (await op.connect())["ok"]
        pending = (await op.call("device.pair.list"))["payload"]["pending"]
        assert pending[0]["deviceId"] == ident.device_id and pending[0]["isRepair"] is True
        assert (await op.call("device.pair.approve", {"requestId": pending[0]["requestId"]}))["ok"]
    res, _ = await try_connect(gateway, ident, ["operator.read", "operator.write"])
    assert res["ok"]


async def test_operator_without_pairing_scope_gets_no_pairing_events(make_gateway: Any) -> None:
    gw = make_gateway("--require-pairing")
    async with RawClient.open(gw.url) as reader, RawClient.open(gw.url) as op:
        assert (await reader.connect(scopes=["operator.read"]))["ok"]
        assert (await op.connect(scopes=["operator.pairing"]))["ok"]
        await try_connect(gw, DeviceIdentity.generate(), ["operator.read"])
        await event(op, "device.pair.requested")
        assert (await reader.call("health"))["ok"]
        assert not [f for f in reader.events if f.get("event", "").startswith("device.")]


def _cli(*args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", "devices", "--json", *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


async def test_devices_cli(make_gateway: Any) -> None:
    gw = make_gateway("--require-pairing")
    ident = DeviceIdentity.generate()
    res, _ = await try_connect(gw, ident, ["operator.read"])
    rid = res["error"]["details"]["requestId"]
    listed = await asyncio.to_thread(_cli, "--url", gw.url, "list")
    assert [r["requestId"] for r in listed["pending"]] == [rid]
    approved = await asyncio.to_thread(_cli, "--url", gw.url, "approve", rid)
    assert approved["device"]["deviceId"] == ident.device_id
    res, _ = await try_connect(gw, ident, ["operator.read"])
    assert res["ok"]
    rotated = await asyncio.to_thread(_cli, "--url", gw.url, "rotate", ident.device_id)
    assert rotated["token"] and rotated["role"] == "operator"
    revoked = await asyncio.to_thread(_cli, "--url", gw.url, "revoke", ident.device_id)
    assert revoked["deviceId"] == ident.device_id
    removed = await asyncio.to_thread(_cli, "--url", gw.url, "remove", ident.device_id)
    assert removed["deviceId"] == ident.device_id


async def test_devices_cli_with_the_gateway_token_approves_an_admin_device(make_gateway: Any) -> None:
    """OpenClaw's CLI asks for operator.admin; an approval grants only what the approver holds, so
    `agenthub devices` holding the gateway token asks for admin too (issue 10, item 11)."""
    gw = make_gateway("--token", "devices-token", "--require-pairing")
    ident = DeviceIdentity.generate()
    scopes = ["operator.admin"]
    async with RawClient.open(gw.url) as c:
        res = await c.connect(
            scopes=scopes,
            auth={"token": "devices-token"},
            device=signed(c, ident, scopes=scopes, token="devices-token"),
        )
    rid = res["error"]["details"]["requestId"]
    approved = await asyncio.to_thread(_cli, "--url", gw.url, "--token", "devices-token", "approve", rid)
    assert approved["device"]["scopes"] == scopes
    async with RawClient.open(gw.url) as c:
        res = await c.connect(
            scopes=scopes,
            auth={"token": "devices-token"},
            device=signed(c, ident, scopes=scopes, token="devices-token"),
        )
        assert res["ok"] and "operator.admin" in res["payload"]["auth"]["scopes"]
