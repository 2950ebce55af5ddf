"""AgentBox dialect units, no sockets: envelope codec, event translation, keys, routing."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from agenthub.core.bus import Publication
from agenthub.core.node import Node
from agenthub.core.store import ApiKeyRecord, Store
from agenthub.dialects import agentbox as ab


def test_decode_keeps_the_request_id_of_a_bad_request() -> None:
    env = ab.decode('{"id": "m1", "type": "subscribe", "payload": {"channel": "task"}, "timestamp": 1}')
    assert (env.id, env.type, env.payload) == ("m1", "subscribe", {"channel": "task"})
    with pytest.raises(ab.AgentBoxError) as err:
        ab.decode('{"id": "m2", "payload": {}}')
    assert err.value.request_id == "m2" and err.value.code is ab.Code.BAD_REQUEST
    for bad in ("nope", "[]", '{"type": ""}', b"\xff"):
        with pytest.raises(ab.AgentBoxError):
            ab.decode(bad)


def test_encode_envelope() -> None:
    msg = json.loads(ab.encode("pong", {}, "m1"))
    assert msg["id"] == "m1" and msg["type"] == "pong" and isinstance(msg["timestamp"], int)
    assert "id" not in json.loads(ab.encode("event", {}))


def _pub(event: str, payload: dict[str, Any], stream: str = "run:task-1.2") -> Publication:
    return Publication(stream, 1, "e", event, payload)


@pytest.mark.parametrize(
    ("event", "payload", "event_type", "data"),
    [
        ("agent", {"stream": "lifecycle", "data": {"phase": "start"}}, "task.started", {}),
        (
            "agent",
            {"stream": "assistant", "data": {"delta": "lo", "text": "hello"}},
            "agent.message",
            {"content": "lo", "text": "hello"},
        ),
        ("agent", {"stream": "thinking", "data": {"delta": "hm", "text": "hm"}}, "agent.thinking", {"content": "hm"}),
        (
            "agent",
            {
                "stream": "tool",
                "data": {"phase": "result", "name": "calc", "toolCallId": "c", "result": "4", "isError": False},
            },
            "agent.tool_call",
            {"name": "calc", "result": "4", "is_error": False},
        ),
        (
            "chat",
            {"state": "final", "message": {"content": [{"type": "text", "text": "4"}]}},
            "task.completed",
            {"result": "4"},
        ),
        ("chat", {"state": "aborted", "message": {"content": []}}, "task.cancelled", {"partial": ""}),
        ("chat", {"state": "error", "errorMessage": "boom"}, "task.failed", {"error": "boom"}),
    ],
)
def test_run_events_translate_under_the_task_topic(
    event: str, payload: dict[str, Any], event_type: str, data: dict[str, Any]
) -> None:
    prepared = ab.prepare(_pub(event, {"runId": "task-1.2", **payload}), lambda run_id: "alice")
    assert prepared is not None and prepared.owner == "alice"
    frame = json.loads(prepared.frame("task"))
    assert frame["type"] == "event"
    body = frame["payload"]
    assert (body["channel"], body["topic"], body["event_type"]) == ("task", "task-1", event_type)
    assert body["data"]["task_id"] == "task-1" and body["data"]["turn_id"] == "task-1.2"
    assert data.items() <= body["data"].items()


def test_unowned_runs_and_other_events_are_not_translated() -> None:
    final = {"runId": "r1", "state": "final", "message": {"content": []}}
    assert ab.prepare(_pub("chat", final), lambda run_id: None) is None  # an operator run
    assert ab.prepare(_pub("chat", {**final, "state": "delta"}), lambda run_id: "u") is None
    assert ab.prepare(_pub("presence", {}, "system"), lambda run_id: "u") is None


class _Keys:
    def __init__(self, *records: ApiKeyRecord) -> None:
        self.records = {r.key_id: r for r in records}

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self.records.get(key_id)


async def test_keys_are_checked_by_hash_and_revocation() -> None:
    key, record = ab.new_api_key("alice", ["admin", "tasks", "admin"], 1)
    assert key.startswith("ab_") and record.key_hash == ab.hash_key(key) and key not in record.key_hash
    assert record.scopes == ["admin", "tasks"]
    store = cast(Store, _Keys(record))
    user = await ab.authenticate_key(store, key)
    assert (user.user_id, user.scopes) == ("alice", frozenset({"admin", "tasks"}))
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "ab_short", "sk_" + key[3:], None, 42):
        with pytest.raises(ab.AgentBoxError, match="invalid API key"):
            await ab.authenticate_key(store, bad)
    record.revoked_ms = 2
    with pytest.raises(ab.AgentBoxError, match="revoked"):
        await ab.authenticate_key(store, key)
    with pytest.raises(ValueError, match="invalid user id"):
        ab.new_api_key("a:b", [], 1)


class _Sock:
    def __init__(self, user: str) -> None:
        self.user = ab.User(user, frozenset(), "k")
        self.got: list[str] = []

    def push(self, prepared: Any, droppable: bool) -> None:
        self.got.append(prepared.event_type)


def test_hub_offers_events_only_to_the_owners_sockets_and_alerts_to_all() -> None:
    runs = {"t1": SimpleNamespace(owner="alice")}
    hub = ab.AgentBoxHub(cast(Node, SimpleNamespace(runs=SimpleNamespace(get=runs.get))))
    a1, a2, b = _Sock("alice"), _Sock("alice"), _Sock("bob")
    for sock in (a1, a2, b):
        hub.add(cast(ab.AgentBoxSession, sock), sock.user.user_id)
    hub.deliver(_pub("chat", {"runId": "t1", "state": "error"}, "run:t1"))
    alert = {"owner": None, "topic": "alerts", "event_type": "alert", "data": {}}
    hub.deliver(_pub(ab.SYSTEM_EVENT, alert, "agentbox:alerts"))
    assert a1.got == a2.got == ["task.failed", "alert"] and b.got == ["alert"]
    hub.remove(cast(ab.AgentBoxSession, b))
    assert set(hub.users) == {"alice"}


def test_channel_subscription_all_minus_excluded() -> None:
    sub = ab.ChannelSub(all=True, excluded={"t2"})
    assert sub.matches("t1") and not sub.matches("t2")
    sub = ab.ChannelSub(topics={"t2"})
    assert sub.matches("t2") and not sub.matches("t1")
