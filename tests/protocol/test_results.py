"""The published protocol schema covers results and event payloads, and the live gateway keeps to it.

Also the AsyncAPI document, validated against AsyncAPI's own JSON Schema (npm ``@asyncapi/specs``,
installed in ``clients/ts`` by ``make test``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from agenthub.protocol.methods import EVENT_SCOPES, METHODS
from agenthub.protocol.results import RESULTS
from agenthub.protocol.schema import protocol_schema
from agenthub.web.asyncapi import asyncapi_document
from tests.e2e._util import Client, collect_run, start_agent

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = ROOT / "clients/ts/node_modules/@asyncapi/specs/schemas/3.0.0.json"
SCHEMA = protocol_schema()


def conforms(ref: str, instance: Any) -> None:
    """Validate ``instance`` against ``#/definitions/X`` of the generated schema (raises on a mismatch)."""
    jsonschema.Draft202012Validator({"$ref": ref, "definitions": SCHEMA["definitions"]}).validate(instance)


def test_schema_lists_results_and_every_event_payload() -> None:
    assert set(SCHEMA["events"]) == set(EVENT_SCOPES)
    for name, entry in SCHEMA["events"].items():
        assert entry["payload"].removeprefix("#/definitions/") in SCHEMA["definitions"], name
    with_results = {m for m, e in SCHEMA["methods"].items() if "result" in e}
    assert with_results == set(RESULTS) - {"connect"}
    assert SCHEMA["methods"]["agent"]["accepted"] == "#/definitions/AgentAccepted"
    assert SCHEMA["connect"]["result"] == "#/definitions/HelloOk"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_a_wrong_payload_does_not_conform() -> None:
    with pytest.raises(jsonschema.ValidationError):
        conforms("#/definitions/AgentEventPayload", {"runId": "r", "seq": 0, "stream": "x", "ts": 1, "data": {}})
    with pytest.raises(jsonschema.ValidationError):
        conforms("#/definitions/RunResult", {"runId": "r", "status": "finished", "summary": ""})


async def test_live_results_and_events_conform(gateway: Any) -> None:
    async with Client.open(gateway.url) as c:
        assert c.challenge["event"] == "connect.challenge"
        conforms(SCHEMA["events"]["connect.challenge"]["payload"], c.challenge["payload"])
        hello = await c.connect()
        assert hello["ok"]
        conforms(SCHEMA["connect"]["result"], hello["payload"])
        assert (await c.call("sessions.subscribe", {}))["ok"]
        rid, accepted = await start_agent(c, "what is 5*5", "results-1", session="results")
        conforms(SCHEMA["methods"]["agent"]["accepted"], accepted)
        run = await collect_run(c, accepted["runId"], rid)
        conforms(SCHEMA["methods"]["agent"]["result"], run.final)
        for frame in run.frames:
            conforms(SCHEMA["events"][frame["event"]]["payload"], frame["payload"])
        calls: dict[str, dict[str, Any]] = {
            "health": {},
            "agent.wait": {"runId": accepted["runId"]},
            "agent.replay": {"runId": accepted["runId"], "afterSeq": 1},
            "chat.history": {"sessionKey": "results"},
            "chat.abort": {"sessionKey": "results"},
            "sessions.list": {},
            "system-presence": {},
            "node.list": {},
            "models.list": {},
            "agents.list": {},
            "config.get": {},
            "sessions.reset": {"key": "results"},
            "chat.send": {"sessionKey": "results", "message": "hi", "idempotencyKey": "results-2"},
        }
        assert set(calls) == set(RESULTS) - {"connect", "agent"}
        for method, params in calls.items():
            payload = await c.ok(method, params)
            conforms(SCHEMA["methods"][method]["result"], payload)
        changed = await c.until(lambda f: f.get("event") == "sessions.changed")
        conforms(SCHEMA["events"]["sessions.changed"]["payload"], changed["payload"])
        presence = await c.until(lambda f: f.get("event") == "presence")
        conforms(SCHEMA["events"]["presence"]["payload"], presence["payload"])


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    if not ASYNCAPI_SCHEMA.exists():
        pytest.fail(f"{ASYNCAPI_SCHEMA} is missing: run `make clients` (part of make test)")
    spec = json.loads(ASYNCAPI_SCHEMA.read_text())
    doc = json.loads(json.dumps(asyncapi_document()))
    errors = list(jsonschema.Draft7Validator(spec).iter_errors(doc))
    assert errors == [], [e.message[:200] for e in errors[:5]]
    # The validator does catch a broken document.
    broken = {**doc, "channels": {"native": {"address": 5}}}
    assert list(jsonschema.Draft7Validator(spec).iter_errors(broken))
    native = doc["channels"]["native"]["messages"]
    assert {f"req_{m.replace('.', '_').replace('-', '_')}" for m in METHODS} <= set(native)
    assert {f"event_{e.replace('.', '_').replace('-', '_')}" for e in EVENT_SCOPES} <= set(native)
    for key in native:  # every message of an operation is one of its channel's
        assert key in doc["components"]["messages"]


def test_asyncapi_is_served(gateway: Any) -> None:
    res = httpx.get(gateway.http + "/asyncapi.json", timeout=10)
    assert res.status_code == 200 and res.json()["asyncapi"] == "3.0.0"
