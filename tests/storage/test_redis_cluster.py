"""RedisCluster against a real redis-server: two "processes" (two clusters, each on its own RedisBus).

The member each cluster calls back into is a small recorder standing in for the node (the
cluster's own behaviour, Redis included, is what is under test); the gateway-level behaviour
is tested with real gateway processes in ``tests/e2e/test_cluster.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agenthub.core.ratelimit import AuthLockedOut, SecurityLimits
from agenthub.storage.redis_bus import RedisBus
from agenthub.storage.redis_cluster import RedisAuthLimiter, RedisCluster

from ..core.bus_contract import Recorder, settled


class Member:
    """What a node does when the cluster calls it: records, answers aborts and waits."""

    def __init__(self) -> None:
        self.aborts: list[tuple[str, str | None, str]] = []
        self.orphans: list[tuple[str, str]] = []
        self.presence_changes = 0
        self.results: dict[str, dict[str, Any]] = {}

    async def serve_abort(self, session_key: str, run_id: str | None, reason: str) -> list[str]:
        self.aborts.append((session_key, run_id, reason))
        return [run_id or "r-by-session"]

    async def serve_wait(self, run_id: str, timeout_s: float) -> dict[str, Any] | None:
        return self.results.get(run_id)

    def remote_presence_changed(self) -> None:
        self.presence_changes += 1

    async def fail_orphaned_run(self, run_id: str, reason: str) -> bool:
        self.orphans.append((run_id, reason))
        return True


async def until(pred: Callable[[], bool], timeout: float = 15) -> None:
    """Poll a state another connection changes, with a generous ceiling."""
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
async def clusters(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[RedisCluster, RedisBus]] = []

    async def make(ttl_ms: int = 1200) -> tuple[RedisCluster, Member]:
        bus = RedisBus(redis_url, prefix="c")
        await bus.start()
        cluster = RedisCluster(bus, node_ttl_ms=ttl_ms, rpc_timeout_s=5)
        member = Member()
        cluster.bind(member)
        await cluster.start()
        made.append((cluster, bus))
        return cluster, member

    yield make
    for cluster, bus in made:
        await cluster.stop()
        await bus.stop(flush_s=0)


async def test_ownership_forwards_aborts_and_waits_to_the_owner(clusters: Callable[..., Any]) -> None:
    (a, ma), (b, mb) = await clusters(), await clusters()
    await a.run_started("r1", "agent:main:s")
    ma.results["r1"] = {"runId": "r1", "status": "ok"}
    assert await b.abort_remote("agent:main:s", "r1", "stop") == ["r1"]
    assert ma.aborts == [("agent:main:s", "r1", "stop")] and mb.aborts == []
    assert await b.abort_remote("agent:main:s", None, "reset") == ["r-by-session"]  # by session: its runs' owners
    assert await b.wait_remote("r1", 1) == {"runId": "r1", "status": "ok"}
    assert await a.abort_remote("agent:main:s", "r1", "own") == []  # the owner itself forwards nothing
    a.run_ended("r1", "agent:main:s")
    await until(lambda: not a._tasks)
    assert await b.wait_remote("r1", 1) is None  # no live owner: the caller reads the store


async def test_presence_is_shared_and_a_dead_process_is_reaped_once(clusters: Callable[..., Any]) -> None:
    (a, _), (b, mb), (c, mc) = await clusters(), await clusters(), await clusters()
    a.presence_changed([{"host": "on-a", "ts": 1}])
    await until(lambda: any(e["host"] == "on-a" for e in b.remote_presence()))
    assert mb.presence_changes >= 1 and any(e["host"] == "on-a" for e in c.remote_presence())
    await a.run_started("orphan", "agent:main:x")
    # A dies without a word: its heartbeat stops (the task is gone, nothing is cleaned up).
    assert a._loop_task is not None
    a._loop_task.cancel()
    await until(lambda: bool(mb.orphans or mc.orphans))
    await until(lambda: not b.remote_presence() and not c.remote_presence())
    reaped = mb.orphans + mc.orphans
    assert len(reaped) == 1 and reaped[0][0] == "orphan" and "died" in reaped[0][1]  # one process noticed first


async def test_one_process_leads_each_chore_and_hands_it_over(clusters: Callable[..., Any]) -> None:
    (a, _), (b, _) = await clusters(), await clusters()
    assert [a.leads("scheduler"), b.leads("scheduler")].count(True) == 1
    leader = a if a.leads("scheduler") else b
    other = b if leader is a else a
    await leader.stop()
    await until(lambda: other.leads("scheduler"))


async def test_invalidations_reach_the_others_in_order_with_events(clusters: Callable[..., Any]) -> None:
    (a, _), (b, _) = await clusters(), await clusters()
    seen: list[str] = []
    b.on_invalidate("transcript", lambda key: seen.append(f"inval:{key}"))
    rec = Recorder()
    b.bus.add_listener(rec)
    b.bus.add_listener(type("L", (), {"handle_publication": lambda self, p: seen.append(f"event:{p.seq}")})())
    a.invalidate("transcript", "agent:main:s")
    a.bus.publish("run:x", "chat", {"state": "final"}, seq=1)
    await settled(a.bus)
    await until(lambda: len(seen) == 2)
    assert seen == ["inval:agent:main:s", "event:1"]  # the write's invalidation never trails its event


async def test_the_auth_limiter_counts_guesses_on_every_process(clusters: Callable[..., Any]) -> None:
    (a, _), (b, _) = await clusters(), await clusters()
    limits = SecurityLimits(auth_max_failures=3, auth_window_ms=60_000, auth_lockout_ms=60_000)
    la, lb = RedisAuthLimiter(limits, a), RedisAuthLimiter(limits, b)

    async def wrong() -> None:
        raise PermissionError("bad token")

    for limiter in (la, lb):
        with pytest.raises(PermissionError):
            await limiter.attempt("10.0.0.9", 1_000, wrong, lambda e: True)
    with pytest.raises(AuthLockedOut):  # the third guess, on A, locks the IP out
        await la.attempt("10.0.0.9", 1_000, wrong, lambda e: True)

    async def right() -> str:
        return "ok"

    with pytest.raises(AuthLockedOut):  # ...on B too, before any credential is checked
        await lb.attempt("10.0.0.9", 1_000, right, lambda e: True)
    assert await lb.attempt("10.0.0.10", 1_000, right, lambda e: True) == "ok"
