"""The SDK against a real gateway: reconnect and resume, timeouts, typed errors."""

from __future__ import annotations

import asyncio
import os
import signal
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


class HealthCounting(GatewayClient):
    """Counts the answered ``health`` calls: only the heartbeat makes them in these tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beats = 0
        self.beat = asyncio.Event()

    async def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        result = await super().call(method, params, timeout=timeout)
        if method == "health":
            self.beats += 1
            self.beat.set()
        return result


async def _until(pred: Any, timeout: float = 30) -> None:
    """Poll a client attribute the SDK sets without an event; fail after a generous ``timeout``."""
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110 - polls state the SDK has no event for
            await asyncio.sleep(0.02)


async def test_heartbeat_and_on_handlers(make_gateway: Any) -> None:
    gw = make_gateway()
    seen: list[str] = []
    async with HealthCounting(gw.url, heartbeat_interval=0.2) as client:
        off = client.on("chat", lambda f: seen.append(f["payload"]["state"]))
        async for _ in client.run_agent("hi", session_key="hb"):
            pass
        beats = client.beats
        for _ in range(3):  # three more heartbeats, each answered by the gateway
            client.beat.clear()
            await asyncio.wait_for(client.beat.wait(), 30)
        off()
        assert client.beats >= beats + 3
        assert client.connected.is_set() and client.reconnects == 0
    assert seen[-1] == "final"


async def test_heartbeat_failure_drops_the_socket_and_reconnects(make_gateway: Any) -> None:
    """A gateway that stops answering (SIGSTOP) fails the heartbeat: the client aborts and reconnects."""
    gw = make_gateway()
    assert gw.proc is not None
    client = HealthCounting(gw.url, heartbeat_interval=0.2, request_timeout=1.0, backoff_base=0.05, backoff_max=0.5)
    async with client:
        await asyncio.wait_for(client.beat.wait(), 30)  # the heartbeat works first
        os.kill(gw.proc.pid, signal.SIGSTOP)
        try:
            await _until(lambda: not client.connected.is_set())  # heartbeat timed out: socket aborted
            assert client.reconnects == 0
        finally:
            os.kill(gw.proc.pid, signal.SIGCONT)
        await asyncio.wait_for(client.connected.wait(), 30)
        assert client.reconnects == 1
        client.beat.clear()
        await asyncio.wait_for(client.beat.wait(), 30)  # and beats again on the new socket
        assert (await client.call("status"))["connections"] == 1  # the dead socket is gone on the server too


async def test_reconnect_failures_are_retried_until_the_gateway_refuses(make_gateway: Any) -> None:
    """While the gateway is down each attempt fails and is retried; a refused connect ends the client."""
    gw = make_gateway("--token", "first")
    async with GatewayClient(gw.url, token="first", heartbeat_interval=0, backoff_base=0.05, backoff_max=0.2) as c:
        port = gw.port
        gw.stop()
        await _until(lambda: isinstance(c.last_error, OSError))  # connection refused, and retried
        assert not c.closed.is_set()
        gw.args = ["--token", "second"]  # back, but with another token: our token is refused
        gw.start(port)
        await asyncio.wait_for(c.closed.wait(), 30)
        assert isinstance(c.last_error, AuthTokenMismatchError)
        assert c.reconnects == 0 and not c.connected.is_set()
        with pytest.raises(ConnectionLostError):
            await c.call("health")


async def test_send_on_a_socket_that_just_closed_raises_connection_lost(make_gateway: Any) -> None:
    gw = make_gateway()
    async with GatewayClient(gw.url, heartbeat_interval=0, backoff_base=5) as client:
        client.drop_connection()
        # One loop iteration: the transport reports the loss to the socket, but the client's reader
        # has not run yet, so the client still believes it is connected when it sends.
        await asyncio.sleep(0)
        assert client.connected.is_set()
        with pytest.raises(ConnectionLostError) as info:
            await client.call("health")
        assert info.value.message == "connection closed"
