"""The agenthub gateway in its own process, with the bench provider and a bench-only publish path.

``python -m bench.gateway_proc --data-dir D --token T [--config cfg.json]`` builds
the real ``Gateway`` (aiohttp edge, native dialect, SQLite store) on a free
loopback port with ``runtime_factory`` returning ``PacedRuntime``, seeds the
``bench-history`` session with 200 messages, prints ``{"port": P}`` and then
takes driver commands on stdin (``bench.control``):

- ``fanout`` (S1): publishes ``agent`` assistant deltas straight onto the bus
  stream ``run:bench`` with ``bus.publish(..., droppable=True)``, the call the
  run manager makes for every provider delta. This is the bench-only publish
  path; it lives here, not in the gateway, and skips only the provider, so
  hub, encode-once cache, per-connection seq, backpressure and transport
  writes are all exercised.
- ``stats``: connections, droppable events skipped, and slow-consumer closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agenthub.app import Gateway
from agenthub.config import GatewaySettings, load_file
from agenthub.core.runtime import AgentEvent, TextDelta, Turn
from agenthub.core.store import MessageRecord

from .control import FanoutFrame, emit, produce, raise_nofile_limit, serve_commands
from .history_seed import HISTORY_SESSION, history_messages


class PacedRuntime:
    """A provider that paces itself: message ``"bench <rate>/s <count>"`` streams ``count`` deltas at ``rate``.

    Each delta is ``D<index>@<time_ns>|`` stamped at the moment it is yielded, so
    the client measures provider emit -> client receive (the gateway-added latency).
    """

    name = "bench"

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        parts = turn.message.split()
        rate = float(parts[1].removesuffix("/s")) if len(parts) > 1 else 50.0
        count = int(parts[2]) if len(parts) > 2 else 100
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield TextDelta(f"D{i}@{time.time_ns():019d}|")


async def main(args: argparse.Namespace) -> None:
    base: dict[str, Any] = load_file(args.config) if args.config else {}
    overrides: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "data_dir": str(args.data_dir)}
    if "security" in GatewaySettings.model_fields:
        # Every bench client comes from 127.0.0.1: lift the per-IP cap on sockets still in the
        # handshake (OpenClaw gets the same through OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP).
        overrides["security"] = {"max_preauth_per_ip": 1_000_000}
    if args.token:
        overrides["token"] = args.token
    async with Gateway(base, overrides, runtime_factory=lambda s: PacedRuntime()) as gw:
        node = gw.node
        assert node is not None
        store = gw.store
        await store.ensure_session(HISTORY_SESSION, time.time_ns() // 1_000_000)
        if not await store.history(HISTORY_SESSION, 1):
            for i, (role, text) in enumerate(history_messages()):
                await store.append_message(MessageRecord(HISTORY_SESSION, role, text, 1_700_000_000_000 + i))
        gc.collect()
        gc.freeze()  # startup objects are never garbage: keep them out of the collector's way
        frame = FanoutFrame(100)

        def publish() -> None:
            node.bus.publish("run:bench", "agent", frame.payload(), droppable=True)

        def buffered() -> list[int]:
            return [c.transport.buffered() for c in node.connections.values()]

        async def fanout(cmd: dict[str, Any]) -> dict[str, Any]:
            return await produce(publish, buffered, cmd["seconds"], cmd.get("rate", 0))

        async def stats(cmd: dict[str, Any]) -> dict[str, Any]:
            conns = list(node.connections.values())
            return {
                "connections": len(conns),
                "dropped_open": sum(c.dropped for c in conns),
                "dropped_closed": node.dropped_closed,
                "max_buffered": max((c.transport.buffered() for c in conns), default=0),
                "limit": node.limits.max_buffered_bytes,
            }

        async def limit(cmd: dict[str, Any]) -> dict[str, Any]:
            """Set ``limits.max_buffered_bytes`` for connections opened from now on (S1 stalled peers)."""
            old = node.limits.max_buffered_bytes
            node.limits.max_buffered_bytes = int(cmd["max_buffered_bytes"])
            return {"old": old}

        emit({"port": gw.port})
        await serve_commands({"fanout": fanout, "stats": stats, "limit": limit})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--config", type=Path, default=None)
    a = parser.parse_args()
    raise_nofile_limit()
    GatewaySettings.model_rebuild()
    import uvloop

    uvloop.run(main(a))
