"""RedisBus against a real redis-server: the bus contract, and what several processes need of it.

Two ``RedisBus`` objects on one Redis stand for two gateway processes (each has
its own connections, origin and listeners), so cross-process delivery, shared
numbering and replay are tested without starting gateways.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from agenthub.core.bus import EventBus, Fold, ReplayGap
from agenthub.storage.redis_bus import RedisBus, RedisBusLimits

from .._servers import RedisServer
from ..core.bus_contract import BusContract, MakeBus, Recorder, publish_run, settled


@pytest.fixture
async def buses(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[RedisBus] = []

    async def make(url: str | None = None, **limits: Any) -> RedisBus:
        bus = RedisBus(url or redis_url, prefix="t", limits=RedisBusLimits(**limits))
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.stop()


class TestRedisBus(BusContract):
    @pytest.fixture
    def make_bus(self, buses: Callable[..., Any]) -> MakeBus:
        async def make(**limits: Any) -> EventBus:
            bus: RedisBus = await buses(**limits)
            return bus

        return make


async def until(pred: Callable[[], bool], timeout: float = 10) -> None:
    """Poll a state another connection changes (no event to wait on), with a generous ceiling."""
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_another_process_receives_every_event_once_in_order_encoded_once(buses: Callable[..., Any]) -> None:
    a, b = await buses(), await buses()
    on_b1, on_b2 = Recorder(), Recorder()
    b.add_listener(on_b1)
    b.add_listener(on_b2)
    for seq in range(1, 201):
        a.publish("run:x", "agent", {"n": seq}, seq=seq)
        if seq % 10 == 0:
            a.publish("run:x", "chat", {"n": seq, "chat": True}, seq=seq)
    await settled(a)
    await until(lambda: len(on_b1.seen) == 220)
    assert [(p.seq, p.event) for p in on_b1.seen] == [
        (s, e) for s in range(1, 201) for e in (("agent", "chat") if s % 10 == 0 else ("agent",))
    ]
    assert all(p.remote for p in on_b1.seen)
    # One Publication per event per process: every listener (and encoder) of B shares it.
    assert all(x is y for x, y in zip(on_b1.seen, on_b2.seen, strict=True))
    assert {p.epoch for p in on_b1.seen} == {(await a.position("run:x")).epoch}  # type: ignore[union-attr]
    # B replays what A published, from Redis.
    assert [p.payload["n"] for p in await b.history("run:x", 195)] == [196, 197, 198, 199, 200, 200]


async def test_two_writers_share_one_numbering_and_one_order(buses: Callable[..., Any]) -> None:
    a, b = await buses(), await buses()
    seen_a, seen_b = Recorder(), Recorder()
    a.add_listener(seen_a)
    b.add_listener(seen_b)
    for i in range(50):
        a.publish("myagent:s", "myagent", {"from": "a", "i": i})
        b.publish("myagent:s", "myagent", {"from": "b", "i": i})
    await settled(a)
    await settled(b)
    await until(lambda: len(seen_a.seen) == 100 and len(seen_b.seen) == 100)
    order_a = [(p.seq, p.payload["from"], p.payload["i"]) for p in seen_a.seen]
    order_b = [(p.seq, p.payload["from"], p.payload["i"]) for p in seen_b.seen]
    assert order_a == order_b
    assert [s for s, _, _ in order_a] == list(range(1, 101))
    replay = await a.history("myagent:s", 0)
    assert [(p.seq, p.payload["from"], p.payload["i"]) for p in replay] == order_a


async def test_a_retried_pipeline_appends_once(buses: Callable[..., Any], redis_url: str) -> None:
    """The writer may resend a batch whose reply was lost: the script recognises it by (origin, local id)."""
    bus = await buses()
    bus.publish("run:r", "agent", {"n": 1}, seq=1)
    await settled(bus)
    keys = ["t:fire", "t:m:run:r", "t:s:run:r", "t:b:run:r"]
    args = [bus.origin, 10, 1 << 20, 60_000, 1000, 100]  # origin, limits
    args += [
        1,
        "EPOCH",
        "agent",
        b"{}",
        b"",
        "",
        "",
        "0",
        b"",
        1,
        "1",
        "0",
        "run:r",
        "",
    ]  # the same publication (lid 1)
    client = aioredis.Redis.from_url(redis_url)
    try:
        again = await client.evalsha(bus._sha, len(keys), *keys, *args)
        assert again[0] == -1  # already applied: nothing appended
        assert await client.xlen("t:s:run:r") == 1
    finally:
        await client.aclose()


async def test_redis_away_delivers_locally_then_raises_the_replay_floor(redis_server: RedisServer) -> None:
    url = redis_server.url(0)
    bus = RedisBus(url, prefix="t", limits=RedisBusLimits(publish_timeout_s=0.3))
    await bus.start()
    rec = Recorder()
    bus.add_listener(rec)
    try:
        bus.publish("run:d", "agent", {"n": 1}, seq=1)
        await settled(bus)
        first_epoch = rec.seen[0].epoch
        redis_server.stop_server()
        await until(lambda: bus.describe()["ok"] is False)
        bus.publish("run:d", "agent", {"n": 2}, seq=2)
        await settled(bus)  # past publish_timeout_s: delivered here without Redis
        assert [p.payload["n"] for p in rec.seen] == [1, 2] and bus.local_only >= 1
        redis_server.start_server()  # empty: a restart without persistence
        await until(lambda: bus.describe()["ok"] is True, timeout=15)
        bus.publish("run:d", "agent", {"n": 3}, seq=3)
        await settled(bus)
        assert [p.payload["n"] for p in rec.seen] == [1, 2, 3]
        assert rec.seen[-1].epoch != first_epoch  # the stream was rebuilt: old positions get ReplayGap
        with pytest.raises(ReplayGap):
            await bus.history("run:d", 1, first_epoch)
        with pytest.raises(ReplayGap):
            await bus.history("run:d", 2)  # events before 3 are not in Redis: never pretend otherwise
        assert [p.payload["n"] for p in await bus.history("run:d", 3)] == [3]
    finally:
        await bus.stop(flush_s=0)


async def test_folded_text_crosses_as_deltas_and_is_rebuilt_exactly(buses: Callable[..., Any]) -> None:
    """The shared log carries a run's cumulative text only in keyframes; B rebuilds every payload."""
    a, b = await buses(), await buses()
    on_b = Recorder()
    b.add_listener(on_b)
    seen_on_a = await publish_run(a, "run:fold", [f"w{i} " for i in range(100)])
    await until(lambda: len(on_b.seen) == len(seen_on_a))
    assert [(p.event, p.payload) for p in on_b.seen] == seen_on_a
    assert b.skipped == 0


async def test_a_process_joining_mid_stream_skips_deltas_until_a_keyframe(buses: Callable[..., Any]) -> None:
    a = await buses()
    fold = Fold("assistant", ("data", "text"), ("data", "delta"))
    text = ""

    def publish(seq: int) -> None:
        nonlocal text
        word = f"w{seq} "
        text += word
        a.publish("run:late", "agent", {"data": {"text": text, "delta": word}}, seq=seq, droppable=True, fold=fold)

    for seq in range(1, 6):  # before B exists
        publish(seq)
    await settled(a)
    b = await buses()
    on_b = Recorder()
    b.add_listener(on_b)
    for seq in range(6, 81):
        publish(seq)
    await settled(a)
    await until(lambda: bool(on_b.seen) and on_b.seen[-1].payload["seq"] == 80)
    assert b.skipped > 0, "deltas before B's first keyframe cannot be rebuilt there"
    first = on_b.seen[0].payload["seq"]
    assert [p.payload["seq"] for p in on_b.seen] == list(range(first, 81))
    assert on_b.seen[-1].payload["data"]["text"] == text  # rebuilt from the keyframe and the deltas after it
    assert all(p.payload["data"]["text"] == "".join(f"w{i} " for i in range(1, p.seq + 1)) for p in on_b.seen)


async def test_each_folded_text_of_a_stream_starts_with_a_keyframe(buses: Callable[..., Any]) -> None:
    """A run folds its thinking and its answer: B rebuilds both from the start, skipping nothing."""
    a, b = await buses(), await buses()
    on_b = Recorder()
    b.add_listener(on_b)
    thinking = Fold("thinking", ("data", "text"), ("data", "delta"))
    answer = Fold("assistant", ("data", "text"), ("data", "delta"))
    a.publish("run:two", "agent", {"data": {"text": "hm", "delta": "hm"}}, seq=1, droppable=True, fold=thinking)
    text = ""
    for seq in range(2, 6):
        text += f"w{seq} "
        a.publish(
            "run:two", "agent", {"data": {"text": text, "delta": f"w{seq} "}}, seq=seq, droppable=True, fold=answer
        )
    await settled(a)
    await until(lambda: len(on_b.seen) == 5)
    assert b.skipped == 0 and on_b.seen[-1].payload["data"]["text"] == text
