"""The frames agenthub sends validate against OpenClaw's published protocol schema.

These name the definitions they expect; beyond them, ``tests/conftest.py`` checks every frame any
test's ``RawClient`` receives (``tests/_conformance.py``).

The schema comes from the npm package ``@openclaw/gateway-protocol`` (installed
by ``make test`` into tests/npm). One documented extension: agent events carry
``sessionKey`` and ``agentId``, as OpenClaw's own gateway adds them when it
broadcasts (its server-chat ``agentPayload``) though its 2026.9.1 schema's
``AgentEvent`` does not list them; they are checked here and then removed.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from .. import _conformance
from ..conftest import GatewayProc, RawClient

SCHEMA_PATH = _conformance.SCHEMA_PATH


@pytest.fixture(scope="module")
def openclaw() -> dict[str, Any]:
    try:
        return _conformance.load_schema()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


def validator(schema: dict[str, Any], name: str) -> Draft202012Validator:
    sub = {"$ref": f"#/definitions/{name}", "definitions": schema["definitions"]}
    return Draft202012Validator(sub)


def assert_valid(schema: dict[str, Any], name: str, instance: Any) -> None:
    errors = sorted(validator(schema, name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


async def test_frames_match_openclaw_schema(gateway: GatewayProc, openclaw: dict[str, Any]) -> None:
    async with RawClient.open(gateway.url) as c:
        assert_valid(openclaw, "GatewayFrame", c.challenge)
        res = await c.connect()
        assert_valid(openclaw, "GatewayFrame", res)
        assert_valid(openclaw, "HelloOk", res["payload"])
        health = await c.call("health")
        assert_valid(openclaw, "GatewayFrame", health)
        err = await c.call("no.such.method")
        assert_valid(openclaw, "GatewayFrame", err)
        assert_valid(openclaw, "ErrorShape", err["error"])

        rid = await c.request("agent", {"message": "what is 6*7", "idempotencyKey": "schema-run-1"})
        first = await c.response(rid)
        assert_valid(openclaw, "GatewayFrame", first)
        final = await c.response(rid, timeout=30)
        assert_valid(openclaw, "GatewayFrame", final)
        assert final["payload"]["status"] == "ok"

    kinds: dict[str, int] = {}
    for frame in c.events:
        assert_valid(openclaw, "GatewayFrame", frame)
        payload = frame["payload"]
        if frame["event"] == "agent":
            assert payload.pop("sessionKey") == "agent:main:main" and payload.pop("agentId") == "main"
            assert_valid(openclaw, "AgentEvent", payload)
            kinds[payload["stream"]] = kinds.get(payload["stream"], 0) + 1
        elif frame["event"] == "chat":
            assert_valid(openclaw, "ChatEvent", payload)
            kinds["chat." + payload["state"]] = kinds.get("chat." + payload["state"], 0) + 1
        elif frame["event"] == "presence":
            for entry in payload["presence"]:
                assert_valid(openclaw, "PresenceEntry", entry)
    assert {"lifecycle", "thinking", "tool", "assistant", "chat.delta", "chat.final"} <= set(kinds)


async def test_aborted_and_error_chat_events_match(gateway: GatewayProc, openclaw: dict[str, Any]) -> None:
    async with RawClient.open(gateway.url) as c:
        await c.connect()
        rid = await c.request("agent", {"message": "[long] tell me", "idempotencyKey": "schema-abort"})
        await c.response(rid)
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        await c.call("chat.abort", {"sessionKey": "main"})
        aborted = await c.until(lambda f: f.get("event") == "chat" and f["payload"]["state"] == "aborted")
        assert_valid(openclaw, "ChatEvent", aborted["payload"])

        rid = await c.request("agent", {"message": "[fail] now", "idempotencyKey": "schema-fail"})
        await c.response(rid)
        errored = await c.until(lambda f: f.get("event") == "chat" and f["payload"]["state"] == "error")
        assert_valid(openclaw, "ChatEvent", errored["payload"])
        lifecycle = [
            f["payload"]
            for f in c.events
            if f.get("event") == "agent"
            and f["payload"]["runId"] == "schema-fail"
            and f["payload"]["stream"] == "lifecycle"
        ]
        for p in lifecycle:
            p.pop("sessionKey")
            p.pop("agentId")
            assert_valid(openclaw, "AgentEvent", p)
        assert lifecycle[-1]["data"]["phase"] == "error"
