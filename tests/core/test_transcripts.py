"""``TranscriptCache`` in front of a real SQLite file: coherent with every write, bounded, never aliased.

Every check compares the cache's answer with what the wrapped store itself
returns, and counts the store's ``history`` reads to tell a hit from a miss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from agenthub.core.store import MessageRecord, SessionRecord, Store
from agenthub.core.transcripts import RECORD_OVERHEAD, TranscriptCache, message_view
from agenthub.storage.sqlite import SqliteStore
from tests.core.store_contract import StoreContract, StoreFactory, msg


class CountingStore(SqliteStore):
    """A real SQLite store that counts transcript reads and can hold one back."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.hold: asyncio.Event | None = None  # set: the next read returns only once it is set
        self.held = asyncio.Event()  # set once that read has read
        self.fail_append = False  # append commits, then raises (a store failing after the fact)
        self.row_reads = 0
        self.hold_row: asyncio.Event | None = None  # as ``hold``, for the next get_session

    async def get_session(self, key: str) -> SessionRecord | None:
        self.row_reads += 1
        record = await super().get_session(key)
        hold, self.hold_row = self.hold_row, None
        if hold is not None:
            self.held.set()
            await hold.wait()
        return record

    async def history(self, session_key: str, limit: int) -> list[MessageRecord]:
        self.reads += 1
        rows = await super().history(session_key, limit)
        hold, self.hold = self.hold, None
        if hold is not None:
            self.held.set()
            await hold.wait()  # read done, answer late: anything written meanwhile is not in ``rows``
        return rows

    async def append_message(self, msg: MessageRecord) -> int:
        msg_id = await super().append_message(msg)
        if self.fail_append:
            raise RuntimeError("append failed after commit")
        return msg_id


class TestTranscriptCacheContract(StoreContract):
    """The whole Store contract through a tiny cache (3 messages, 2 sessions): limits and eviction everywhere."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: TranscriptCache(SqliteStore(tmp_path / "contract.db"), sessions=2, messages=3)


class TestTranscriptCacheOffContract(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: TranscriptCache(SqliteStore(tmp_path / "off.db"), sessions=0, messages=3)


@pytest.fixture
async def inner(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(tmp_path / "agenthub.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def cache(inner: CountingStore) -> TranscriptCache:
    return TranscriptCache(inner, sessions=3, messages=5)


async def fill(store: TranscriptCache, key: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await store.append_message(msg(key, f"{key}-{i}", 1_000 + i, run_id=f"r{i}", meta={"i": i, "tags": ["a"]}))


async def assert_coherent(cache: TranscriptCache, inner: CountingStore, key: str, limit: int = 1000) -> None:
    """The cache answers exactly what the store holds (ids, meta, order), and so do the views."""
    got = await cache.history(key, limit)
    want = await inner.history(key, limit)
    assert got == want
    assert await cache.views(key, limit) == [message_view(m) for m in want]


async def test_repeated_history_reads_the_store_once(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "main", 4)
    first = await cache.history("main", 200)
    reads = inner.reads
    for _ in range(5):
        assert await cache.history("main", 200) == first
        assert await cache.views("main", 200) == [message_view(m) for m in first]
    assert inner.reads == reads == 1
    assert [m.text for m in first] == [f"main-{i}" for i in range(4)]
    assert all(m.id is not None for m in first)


async def test_append_after_caching_is_seen(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "main", 2)
    await cache.views("main", 10)  # views built: the append must extend them too
    new_id = await cache.append_message(msg("main", "late", 5_000, meta={"nested": {"x": [1, None]}}))
    reads = inner.reads
    got = await cache.history("main", 10)
    assert inner.reads == reads  # still served from memory
    assert got[-1].id == new_id and got[-1].meta == {"nested": {"x": [1, None]}}
    assert (await cache.views("main", 10))[-1] == message_view(got[-1])
    await assert_coherent(cache, inner, "main")


async def test_reset_and_delete_are_seen(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "a", 3)
    await fill(cache, "b", 3)
    await cache.history("a", 10)
    await cache.history("b", 10)
    assert await cache.reset_session("a", 9_000) is True
    assert await cache.history("a", 10) == []
    assert await cache.views("a", 10) == []
    await fill(cache, "a", 1, start=10)
    await assert_coherent(cache, inner, "a")

    assert await cache.delete_session("b") is True
    assert await cache.history("b", 10) == []
    await fill(cache, "b", 2, start=20)
    await assert_coherent(cache, inner, "b")
    assert await cache.delete_session("nope") is False
    assert await cache.reset_session("nope", 1) is False


async def test_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    first = TranscriptCache(SqliteStore(path), sessions=2, messages=5)
    await first.open()
    await fill(first, "main", 3)
    before = await first.history("main", 10)
    await first.close()
    assert first.cached_sessions() == []

    second = TranscriptCache(SqliteStore(path), sessions=2, messages=5)
    await second.open()
    try:
        assert await second.history("main", 10) == before
        await fill(second, "main", 1, start=3)
        assert [m.text for m in await second.history("main", 10)] == [f"main-{i}" for i in range(4)]
    finally:
        await second.close()


async def test_limit_larger_than_cached_goes_to_the_store(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "long", 8)  # more than the 5 kept
    assert len(await cache.history("long", 3)) == 3  # miss: loads the newest 5
    reads = inner.reads
    assert await cache.history("long", 5) == await inner.history("long", 5)
    assert inner.reads == reads + 1  # the comparison read only
    reads = inner.reads
    everything = await cache.history("long", 100)
    assert inner.reads == reads + 1  # the cache holds 5 of 8: the store answers
    assert [m.text for m in everything] == [f"long-{i}" for i in range(8)]
    await assert_coherent(cache, inner, "long")

    # Appends past the bound keep the newest 5 and stay exact.
    await fill(cache, "long", 4, start=8)
    await assert_coherent(cache, inner, "long", 5)
    await assert_coherent(cache, inner, "long", 12)


async def test_a_whole_short_transcript_answers_any_limit(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "short", 2)
    await cache.history("short", 1)
    reads = inner.reads
    assert [m.text for m in await cache.history("short", 1000)] == ["short-0", "short-1"]
    await fill(cache, "short", 3, start=2)  # exactly 5: still the whole transcript
    assert len(await cache.history("short", 1000)) == 5
    assert inner.reads == reads
    await fill(cache, "short", 1, start=5)  # 6: the oldest falls out, no longer whole
    assert len(await cache.history("short", 5)) == 5
    assert inner.reads == reads
    assert len(await cache.history("short", 6)) == 6
    assert inner.reads == reads + 1


async def test_eviction_keeps_the_most_recently_read_sessions(cache: TranscriptCache, inner: CountingStore) -> None:
    for key in ("s1", "s2", "s3", "s4"):
        await fill(cache, key, 1)
    for key in ("s1", "s2", "s3"):
        await cache.history(key, 10)
    await cache.history("s1", 10)  # s1 is now the most recent: s2 goes next
    await cache.history("s4", 10)
    assert cache.cached_sessions() == ["s3", "s1", "s4"]
    reads = inner.reads
    await cache.history("s2", 10)
    assert inner.reads == reads + 1
    assert len(cache.cached_sessions()) == 3
    for key in ("s1", "s2", "s3", "s4"):
        await assert_coherent(cache, inner, key)


async def test_the_byte_bound_evicts_and_its_accounting_follows_writes(inner: CountingStore) -> None:
    cost = RECORD_OVERHEAD + 1000
    cache = TranscriptCache(inner, sessions=10, messages=5, max_bytes=4 * cost)
    for key in ("a", "b"):
        for i in range(2):
            await cache.append_message(msg(key, "x" * 1000, 1_000 + i))
        await cache.history(key, 10)
    assert cache.cached_sessions() == ["a", "b"] and cache.cached_bytes == 4 * cost
    await cache.append_message(msg("b", "x" * 1000, 2_000))  # b grows past the bound: a (least recent) goes
    assert cache.cached_sessions() == ["b"] and cache.cached_bytes == 3 * cost
    await cache.reset_session("b", 3_000)
    assert cache.cached_bytes == 0
    await cache.append_message(msg("big", "y" * 10 * cost, 4_000))  # one message over the bound is not kept
    assert len(await cache.history("big", 10)) == 1 and "big" not in cache.cached_sessions()
    await cache.delete_session("b")
    assert cache.cached_sessions() == [] and cache.cached_bytes == 0
    cache.resize(10, 5, max_bytes=10 * cost)
    await cache.history("a", 10)
    assert cache.cached_bytes == 2 * cost
    cache.resize(10, 5, max_bytes=cost)
    assert cache.cached_sessions() == [] and cache.cached_bytes == 0
    await assert_coherent(cache, inner, "a")


async def test_sessions_are_isolated(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "a", 2)
    await fill(cache, "b", 2)
    b_before = await cache.history("b", 10)
    await cache.history("a", 10)
    await fill(cache, "a", 2, start=2)
    await cache.reset_session("a", 9_000)
    assert await cache.history("b", 10) == b_before
    await cache.delete_session("a")
    assert await cache.history("b", 10) == b_before
    await assert_coherent(cache, inner, "b")


async def test_returned_records_do_not_alias_the_cache(cache: TranscriptCache, inner: CountingStore) -> None:
    assert await cache.history("main", 10) == []  # cached (empty, whole): the append goes into the entry
    meta: dict[str, Any] = {"nested": {"list": [1, 2]}}
    record = msg("main", "hello", 1_000, meta=meta)
    await cache.append_message(record)
    assert "main" in cache.cached_sessions()
    meta["nested"]["list"].append(3)  # the caller reuses its own objects
    record.text = "changed by the caller"
    got = await cache.history("main", 10)
    got[0].meta["nested"]["list"].clear()
    got[0].meta["added"] = True
    got[0].text = "changed by a reader"
    got.clear()
    again = await cache.history("main", 10)
    assert [(m.text, m.meta) for m in again] == [("hello", {"nested": {"list": [1, 2]}})]
    assert again == await inner.history("main", 10)


async def test_concurrent_misses_share_one_read(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "hot", 3)
    results = await asyncio.gather(*(cache.history("hot", 10) for _ in range(20)))
    assert inner.reads == 1
    assert all(r == results[0] for r in results) and len(results[0]) == 3
    assert results[0][0] is not results[1][0]


async def test_a_load_that_raced_a_write_is_not_installed(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "race", 2)
    hold = inner.hold = asyncio.Event()
    reader = asyncio.create_task(cache.history("race", 10))
    await inner.held.wait()  # the slow load has read (2 messages) and waits to answer
    await cache.append_message(msg("race", "written during the load", 5_000))
    hold.set()
    assert len(await reader) == 2  # concurrent with the write: the older answer is right for it
    assert "race" not in cache.cached_sessions()  # but it must not stay behind for later readers
    await assert_coherent(cache, inner, "race")
    assert len(await cache.history("race", 10)) == 3


async def test_a_read_during_a_write_goes_to_the_store(tmp_path: Path) -> None:
    gate, committed = asyncio.Event(), asyncio.Event()
    gate.set()

    class SlowAppend(SqliteStore):
        async def append_message(self, msg: MessageRecord) -> int:
            msg_id = await super().append_message(msg)
            committed.set()
            await gate.wait()  # committed, not yet acknowledged
            return msg_id

    inner = SlowAppend(tmp_path / "slow.db")
    cache = TranscriptCache(inner, sessions=2, messages=5)
    await cache.open()
    try:
        await cache.append_message(msg("w", "first", 1_000))
        await cache.history("w", 10)
        gate.clear()
        committed.clear()
        writer = asyncio.create_task(cache.append_message(msg("w", "second", 2_000)))
        await committed.wait()
        assert [m.text for m in await cache.history("w", 10)] == ["first", "second"]  # committed: visible
        gate.set()
        await writer
        assert [m.text for m in await cache.history("w", 10)] == ["first", "second"]
        assert "w" in cache.cached_sessions()
    finally:
        gate.set()
        await cache.close()


async def test_overlapping_writes_stay_coherent(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "busy", 2)
    await cache.history("busy", 10)
    await asyncio.gather(
        *(cache.append_message(msg("busy", f"c{i}", 2_000 + i)) for i in range(6)),
        cache.reset_session("busy", 1_500),
        *(cache.history("busy", 10) for _ in range(3)),
    )
    await assert_coherent(cache, inner, "busy", 5)
    await assert_coherent(cache, inner, "busy")


async def test_a_failed_write_drops_the_entry(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "f", 2)
    await cache.history("f", 10)
    inner.fail_append = True
    with pytest.raises(RuntimeError):
        await cache.append_message(msg("f", "stored anyway", 3_000))
    inner.fail_append = False
    assert "f" not in cache.cached_sessions()
    assert [m.text for m in await cache.history("f", 10)] == ["f-0", "f-1", "stored anyway"]


async def test_a_cancelled_write_settles_when_the_store_is_done(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "c", 2)
    await cache.history("c", 10)
    writer = asyncio.create_task(cache.append_message(msg("c", "maybe", 3_000)))
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    await asyncio.sleep(0)
    await assert_coherent(cache, inner, "c")


async def test_resize(cache: TranscriptCache, inner: CountingStore) -> None:
    for key in ("a", "b", "c"):
        await fill(cache, key, 3)
        await cache.history(key, 10)
    cache.resize(2, 5)
    assert cache.cached_sessions() == ["b", "c"]
    cache.resize(2, 2)  # a new per-session bound starts over
    assert cache.cached_sessions() == []
    assert len(await cache.history("a", 2)) == 2
    await assert_coherent(cache, inner, "a")
    cache.resize(0, 2)  # off
    reads = inner.reads
    await cache.history("a", 2)
    assert inner.reads == reads + 1 and cache.cached_sessions() == []
    with pytest.raises(ValueError):
        cache.resize(1, 0)


async def test_forwards_the_engine(cache: TranscriptCache, inner: CountingStore) -> None:
    assert cache.engine is inner.engine
    assert cache.inner is inner
    assert getattr(TranscriptCache(cast(Store, _NoEngine()), sessions=1, messages=1), "engine", None) is None


class _NoEngine:
    pass


async def test_the_gateway_installs_the_cache(tmp_path: Path) -> None:
    from agenthub.app import Gateway

    async with Gateway({"data_dir": str(tmp_path), "port": 0, "limits": {"transcript_cache_messages": 7}}) as gw:
        assert isinstance(gw.store, TranscriptCache) and gw.store is gw.transcripts
        assert gw.node is not None and gw.node.store is gw.store
        assert gw.edge is not None and gw.edge.store is gw.store
        assert (gw.transcripts.max_sessions, gw.transcripts.max_messages) == (128, 7)


async def test_a_message_meta_counts_toward_the_byte_bound(inner: CountingStore) -> None:
    """An answer's stored thinking and tool calls live in its meta: the cache's bound must see them."""
    cache = TranscriptCache(inner, sessions=10, messages=5, max_bytes=10 * RECORD_OVERHEAD)
    plain = msg("m", "answer", 1_000, role="assistant")
    await cache.append_message(plain)
    await cache.history("m", 10)
    base = cache.cached_bytes
    assert base == RECORD_OVERHEAD + len("answer")
    rich = msg("m", "answer", 2_000, role="assistant", meta={"thinking": "z" * 2000})
    await cache.append_message(rich)
    assert cache.cached_bytes >= 2 * base + 2000
    await cache.append_message(msg("m", "x", 3_000, meta={"thinking": "z" * 20 * RECORD_OVERHEAD}))
    assert "m" not in cache.cached_sessions() and cache.cached_bytes == 0  # past the bound: dropped
    assert [m.meta for m in await cache.history("m", 10)][1] == {"thinking": "z" * 2000}


async def _row(inner: CountingStore, key: str) -> tuple[SessionRecord | None, dict[str, Any]]:
    record = await inner.get_session(key)
    return record, (await inner.get_session_meta([key])).get(key, {}) if record is not None else {}


async def test_session_info_is_read_once_and_follows_every_row_write(
    cache: TranscriptCache, inner: CountingStore
) -> None:
    assert await cache.session_info("main") == (None, {})
    await fill(cache, "main", 2)
    first = await cache.session_info("main")
    reads = inner.row_reads
    assert await cache.session_info("main") == first and inner.row_reads == reads  # a hit
    assert first == await _row(inner, "main") and first[0] is not None and first[0].message_count == 2
    steps: list[Any] = [
        lambda: fill(cache, "main", 1, start=2),
        lambda: cache.put_session_meta("main", {"label": "renamed"}, 5_000),
        lambda: cache.trim_session("main", 1),
        lambda: cache.reset_session("main", 6_000),
        lambda: cache.delete_session("main"),
        lambda: cache.ensure_session("main", 7_000),
    ]
    for step in steps:
        await step()
        got = await cache.session_info("main")
        assert got == await _row(inner, "main")
        assert await cache.session_info("main") == got  # and cached again until the next write
    assert got[0] is not None and got[0].created_ms == 7_000 and got[1] == {}


async def test_a_row_read_that_raced_a_write_is_not_installed(cache: TranscriptCache, inner: CountingStore) -> None:
    await fill(cache, "main", 1)
    inner.hold_row = release = asyncio.Event()
    inner.held.clear()
    early = asyncio.ensure_future(cache.session_info("main"))
    await inner.held.wait()  # the row is read (1 message); its metadata is not yet
    await fill(cache, "main", 1, start=1)
    release.set()
    await early  # it may show either...
    record = (await cache.session_info("main"))[0]  # ...but it is not kept
    assert record is not None and record.message_count == 2


async def test_session_info_forget_and_the_cache_off(inner: CountingStore, tmp_path: Path) -> None:
    cache = TranscriptCache(inner, sessions=3, messages=5)
    await fill(cache, "main", 1)
    await cache.session_info("main")
    writes: list[str] = []
    cache.on_write = writes.append
    await inner.put_session_meta("main", {"label": "from another process"}, 1)  # behind the cache's back
    cache.forget("main")  # what the cluster's invalidation does
    assert (await cache.session_info("main"))[1] == {"label": "from another process"}
    await cache.put_session_meta("main", {}, 2)
    assert writes == ["main"]  # other processes are told
    off = TranscriptCache(inner, sessions=0, messages=5)
    reads = inner.row_reads
    await off.session_info("main")
    await off.session_info("main")
    assert inner.row_reads == reads + 2
