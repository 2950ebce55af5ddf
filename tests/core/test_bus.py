"""MemoryBus: the shared contract (``bus_contract.py``) plus what only the in-memory bus has
(bounds across streams, measured bytes), without a socket."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from agenthub.core.bus import EventBus, MemoryBus, ReplayGap

from .bus_contract import BusContract, MakeBus, publish_run


class TestMemoryBus(BusContract):
    @pytest.fixture
    def make_bus(self) -> MakeBus:
        async def make(**limits: Any) -> EventBus:
            return MemoryBus(**limits)

        return make


async def test_oldest_streams_are_evicted_and_a_rebuilt_stream_gets_a_new_epoch() -> None:
    bus = MemoryBus(max_streams=2)
    first = bus.publish("s1", "agent", {})
    bus.publish("s2", "agent", {})
    bus.publish("s3", "agent", {})
    with pytest.raises(ReplayGap):
        await bus.history("s1", 0)
    again = bus.publish("s1", "agent", {})
    assert again.seq == 1 and again.epoch != first.epoch
    with pytest.raises(ReplayGap, match="epoch changed"):
        await bus.history("s1", 0, epoch=first.epoch)


async def test_a_stream_rebuilt_mid_run_starts_at_the_publishers_position_with_a_new_epoch() -> None:
    bus = MemoryBus(max_streams=10)
    first = bus.publish("run:x", "agent", {}, seq=1)
    for i in range(10):
        bus.publish(f"other-{i}", "agent", {})
    rebuilt = bus.publish("run:x", "agent", {"n": 7}, seq=7)
    assert rebuilt.epoch != first.epoch and rebuilt.seq == 7
    with pytest.raises(ReplayGap, match="epoch changed"):
        await bus.history("run:x", 6, epoch=first.epoch)
    with pytest.raises(ReplayGap, match="left retained history"):
        await bus.history("run:x", 6)  # events 1..6 are lost: never pretend otherwise
    assert [p.payload["n"] for p in await bus.history("run:x", 7)] == [7]


async def test_the_total_bound_lets_the_least_recent_streams_go() -> None:
    bus = MemoryBus(bytes_per_stream=50_000, bytes_total=120_000)
    for r in range(10):
        await publish_run(bus, f"run:{r}", [f"r{r}w{i}-" + "y" * 100 for i in range(100)])
        assert bus.stats().bytes <= 120_000
    stats = bus.stats()
    assert stats.evicted_streams > 0 and stats.streams < 10
    with pytest.raises(ReplayGap, match="not retained"):
        await bus.history("run:0", 0)
    assert (await bus.history("run:9", 0))[-1].payload["data"]["text"].endswith("y" * 100)


async def test_the_byte_count_is_what_the_history_really_holds() -> None:
    """The bound is honest: tracemalloc agrees with ``stats().bytes`` within a modest factor."""
    bus = MemoryBus(100_000, 1_000, bytes_per_stream=1 << 40, bytes_total=1 << 40)
    runs = [[f"r{r}-word{i} " for i in range(300)] for r in range(10)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r, words in enumerate(runs):
            await publish_run(bus, f"run:{r}", words)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = bus.stats().bytes
    assert 0.7 * held <= counted <= 2 * held, (counted, held)


async def test_values_json_cannot_hold_are_kept_as_text() -> None:
    bus = MemoryBus()
    pub = bus.publish("run:n", "agent", {"result": 2**100, "when": object})
    assert pub.payload["result"] == 2**100  # live listeners get it as published
    (kept,) = await bus.history("run:n", 0)
    assert kept.payload["result"] == str(2**100) and isinstance(kept.payload["when"], str)
