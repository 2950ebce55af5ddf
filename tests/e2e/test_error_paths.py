"""Error paths of the socket edge and the dispatcher, each provoked for real over loopback.

- a server frame of 64 KiB or more (``web/ws.py`` ``text_frame``: the 64-bit length);
- a client frame that breaks RFC 6455 (aiohttp reports a read error: only that socket ends);
- a handler that raises something unexpected (``core/rpc.py``: UNAVAILABLE "internal error", the
  traceback in the log and nowhere else), through a test gateway whose store fails on purpose;
- an AgentBox socket that never authenticates (closed 1008 "auth timeout").
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

import pytest
import websockets

from ..conftest import GatewayProc
from ._fault_gateway import FAULT
from ._util import Client, StalledSocket

pytestmark = pytest.mark.timeout(90)


async def test_responses_of_64_kib_or_more_use_the_64_bit_length(make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 0}})
    text = "y" * 4000  # one word: the demo echoes it in a one-line answer
    async with Client.open_connected(gw.url) as c:
        for i in range(18):  # 18 x 4,000 characters of user text alone: past 65,535 bytes
            await c.ok("chat.send", {"sessionKey": "big", "message": f"{i}{text}", "idempotencyKey": f"big-{i}"})
            await c.until(
                lambda f, i=i: (
                    f.get("event") == "chat"
                    and f["payload"]["runId"] == f"big-{i}"
                    and f["payload"]["state"] == "final"
                ),
                timeout=30,
            )
    raw = StalledSocket(gw.url, rcvbuf=1 << 20)
    try:
        await raw.connect()
        await raw.send_json({"type": "req", "id": "h", "method": "chat.history", "params": {"sessionKey": "big"}})
        while True:
            frame = await raw.read_frame()
            assert frame is not None, "gateway closed the socket"
            if frame.opcode == 0x1 and frame.json().get("id") == "h":
                break
    finally:
        raw.close()
    assert len(frame.data) >= 65536, len(frame.data)
    assert frame.header[1] == 127 and struct.unpack("!Q", frame.header[2:10])[0] == len(frame.data), frame.header
    res = frame.json()
    assert res["ok"], res
    users = [m["content"][0]["text"] for m in res["payload"]["messages"] if m["role"] == "user"]
    assert users == [f"{i}{text}" for i in range(18)]


@pytest.mark.parametrize(
    ("name", "frame", "code"),
    [
        # opcode 0x3 is reserved (RFC 6455 5.2): a protocol error
        ("reserved opcode", bytes((0x83, 0x80)) + b"\0\0\0\0", 1002),
        # control frames must not be fragmented (RFC 6455 5.5): a ping without FIN
        ("fragmented ping", bytes((0x09, 0x80)) + b"\0\0\0\0", 1002),
        # text frames carry UTF-8 (RFC 6455 8.1)
        ("invalid UTF-8", bytes((0x81, 0x82)) + b"\0\0\0\0" + b"\xff\xfe", 1007),
        # past limits.max_payload (1 MiB): refused from the header, before any payload
        ("message too big", bytes((0x81, 0xFF)) + struct.pack("!Q", 2 << 20) + b"\0\0\0\0", 1009),
    ],
)
async def test_a_broken_websocket_frame_ends_only_its_socket(
    gateway: GatewayProc, name: str, frame: bytes, code: int
) -> None:
    async with Client.open_connected(gateway.url) as bystander:
        raw = StalledSocket(gateway.url, rcvbuf=1 << 20)
        try:
            await raw.connect()
            await raw.send_raw(frame)
            frames, close = await raw.read_all(timeout=20)
            assert close is not None and close[0] == code, (name, close, frames)
            # Answer the close like a client should: the gateway's read loop then sees aiohttp's
            # error message, ends this socket's session and drops the TCP connection.
            await raw.send_close(code)
            assert await raw.read_frame() is None
        finally:
            raw.close()
        assert (await bystander.ok("health"))["ok"] is True
        assert (await bystander.ok("status"))["connections"] == 1


@pytest.mark.gateway_errors_expected(FAULT)
async def test_an_unexpected_handler_error_is_an_opaque_internal_error(make_gateway: Any, tmp_path: Any) -> None:
    gw: GatewayProc = make_gateway()
    gw.stop()
    gw.command = [sys.executable, "-m", "tests.e2e._fault_gateway"]
    gw.start(0)
    async with Client.open_connected(gw.url) as c:
        res = await c.call("sessions.list", {})
        assert res["ok"] is False
        assert res["error"] == {"code": "UNAVAILABLE", "message": "internal error", "retryable": True}
        # The socket and the gateway go on; the detail went to the log only.
        assert (await c.ok("health"))["ok"] is True
    assert "method sessions.list failed" in gw.output() and FAULT in gw.output()
    assert FAULT not in str(res)


async def test_agentbox_socket_that_never_authenticates_is_closed(make_gateway: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = make_gateway("--agentbox-port", str(port), config={"limits": {"handshake_timeout_ms": 300}})
    async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/gateway/ws") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # nothing sent: the socket must be closed, whatever arrived before
                await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "auth timeout")
    async with Client.open_connected(gw.url) as c:  # the gateway is fine
        assert (await c.ok("health"))["ok"] is True
