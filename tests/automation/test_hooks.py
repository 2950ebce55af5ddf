"""``POST /hooks/<name>`` against a real gateway process: the door's refusals, runs visible to operators."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
import pytest

from ..conftest import GatewayProc
from ..e2e._util import Client
from ._common import run_events

HOOK_TOKEN = "hook-secret-0123456789"
HOOKS = {
    "enabled": True,
    "token_sha256": hashlib.sha256(HOOK_TOKEN.encode()).hexdigest(),  # only the hash is in the config
    "max_body_bytes": 2048,
    "mappings": [
        {"name": "ci", "action": "agent", "message_template": "CI {{payload.build.status}}: what is {{expr}}"},
        {"name": "monitor", "action": "wake", "text_template": "monitor says {{payload.alert}}", "wake_mode": "now"},
    ],
}
AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}"}


@pytest.fixture
def hooked(make_gateway: Any) -> GatewayProc:
    gw: GatewayProc = make_gateway("--token", "gateway-token", config={"hooks": HOOKS})
    return gw


async def post(gw: GatewayProc, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    async with aiohttp.ClientSession() as http, http.post(f"{gw.http}{path}", json=body, headers=headers, **kw) as res:
        text = await res.text()
        return res.status, res.headers, text


async def test_a_right_token_starts_a_run_every_operator_sees(hooked: GatewayProc) -> None:
    async with Client.open_connected(hooked.url, auth={"token": "gateway-token"}) as op:
        status, _, text = await post(hooked, "/hooks/agent", {"message": "what is 7*6", "name": "smoke"}, AUTH)
        assert status == 200, text
        answer = json.loads(text)
        assert answer["ok"] is True and answer["sessionKey"].startswith("hook:")
        run_id = answer["runId"]
        final = await op.until(
            lambda f: (
                f.get("event") == "chat" and f["payload"].get("runId") == run_id and f["payload"]["state"] == "final"
            ),
            timeout=20,
        )
        assert "42" in final["payload"]["message"]["content"][0]["text"]
        lifecycle = [p["data"]["phase"] for p in run_events(op.events, run_id, "agent") if p["stream"] == "lifecycle"]
        assert lifecycle == ["start", "end"]

        # x-openclaw-token works too; a mapped hook renders its template from the JSON body.
        status, _, text = await post(
            hooked, "/hooks/ci", {"build": {"status": "green"}, "expr": "2+2"}, {"x-openclaw-token": HOOK_TOKEN}
        )
        assert status == 200, text
        mapped = json.loads(text)["runId"]
        final = await op.until(
            lambda f: (
                f.get("event") == "chat" and f["payload"].get("runId") == mapped and f["payload"]["state"] == "final"
            ),
            timeout=20,
        )
        assert 'You said: "CI green: what is 2+2"' in final["payload"]["message"]["content"][0]["text"]

        status, _, text = await post(hooked, "/hooks/monitor", {"alert": "cpu hot"}, AUTH)
        assert status == 200 and json.loads(text) == {"ok": True, "mode": "now", "eventOutcome": "queued"}
        beat = await op.until(lambda f: f.get("event") == "heartbeat", timeout=20)
        assert beat["payload"]["status"] in ("ok-token", "skipped")

        # An Idempotency-Key replays the first answer instead of starting a second run.
        body = {"message": "once", "idempotencyKey": "hook-once-1"}
        first = json.loads((await post(hooked, "/hooks/agent", body, AUTH))[2])
        again = json.loads((await post(hooked, "/hooks/agent", body, AUTH))[2])
        assert first == again


REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("/hooks/agent", {"json": {"message": "hi"}}, 401, "no token"),
    ("/hooks/agent", {"json": {"message": "hi"}, "headers": {"Authorization": "Bearer wrong"}}, 401, "wrong"),
    ("/hooks/agent", {"json": {"message": "hi"}, "headers": {"Authorization": "Bearer gateway-token"}}, 401, "gw"),
    ("/hooks/agent?token=" + HOOK_TOKEN, {"json": {"message": "hi"}}, 400, "query token"),
    ("/hooks/nope", {"json": {"message": "hi"}, "headers": AUTH}, 404, "unknown hook"),
    ("/hooks/agent", {"data": "message=hi", "headers": AUTH}, 415, "form body"),
    ("/hooks/agent", {"json": {"message": "x" * 5000}, "headers": AUTH}, 413, "too large"),
    ("/hooks/agent", {"data": b"{not json", "headers": {**AUTH, "Content-Type": "application/json"}}, 400, "json"),
    ("/hooks/agent", {"json": ["a list"], "headers": AUTH}, 400, "not an object"),
    ("/hooks/agent", {"json": {"name": "no message"}, "headers": AUTH}, 400, "message required"),
    ("/hooks/agent", {"json": {"message": "x", "sessionKey": "main"}, "headers": AUTH}, 400, "session key"),
    ("/hooks/wake", {"json": {"text": "x", "mode": "later"}, "headers": AUTH}, 400, "bad mode"),
]


async def test_the_door_refuses_clearly(hooked: GatewayProc) -> None:
    async with aiohttp.ClientSession() as http:
        for path, kwargs, status, reason in REFUSALS:
            async with http.post(f"{hooked.http}{path}", **kwargs) as res:
                assert res.status == status, (reason, await res.text())
                if status == 415:  # the listener's door (web.origin) refuses non-JSON bodies before any route
                    assert "application/json" in await res.text(), reason
                elif status != 401:
                    assert (await res.json())["ok"] is False, reason

        async def chunks() -> Any:  # no Content-Length: the limit is enforced while reading
            for _ in range(3):
                yield b" " * 1000
            yield b'{"message": "hi"}'

        headers = {**AUTH, "Content-Type": "application/json"}
        async with http.post(f"{hooked.http}/hooks/agent", data=chunks(), headers=headers) as res:
            assert res.status == 413, await res.text()
        async with http.get(f"{hooked.http}/hooks/agent", headers=AUTH) as res:
            assert res.status == 405 and res.headers["Allow"] == "POST"
    async with Client.open_connected(hooked.url, auth={"token": "gateway-token"}) as op:
        assert (await op.ok("status"))["runs"]["active"] == []  # refused requests started nothing


async def test_wrong_tokens_count_against_the_shared_auth_limiter(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(
        "--token", "gateway-token", config={"hooks": HOOKS, "security": {"auth_max_failures": 3}}
    )
    bad = {"Authorization": "Bearer wrong"}
    assert (await post(gw, "/hooks/agent", {"message": "x"}, bad))[0] == 401
    assert (await post(gw, "/hooks/agent", {"message": "x"}, bad))[0] == 401
    status, headers, _ = await post(gw, "/hooks/agent", {"message": "x"}, bad)
    assert status == 429 and int(headers["Retry-After"]) > 0
    # Locked out: even the right hook token waits, and so does a WebSocket connect from this IP.
    assert (await post(gw, "/hooks/agent", {"message": "x"}, AUTH))[0] == 429
    async with Client.open(gw.url) as c:
        res = await c.connect(auth={"token": "gateway-token"})
        assert not res["ok"] and res["error"]["details"]["code"] == "AUTH_RATE_LIMITED"


async def test_hooks_refuse_to_start_without_a_token(make_gateway: Any) -> None:
    with pytest.raises(RuntimeError, match=r"hooks\.enabled needs a hook token"):
        make_gateway(config={"hooks": {"enabled": True}})
    gw: GatewayProc = make_gateway(config={"hooks": {"enabled": True}}, env={"AGENTHUB_HOOKS_TOKEN": HOOK_TOKEN})
    assert (await post(gw, "/hooks/wake", {"text": "hi"}, AUTH))[0] == 200
    assert "hook-secret" not in gw.output()
