"""The SDK against a real gateway: reconnect and resume, timeouts, typed errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agenthub.client import (
    AuthTokenMismatchError,
    AuthTokenMissingError,
    ConnectionLostError,
    ForbiddenError,
    GatewayClient,
    InvalidRequestError,
    NotFoundError,
    ReplayGapError,
    RequestTimeoutError,
    UnavailableError,
    UnknownMethodError,
)


def _assert_numbering(events: list[dict[str, Any]]) -> None:
    """Agent seqs 1..n once each, in order; each chat event carries the seq of the agent event before it."""
    agent = [i["payload"]["seq"] for i in events if i["event"] == "agent"]
    assert agent == list(range(1, len(agent) + 1)), "each agent seq exactly once, in order"
    last, chats = 0, []
    for i in events:
        if i["event"] == "agent":
            last = i["payload"]["seq"]
        else:
            assert i["payload"]["seq"] == last
            chats.append(last)
    assert len(chats) == len(set(chats)), "each chat event exactly once"


def _assistant_text(items: list[dict[str, Any]]) -> str:
    deltas = [
        i["payload"]["data"]["delta"]
        for i in items
        if i.get("event") == "agent" and i["payload"]["stream"] == "assistant"
    ]
    return "".join(deltas)


async def test_run_agent_streams_and_ends_with_the_result(make_gateway: Any) -> None:
    gw = make_gateway()
    async with GatewayClient(gw.url, heartbeat_interval=0) as client:
        items = [i async for i in client.run_agent("what is 6 times 7", session_key="s1")]
    assert items[0]["type"] == "accepted"
    assert items[-1]["type"] == "result" and items[-1]["status"] == "ok"
    _assert_numbering(items[1:-1])
    assert "42" in _assistant_text(items[1:-1])
    assert any(i.get("event") == "agent" and i["payload"]["stream"] == "tool" for i in items)


async def test_reconnect_mid_run_loses_and_duplicates_nothing(make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 15}})
    async with GatewayClient(gw.url, heartbeat_interval=0, backoff_base=0.05) as client:
        items: list[dict[str, Any]] = []
        drops = 0
        async for item in client.run_agent("tell me everything [long]", session_key="resume"):
            items.append(item)
            assistant = sum(1 for i in items if i.get("event") == "agent")
            if drops < 2 and assistant in (20, 80):
                drops += 1
                client.drop_connection()  # as a network failure: no close handshake
                await asyncio.sleep(0.3)  # the run goes on without us meanwhile
        assert client.reconnects == 2
        result = items[-1]
        assert result["type"] == "result" and result["status"] == "ok"
        events = items[1:-1]
        _assert_numbering(events)
        assert any(i.get("replayed") for i in events)
        final = next(i for i in events if i["event"] == "chat" and i["payload"]["state"] == "final")
        text = final["payload"]["message"]["content"][0]["text"]
        assert _assistant_text(events) == text
        assert len(text.split()) >= 200
        # The client is usable after the reconnects.
        assert (await client.call("health"))["ok"] is True


async def test_reconnect_right_after_a_chat_event_yields_it_once(make_gateway: Any) -> None:
    """The replay after agent seq N starts with the chat event derived from N, which this client already has."""
    gw = make_gateway(config={"demo": {"word_delay_ms": 15}})
    async with GatewayClient(gw.url, heartbeat_interval=0, backoff_base=0.05) as client:
        items: list[dict[str, Any]] = []
        drops = 0
        async for item in client.run_agent("chat then drop [long]", session_key="chat-drop"):
            items.append(item)
            is_delta = item.get("event") == "chat" and item["payload"]["state"] == "delta"
            if drops < 2 and is_delta and not item.get("replayed"):
                drops += 1
                client.drop_connection()
                await asyncio.sleep(0.3)
        assert client.reconnects == 2
        events = items[1:-1]
        keys = [(i["event"], i["payload"]["seq"]) for i in events]
        assert len(keys) == len(set(keys)), "an event was yielded twice"
        _assert_numbering(events)
        assert any(i.get("replayed") for i in events)
        final = next(i for i in events if i["event"] == "chat" and i["payload"]["state"] == "final")
        assert _assistant_text(events) == final["payload"]["message"]["content"][0]["text"]


async def test_replay_gap_after_gateway_restart_yields_gap_then_result(make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 30}})
    async with GatewayClient(gw.url, heartbeat_interval=0, backoff_base=0.05) as client:
        items: list[dict[str, Any]] = []
        async for item in client.run_agent("long story [long]", session_key="gap"):
            items.append(item)
            if sum(1 for i in items if i.get("event") == "agent") == 10:
                port = gw.port
                gw.kill()
                gw.start(port)
        kinds = [i["type"] for i in items]
        assert "gap" in kinds
        assert items[-1]["type"] == "result" and items[-1]["status"] == "error"


async def test_request_timeout_raises(make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 50}})
    async with GatewayClient(gw.url, heartbeat_interval=0) as client:
        accepted = await client.call("agent", {"message": "slow [long]", "idempotencyKey": "slow-1"})
        with pytest.raises(RequestTimeoutError) as info:
            await client.call("agent.wait", {"runId": accepted["runId"], "timeoutMs": 10_000}, timeout=0.3)
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, UnavailableError)
        aborted = await client.abort(accepted["runId"])
        assert aborted["aborted"] is True


async def test_errors_map_to_typed_exceptions(make_gateway: Any) -> None:
    gw = make_gateway("--token", "tok")
    async with GatewayClient(gw.url, token="tok", heartbeat_interval=0) as client:
        with pytest.raises(UnknownMethodError):
            await client.call("no.such.method")
        with pytest.raises(InvalidRequestError):
            await client.call("chat.send", {"sessionKey": "x"})
        with pytest.raises(NotFoundError):
            await client.call("agent.wait", {"runId": "missing-run", "timeoutMs": 0})
        with pytest.raises(ReplayGapError):
            await client.call("agent.replay", {"runId": "missing-run", "afterSeq": 0})
    async with GatewayClient(gw.url, token="tok", scopes=("operator.read",), heartbeat_interval=0) as reader:
        with pytest.raises(ForbiddenError):
            await reader.call("config.set", {"config": {}})
    with pytest.raises(AuthTokenMismatchError):
        async with GatewayClient(gw.url, token="wrong"):
            pass
    with pytest.raises(AuthTokenMissingError):
        async with GatewayClient(gw.url):
            pass


async def test_calls_while_disconnected_raise_connection_lost(make_gateway: Any) -> None:
    gw = make_gateway()
    async with GatewayClient(gw.url, heartbeat_interval=0, backoff_base=5) as client:
        client.drop_connection()
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectionLostError):
            await client.call("health")


async def test_heartbeat_and_on_handlers(make_gateway: Any) -> None:
    gw = make_gateway()
    seen: list[str] = []
    async with GatewayClient(gw.url, heartbeat_interval=0.2) as client:
        off = client.on("chat", lambda f: seen.append(f["payload"]["state"]))
        async for _ in client.run_agent("hi", session_key="hb"):
            pass
        await asyncio.sleep(0.5)  # a few heartbeats go by without trouble
        off()
        assert client.connected.is_set() and client.reconnects == 0
    assert seen[-1] == "final"
