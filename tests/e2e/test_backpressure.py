"""A consumer that stops reading loses droppable deltas first, then is closed; nobody else notices.

The policy (``core/connection.py``): once a connection's unsent bytes pass half
of ``max_buffered_bytes``, droppable events (cumulative assistant/thinking
text, chat deltas) are skipped and their connection ``seq`` is consumed, so the
client sees a gap; a must-deliver frame that would push the buffer past
``max_buffered_bytes`` closes the connection 1008 "slow consumer".
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from typing import Any

import httpx
import pytest

from ..conftest import GatewayProc
from ._util import (
    Client,
    RunLog,
    StalledSocket,
    assert_contiguous,
    assert_cumulative,
    assert_run_numbering,
    collect_run,
    collect_runs,
    start_agent,
)

pytestmark = pytest.mark.timeout(90)

# A 10 kB word in the message: the demo echoes it first, so every cumulative text event of the
# run carries it. The kernel buffers a stalled socket absorbs (megabytes on loopback) fill fast.
BIG_WORD = "x" * 10_000
RUNS_PER_ROUND = 3


def is_droppable(event: str, payload: dict[str, Any]) -> bool:
    if event == "agent":
        return payload["stream"] in ("assistant", "thinking")
    return event == "chat" and payload["state"] == "delta"


async def run_round(c: Client, tag: str) -> tuple[float, list[RunLog]]:
    """Start RUNS_PER_ROUND long runs in their own sessions (so they run concurrently), await all."""
    t0 = time.monotonic()
    started = [
        await start_agent(c, f"[long] {BIG_WORD}", f"{tag}-{i}", session=f"{tag}-{i}") for i in range(RUNS_PER_ROUND)
    ]
    logs = [await collect_run(c, accepted["runId"], rid, timeout=20) for rid, accepted in started]
    return time.monotonic() - t0, logs


def check_complete(log: RunLog) -> None:
    assert log.final is not None and log.final["status"] == "ok"
    assert_run_numbering(log.frames)
    text = assert_cumulative(log.agent)
    assert len(text.split()) == 200
    assert log.terminal["message"]["content"][0]["text"] == text


async def metric(gw: GatewayProc, name: str) -> float:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{gw.http}/metrics")).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


async def round_watched(fast: Client, watcher: Client, tag: str) -> tuple[float, list[RunLog]]:
    """``run_round`` on ``fast`` while ``watcher`` reads along; both must see the same events."""
    watching = asyncio.create_task(collect_runs(watcher, [f"{tag}-{i}" for i in range(RUNS_PER_ROUND)], 20))
    elapsed, logs = await run_round(fast, tag)
    for log, seen in zip(logs, await watching, strict=True):
        check_complete(log)
        assert seen.payloads == log.payloads
    return elapsed, logs


async def test_stalled_consumer_loses_deltas_then_is_closed(make_gateway: Any, record_property: Any) -> None:
    gw: GatewayProc = make_gateway(config={"demo": {"word_delay_ms": 1}, "limits": {"max_buffered_bytes": 65536}})
    async with Client.open_connected(gw.url) as fast, Client.open_connected(gw.url) as watcher:
        # control: with every client reading, nothing is dropped even with this small buffer
        baseline, _ = await round_watched(fast, watcher, "base")
        assert await metric(gw, "agenthub_queue_drops_total") == 0

        stalled = StalledSocket(gw.url)
        try:
            await stalled.connect()
            assert len(await fast.ok("system-presence")) == 3

            all_logs: list[RunLog] = []
            rounds: list[float] = []
            closed = False
            for r in range(8):
                elapsed, logs = await round_watched(fast, watcher, f"r{r}")
                rounds.append(elapsed)
                all_logs += logs
                # a closing connection leaves presence at once (its socket lingers until drained)
                if len(await fast.ok("system-presence")) == 2:
                    closed = True
                    break
            record_property("baseline_round_s", round(baseline, 3))
            record_property("stalled_rounds_s", [round(x, 3) for x in rounds])
            print(f"baseline round {baseline:.3f}s, rounds with a stalled peer: {rounds}")
            assert closed, "the stalled consumer was never closed"
            # the fast clients were never held back: every event, no gap, in normal time
            assert_contiguous(fast.event_seqs())
            assert_contiguous(watcher.event_seqs())
            assert max(rounds) < max(3 * baseline, baseline + 2.0), (baseline, rounds)
            assert await metric(gw, "agenthub_queue_drops_total") > 0

            frames, close = await stalled.read_all(timeout=20)
        finally:
            stalled.close()

    assert close == (1008, "slow consumer")
    events = [f for f in frames if f.get("type") == "event"]
    seqs = [f["seq"] for f in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    gaps = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
    assert gaps, "droppable events should have been skipped before the close"
    first_gap = seqs.index(gaps[0][0]) + 1
    # droppables were skipped first: must-deliver events still arrived after the first gap
    assert any(not is_droppable(f["event"], f["payload"]) for f in events[first_gap:])

    # Every event the stalled client lacks, among those published before the last one it got,
    # is a droppable one: the gateway never skips a lifecycle, tool or final event.
    by_run = {log.run_id: log for log in all_logs}
    # An event is known by (family, seq): a chat event carries the seq of its agent event.
    got: dict[str, list[tuple[str, int]]] = {}
    for f in events:
        run_id = f["payload"].get("runId")
        if f["event"] in ("agent", "chat") and run_id in by_run:
            got.setdefault(run_id, []).append((f["event"], f["payload"]["seq"]))
    assert got, "the stalled client received none of the runs' events"
    skipped = 0
    for run_id, seen in got.items():
        published = [(f["event"], f["payload"]["seq"]) for f in by_run[run_id].frames]
        last_seen = max(published.index(key) for key in seen)
        for frame, key in zip(by_run[run_id].frames[:last_seen], published, strict=False):
            if key not in seen:
                assert is_droppable(frame["event"], frame["payload"]), frame
                skipped += 1
    assert skipped > 0
