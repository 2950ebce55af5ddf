"""Line-delimited JSON control channel between the bench driver and its child processes.

Children read one command object per stdin line and answer one object per stdout
line; nothing else may write to stdout. Server children print ``{"port": P}``
once they listen.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["WORD", "FanoutFrame", "backlogged", "emit", "produce", "raise_nofile_limit", "serve_commands"]

WORD = "lorem "  # S6: the agenthub bench provider answers ``words <count>`` with this word, count times

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def raise_nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve_commands(handlers: dict[str, Handler]) -> None:
    """Answer commands until ``quit`` or end of stdin."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        name = cmd.get("cmd")
        if name == "quit":
            emit({"ok": True})
            return
        try:
            emit(await handlers[name](cmd))
        except Exception as exc:  # report, keep serving
            emit({"error": f"{type(exc).__name__}: {exc}"})


class FanoutFrame:
    """The S1 event: an ``agent`` assistant delta of ``size`` bytes whose text starts ``T<time_ns>|``.

    Every server stamps ``time.time_ns()`` into the delta when it publishes, so
    clients on the same host measure publish->receive latency on one clock.
    """

    def __init__(self, size: int) -> None:
        self.pad = "x" * max(0, size - 21)

    def delta(self) -> str:
        return f"T{time.time_ns():019d}|{self.pad}"

    def payload(self) -> dict[str, Any]:
        d = self.delta()
        return {
            "runId": "bench",
            "stream": "assistant",
            "ts": time.time_ns() // 1_000_000,
            "data": {"text": d, "delta": d},
            "sessionKey": "bench",
        }


def backlogged(buffered: list[int], limit: int = 64 * 1024, share: float = 0.05) -> bool:
    """Producer flow control shared by every stack: back off while >5% of peers hold >64 KiB unsent."""
    if not buffered:
        return False
    return sum(1 for b in buffered if b > limit) > share * len(buffered)


async def produce(
    publish: Callable[[], Awaitable[None] | None],
    buffered: Callable[[], list[int]],
    seconds: float,
    rate: float,
    held: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Publish for ``seconds``: at ``rate`` events/s, or (rate 0) as fast as the server accepts them.

    "As fast as accepted" = publish, yield to the loop once, and back off 1 ms at a
    time while ``backlogged`` (so unsent bytes do not grow without bound). The
    same loop drives every stack. ``held`` is a server's own backlog beyond its sockets (a
    cluster bus's events queued for Redis), backed off from the same way. Returns the count
    and the first/last stamp.
    """
    loop = asyncio.get_running_loop()
    t0 = time.time_ns()
    start = loop.time()
    end = start + seconds
    n = 0
    waits = 0
    interval = 1.0 / rate if rate else 0.0
    while loop.time() < end:
        res = publish()
        if res is not None:
            await res
        n += 1
        if interval:
            delay = start + n * interval - loop.time()
            await asyncio.sleep(delay if delay > 0 else 0)
        else:
            await asyncio.sleep(0)
            while (backlogged(buffered()) or (held is not None and held())) and loop.time() < end:
                waits += 1
                await asyncio.sleep(0.001)
    return {"published": n, "t0_ns": t0, "t1_ns": time.time_ns(), "backoffs": waits, "pid": os.getpid()}
