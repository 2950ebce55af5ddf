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
- ``stats``: connections, droppable events skipped, and slow-consumer closes,
  also for the stalled peers of S1 alone (``limit`` then ``mark``).

With ``--redis-url`` (and ``--database-url``) it is one worker of a scaled-out
gateway (``--worker I``, binding ``--port`` with ``SO_REUSEPORT`` as
``agenthub gateway --workers N`` does); the bench starts two (``procs.start_cluster``).

The gateway runs as shipped: no ``gc.freeze()`` or other tuning the product
does not do itself (``agenthub gateway`` is ``Gateway`` plus signal handling).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agenthub.app import Gateway
from agenthub.config import GatewaySettings, load_file
from agenthub.core.connection import Connection
from agenthub.core.runtime import AgentEvent, TextDelta, Turn
from agenthub.core.sessions import canonical_session_key
from agenthub.core.store import MessageRecord

from .control import WORD, FanoutFrame, backlogged, emit, produce, raise_nofile_limit, serve_commands
from .history_seed import HISTORY_SESSION, history_messages

HELD_EVENTS = 2_000  # S1 on a cluster bus: events queued for Redis before the producer backs off
HELD_LAG_MS = 20.0  # ...or a worker reading the shared log this far behind its head
BENCH_WORKERS = 2  # procs.start_cluster's worker count (their lag keys are read every 10 ms)


class PacedRuntime:
    """A provider that paces itself: message ``"bench <rate>/s <count>"`` streams ``count`` deltas at ``rate``.

    Each delta is ``D<index>@<time_ns>|`` stamped at the moment it is yielded, so
    the client measures provider emit -> client receive (the gateway-added latency).
    Message ``"words <count>"`` (S6) streams a ``count``-word answer, one word per
    delta, as fast as the loop takes them.
    """

    name = "bench"

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        parts = turn.message.split()
        if parts and parts[0] == "words":
            for _ in range(int(parts[1])):
                yield TextDelta(WORD)
                await asyncio.sleep(0)
            return
        rate = float(parts[1].removesuffix("/s")) if len(parts) > 1 else 50.0
        count = int(parts[2]) if len(parts) > 2 else 100
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield TextDelta(f"D{i}@{time.time_ns():019d}|")


async def share_lag(node: Any, client: Any, worker: int, lags: dict[str, float]) -> None:
    """Every 10 ms: publish this worker's backlog (read lag behind the shared log, or ``backlogged`` sockets
    counted as a lag past the bound), read every worker's."""
    while True:
        lag = float(node.bus.describe().get("readLagMs", 0.0))
        if backlogged([c.transport.buffered() for c in node.connections.values()]):
            lag = max(lag, 2 * HELD_LAG_MS)
        await client.set(f"bench:lag:{worker}", lag, px=1000)
        keys = [f"bench:lag:{i}" for i in range(BENCH_WORKERS)]
        values = await client.mget(keys)
        lags.clear()
        lags.update({k: float(v) for k, v in zip(keys, values, strict=True) if v is not None})
        await asyncio.sleep(0.01)


async def main(args: argparse.Namespace) -> None:
    base: dict[str, Any] = load_file(args.config) if args.config else {}
    overrides: dict[str, Any] = {"host": "127.0.0.1", "port": args.port, "data_dir": str(args.data_dir)}
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
        overrides["workers"] = 1  # this process is one worker; the bench starts the others
    if args.database_url:
        overrides["database_url"] = args.database_url
    if "security" in GatewaySettings.model_fields:
        # Every bench client comes from 127.0.0.1: lift the per-IP cap on sockets still in the
        # handshake (OpenClaw gets the same through OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP).
        overrides["security"] = {"max_preauth_per_ip": 1_000_000}
    if args.token:
        overrides["token"] = args.token
    worker = args.worker if args.worker >= 0 else None
    async with Gateway(base, overrides, runtime_factory=lambda s: PacedRuntime(), worker=worker) as gw:
        node = gw.node
        assert node is not None
        store = gw.store
        # Under the key chat.history reads: the client's "bench-history" is agent:main:bench-history, as in
        # OpenClaw (seeding the bare key left agenthub answering an empty transcript).
        history_key = canonical_session_key(HISTORY_SESSION)
        await store.ensure_session(history_key, time.time_ns() // 1_000_000)
        if worker in (None, 0) and not await store.history(history_key, 1):
            for i, (role, text) in enumerate(history_messages()):
                await store.append_message(MessageRecord(history_key, role, text, 1_700_000_000_000 + i))
        frame = FanoutFrame(100)
        published = 0
        must_every = 0  # every n-th event must be delivered (not droppable); 0: all droppable
        # S1's stalled peers: the connections opened between ``limit`` and ``mark``, and their peak unsent bytes.
        marked: list[Connection] = []
        before: set[str] = set()
        peak = 0

        def publish() -> None:
            nonlocal published
            published += 1
            droppable = not (must_every and published % must_every == 0)
            node.bus.publish("run:bench", "agent", frame.payload(), droppable=droppable)

        def buffered() -> list[int]:
            nonlocal peak
            for c in marked:
                peak = max(peak, c.transport.buffered())
            return [c.transport.buffered() for c in node.connections.values()]

        async def fanout(cmd: dict[str, Any]) -> dict[str, Any]:
            nonlocal must_every
            must_every = int(cmd.get("must_every", 0))
            return await produce(publish, buffered, cmd["seconds"], cmd.get("rate", 0), held)

        def held() -> bool:
            """A cluster bus's backlog: events queued for Redis here, or any worker reading the shared log
            more than HELD_LAG_MS behind. Backed off from like full sockets, so the producer runs at the rate
            the slowest worker delivers (no worker sees its peers' sockets)."""
            bus = node.bus.describe()
            return bus.get("pending", 0) > HELD_EVENTS or max(lags.values(), default=0.0) > HELD_LAG_MS

        async def stats(cmd: dict[str, Any]) -> dict[str, Any]:
            """Counters now; ``marked_*`` cover the stalled peers alone, closed ones included."""
            nonlocal peak
            conns = list(node.connections.values())
            out = {
                "connections": len(conns),
                "dropped_open": sum(c.dropped for c in conns),
                "dropped_closed": node.dropped_closed,
                "max_buffered": max((c.transport.buffered() for c in conns), default=0),
                "limit": node.limits.max_buffered_bytes,
                "marked": len(marked),
                "marked_dropped": sum(c.dropped for c in marked),
                "marked_closed": sum(1 for c in marked if c.conn_id not in node.connections),
                "marked_peak_unsent": peak,
            }
            if cmd.get("reset_peak"):
                peak = 0
            return out

        async def limit(cmd: dict[str, Any]) -> dict[str, Any]:
            """Set ``limits.max_buffered_bytes`` for connections opened from now on (S1 stalled peers)."""
            nonlocal before
            before = set(node.connections)
            old = node.limits.max_buffered_bytes
            node.limits.max_buffered_bytes = int(cmd["max_buffered_bytes"])
            return {"old": old}

        async def mark(cmd: dict[str, Any]) -> dict[str, Any]:
            """The connections opened since ``limit`` are the stalled peers; restore the limit.

            With ``sndbuf``, their kernel send buffer is fixed at that size (Linux doubles
            it): on loopback it otherwise grows to a few hundred KiB per socket, which
            a stalled peer of S1 (~20 KB/s) would take many seconds to fill.
            """
            nonlocal peak
            marked[:] = [c for cid, c in node.connections.items() if cid not in before]
            sndbuf = int(cmd.get("sndbuf", 0))
            for c in marked:
                raw = getattr(c.transport, "_transport", None)  # the asyncio transport under web.ws's wrapper
                sock = raw.get_extra_info("socket") if raw is not None else None
                if sndbuf and sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            node.limits.max_buffered_bytes = int(cmd["restore"])
            peak = 0
            return {"marked": len(marked)}

        async def unmark(cmd: dict[str, Any]) -> dict[str, Any]:
            marked.clear()
            return {"ok": True}

        lags: dict[str, float] = {}
        redis_client = getattr(node.bus, "redis", None)
        if redis_client is not None:  # one worker of a cluster: share read lags (bench only)
            asyncio.get_running_loop().create_task(share_lag(node, redis_client, args.worker, lags))
        emit({"port": gw.port})
        await serve_commands({"fanout": fanout, "stats": stats, "limit": limit, "mark": mark, "unmark": unmark})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--worker", type=int, default=-1, help="worker index (with --redis-url)")
    a = parser.parse_args()
    raise_nofile_limit()
    GatewaySettings.model_rebuild()
    import uvloop

    uvloop.run(main(a))
