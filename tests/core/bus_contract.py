"""The ``EventBus`` contract, run against every implementation (``MemoryBus`` and ``RedisBus``).

A test module subclasses ``BusContract`` and provides the ``make_bus`` fixture:
an async factory ``make_bus(**limits) -> EventBus`` returning a started bus
(limits: ``history_per_stream``, ``bytes_per_stream``). Delivery may happen
after ``publish`` returns (a cluster bus delivers in its shared log's order), so
the tests wait with ``settled(bus)`` (``when_delivered``), never with a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agenthub.core.bus import EventBus, Fold, Publication, ReplayGap

MakeBus = Callable[..., Awaitable[EventBus]]

TEXT = Fold("assistant", ("data", "text"), ("data", "delta"))
CHAT = Fold("assistant", ("message", "content", 0, "text"))


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Publication] = []

    def handle_publication(self, pub: Publication) -> None:
        self.seen.append(pub)


async def settled(bus: EventBus, timeout: float = 10) -> None:
    """Wait until everything published so far reached this process's listeners."""
    done = asyncio.Event()
    bus.when_delivered(done.set)
    async with asyncio.timeout(timeout):
        await done.wait()


async def publish_run(bus: EventBus, stream: str, words: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Publish a run the way the run manager does; returns what a listener saw (deep copies)."""
    rec = Recorder()
    remove = bus.add_listener(rec)
    text = ""
    for i, word in enumerate(words):
        text += word
        seq = i + 1
        bus.publish(stream, "agent", {"stream": "assistant", "data": {"text": text, "delta": word}}, seq=seq, fold=TEXT)
        if i % 3 == 2:
            chat = {"state": "delta", "message": {"content": [{"type": "text", "text": text}]}, "deltaText": word}
            bus.publish(stream, "chat", chat, seq=seq, fold=CHAT)
    await settled(bus)
    remove()
    return [(p.event, copy.deepcopy(p.payload)) for p in rec.seen if p.stream == stream]


async def floor_of(bus: EventBus, stream: str) -> int:
    """The smallest position still answerable (found by asking, as a client would)."""
    pos = await bus.position(stream)
    assert pos is not None
    for after in range(pos.seq + 1):
        try:
            await bus.history(stream, after)
        except ReplayGap:
            continue
        return after
    raise AssertionError("nothing answerable")


class BusContract:
    """Every ``EventBus`` behaves like this."""

    async def test_publish_numbers_per_stream_and_delivers_in_order(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        rec = Recorder()
        remove = bus.add_listener(rec)
        a1 = bus.publish("run:a", "agent", {"x": 1})
        b1 = bus.publish("run:b", "agent", {"x": 2})
        a2 = bus.publish("run:a", "chat", {"x": 3}, droppable=True)
        await settled(bus)
        assert (a1.seq, b1.seq, a2.seq) == (1, 1, 2)
        assert a1.payload == {"x": 1, "seq": 1} and a2.droppable
        assert a1.epoch == a2.epoch != b1.epoch
        assert [p.payload["x"] for p in rec.seen] == [1, 2, 3]
        assert not any(p.remote for p in rec.seen)
        remove()
        bus.publish("run:a", "agent", {"x": 4})
        await settled(bus)
        assert len(rec.seen) == 3

    async def test_history_replays_after_a_position_and_reports_gaps(self, make_bus: MakeBus) -> None:
        bus = await make_bus(history_per_stream=3)
        for i in range(5):
            bus.publish("s", "agent", {"i": i})
        await settled(bus)
        pos = await bus.position("s")
        assert pos is not None and pos.seq == 5
        assert [p.seq for p in await bus.history("s", 2)] == [3, 4, 5]
        assert [p.payload["seq"] for p in await bus.history("s", 2)] == [3, 4, 5]
        assert await bus.history("s", 5) == []
        with pytest.raises(ReplayGap, match="left retained history"):
            await bus.history("s", 1)
        with pytest.raises(ReplayGap, match="epoch changed"):
            await bus.history("s", 3, epoch="other")
        with pytest.raises(ReplayGap, match="not retained"):
            await bus.history("unknown", 0)
        assert await bus.position("unknown") is None

    async def test_attached_publications_follow_their_anchor_in_replays(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        bus.publish("run:r", "agent", {"n": "a1"}, seq=1)
        bus.publish("run:r", "chat", {"n": "c1"}, seq=1)  # derived from agent 1
        bus.publish("run:r", "agent", {"n": "a2"}, seq=2)
        bus.publish("run:r", "agent", {"n": "a3"}, seq=3)
        bus.publish("run:r", "chat", {"n": "c3"}, seq=3)
        await settled(bus)
        pos = await bus.position("run:r")
        assert pos is not None and pos.seq == 3

        async def names(after: int) -> list[str]:
            return [p.payload["n"] for p in await bus.history("run:r", after)]

        assert await names(0) == ["a1", "c1", "a2", "a3", "c3"]
        assert await names(1) == ["c1", "a2", "a3", "c3"]
        assert await names(2) == ["a3", "c3"]
        assert [(p.payload["n"], p.payload["seq"]) for p in await bus.history("run:r", 3)] == [("c3", 3)]
        assert await bus.history("run:r", 4) == []

    async def test_a_seq_that_goes_back_is_refused_and_never_delivered(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        rec = Recorder()
        bus.add_listener(rec)
        bus.publish("run:b", "agent", {"n": 1}, seq=1)
        bus.publish("run:b", "agent", {"n": 3}, seq=3)
        with contextlib.suppress(ValueError):  # MemoryBus refuses at once; a cluster bus when Redis answers
            bus.publish("run:b", "agent", {"n": 2}, seq=2)
        bus.publish("run:b", "agent", {"n": 4}, seq=4)
        await settled(bus)
        assert [p.payload["n"] for p in rec.seen] == [1, 3, 4]
        assert [p.payload["n"] for p in await bus.history("run:b", 0)] == [1, 3, 4]

    async def test_evicting_an_attached_event_makes_its_anchor_a_gap(self, make_bus: MakeBus) -> None:
        bus = await make_bus(history_per_stream=3)
        for seq, n in ((1, "a1"), (1, "c1"), (2, "a2"), (2, "c2"), (3, "a3")):
            bus.publish("s", "agent" if n[0] == "a" else "chat", {"n": n}, seq=seq)
        await settled(bus)
        with pytest.raises(ReplayGap):
            await bus.history("s", 1)
        assert [p.payload["n"] for p in await bus.history("s", 2)] == ["c2", "a3"]
        bus.publish("s", "agent", {"n": "a4"}, seq=4)  # a2 goes: after 2 still holds, c2 is kept
        await settled(bus)
        assert [p.payload["n"] for p in await bus.history("s", 2)] == ["c2", "a3", "a4"]
        bus.publish("s", "agent", {"n": "a5"}, seq=5)  # c2 goes: now after 2 is a gap
        await settled(bus)
        with pytest.raises(ReplayGap):
            await bus.history("s", 2)
        assert [p.payload["n"] for p in await bus.history("s", 3)] == ["a4", "a5"]

    async def test_replay_rebuilds_the_folded_text_exactly(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        seen = await publish_run(bus, "run:f", [f"w{i} " for i in range(50)])
        assert [(p.event, p.payload) for p in await bus.history("run:f", 0)] == seen
        after = [(p.event, p.payload) for p in await bus.history("run:f", 30)]
        assert after == seen[seen.index(next(s for s in seen if s[1]["seq"] == 30)) + 1 :]

    async def test_history_stays_under_the_byte_bound_and_evicted_deltas_still_count(self, make_bus: MakeBus) -> None:
        bus = await make_bus(bytes_per_stream=20_000)
        words = [f"{i:04d}xx " for i in range(400)]
        seen = await publish_run(bus, "run:big", words)
        floor = await floor_of(bus, "run:big")
        assert floor > 0, "the oldest events left the history"
        tail = [(p.event, p.payload) for p in await bus.history("run:big", floor)]
        assert tail and tail == seen[-len(tail) :]
        last_agent = next(payload for event, payload in reversed(tail) if event == "agent")
        assert last_agent["data"]["text"] == "".join(words)
        with pytest.raises(ReplayGap):
            await bus.history("run:big", 0)

    async def test_a_text_too_big_for_the_bound_leaves_a_gap_not_a_wrong_text(self, make_bus: MakeBus) -> None:
        bus = await make_bus(bytes_per_stream=16_384)
        await publish_run(bus, "run:huge", ["z" * 5_000 for _ in range(6)])  # 30,000 characters of answer
        pos = await bus.position("run:huge")
        assert pos is not None
        for after in range(pos.seq):
            with pytest.raises(ReplayGap):
                await bus.history("run:huge", after)
        assert await bus.history("run:huge", pos.seq) == []

    async def test_bus_numbered_streams_write_seq_into_live_and_replayed_payloads(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        rec = Recorder()
        bus.add_listener(rec)
        for i in range(3):
            bus.publish("myagent:s1", "myagent", {"i": i})
        bus.publish("agentbox:alerts", "system", {"i": 9}, seq_field=False)
        await settled(bus)
        assert [(p.seq, p.payload.get("seq")) for p in rec.seen] == [(1, 1), (2, 2), (3, 3), (1, None)]
        assert [p.payload for p in await bus.history("myagent:s1", 1)] == [{"i": 1, "seq": 2}, {"i": 2, "seq": 3}]
        assert [p.payload for p in await bus.history("agentbox:alerts", 0)] == [{"i": 9}]

    async def test_when_delivered_runs_after_everything_published_before(self, make_bus: MakeBus) -> None:
        bus = await make_bus()
        rec = Recorder()
        bus.add_listener(rec)
        order: list[int] = []
        for i in range(20):
            bus.publish("run:w", "agent", {"i": i}, seq=i + 1)
        bus.when_delivered(lambda: order.append(len(rec.seen)))
        await settled(bus)
        assert order == [20]
        assert bus.describe()["kind"] in ("memory", "redis")
