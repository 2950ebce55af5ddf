"""Slow and silent TCP clients, and the connection cap (issue 16, item 5), on every listener.

Raw TCP sockets on loopback against a real gateway with short timeouts: a
client that never finishes its request head is closed after
``limits.header_timeout_s``, an idle keep-alive connection after
``limits.idle_timeout_s``, and past ``limits.max_connections_per_listener`` /
``limits.max_connections`` new connections get 503 at once while established
clients keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..conftest import GatewayProc, RawClient
from ._util import free_port

CEILING_S = 20  # generous: each wait ends on the event (EOF), this only stops a hung test


@contextlib.asynccontextmanager
async def tcp(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails the test past the ceiling)."""
    async with asyncio.timeout(CEILING_S):
        return await reader.read()


async def trickle(writer: asyncio.StreamWriter) -> None:
    """A slowloris: a request line, then one header byte every 200 ms, never the blank line."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    with contextlib.suppress(OSError):
        while True:
            await asyncio.sleep(0.2)
            writer.write(b"X")
            await writer.drain()


@pytest.fixture
def three_listeners(make_gateway: Any) -> tuple[GatewayProc, dict[str, int]]:
    ab, ma = free_port(), free_port()
    gw: GatewayProc = make_gateway(
        "--agentbox-port",
        str(ab),
        "--myagent-port",
        str(ma),
        "--dev",
        config={"limits": {"header_timeout_s": 1, "idle_timeout_s": 1.5}},
    )
    return gw, {"main": gw.port, "agentbox": ab, "myagent": ma}


async def test_silent_and_trickling_clients_are_closed_on_every_listener(
    three_listeners: tuple[GatewayProc, dict[str, int]],
) -> None:
    gw, ports = three_listeners
    async with contextlib.AsyncExitStack() as stack:
        waits = []
        for port in ports.values():
            silent_r, _ = await stack.enter_async_context(tcp(port))
            slow_r, slow_w = await stack.enter_async_context(tcp(port))
            feeder = asyncio.get_running_loop().create_task(trickle(slow_w))
            stack.callback(feeder.cancel)
            waits += [until_closed(silent_r), until_closed(slow_r)]
        answers = await asyncio.gather(*waits)
    # Closed by the gateway (EOF, not our ceiling), with a 408 when it had anything to say.
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers), answers
    async with RawClient.open(gw.url) as c:  # the door is still open to honest clients
        assert (await c.connect())["ok"]


async def test_idle_keepalive_connection_is_closed_but_an_open_websocket_is_not(
    three_listeners: tuple[GatewayProc, dict[str, int]],
) -> None:
    gw, ports = three_listeners
    async with RawClient.open(gw.url) as ws_client:
        assert (await ws_client.connect())["ok"]
        async with tcp(ports["main"]) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive by default in HTTP/1.1
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()  # kept alive
            rest = await until_closed(reader)  # the body, then nothing: closed after limits.idle_timeout_s
            assert b'"ok":true' in rest.replace(b" ", b"")
        # The WebSocket sat silent through both timeouts and still works: after its upgrade neither applies.
        assert (await ws_client.call("health"))["ok"]


async def test_connection_cap_per_listener_and_in_total(make_gateway: Any) -> None:
    ab = free_port()
    gw: GatewayProc = make_gateway(
        "--agentbox-port",
        str(ab),
        config={"limits": {"header_timeout_s": 60, "max_connections": 6, "max_connections_per_listener": 4}},
    )
    async with RawClient.open(gw.url) as honest, contextlib.AsyncExitStack() as stack:
        assert (await honest.connect())["ok"]
        for _ in range(3):  # main: the honest client and 3 silent sockets = its cap of 4
            await stack.enter_async_context(tcp(gw.port))
        async with tcp(gw.port) as (reader, _):
            busy = await until_closed(reader)
        assert busy.startswith(b"HTTP/1.1 503 Service Unavailable") and b"Retry-After: 1" in busy
        # Another listener has its own count, until the total cap (6) is reached.
        for _ in range(2):
            await stack.enter_async_context(tcp(ab))
        async with tcp(ab) as (reader, _):
            assert (await until_closed(reader)).startswith(b"HTTP/1.1 503")
        # The established client never noticed.
        assert (await honest.call("health"))["ok"]
    log = gw.output()
    assert "connection cap reached on the main listener" in log and "limits.max_connections_per_listener=4" in log
    assert "connection cap reached on the agentbox listener" in log and "limits.max_connections=6" in log
    # Slots come back as connections close: a new client gets in again.
    async with RawClient.open(gw.url) as again:
        assert (await again.connect())["ok"]
