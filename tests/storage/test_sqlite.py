"""SqlStore on SQLite: what only the embedded engine has (the contract and migrations run on both elsewhere).

Restart survival, PRAGMAs, ``:memory:``, two engines on the same file, and the
per-call machinery: prebuilt statements (and their fallback for dialects
without ON CONFLICT), connections kept open between calls, failed and cancelled calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agenthub.core.store import ApiKeyRecord, DeviceRecord, MessageRecord, RunRecord, SessionRecord, StoreFullError
from agenthub.protocol.errors import ErrorCode
from agenthub.storage import sql as sqlite_module
from agenthub.storage.migrations import discover
from agenthub.storage.sqlite import TABLES, SqliteStore
from tests._servers import fill_disk, mount_tmpfs
from tests.core.store_contract import StoreContract, StoreFactory, make_run, msg

LATEST = discover()[-1].version  # versions may skip numbers


class TestSqliteMemoryContract(StoreContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: SqliteStore(":memory:")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "agenthub.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(db_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# sqlite specifics


async def test_pragmas(store: SqliteStore) -> None:
    async with store.engine.connect() as conn:
        values = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert values == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


@pytest.mark.parametrize("spec", ["path", "str", "sqlite-url", "aiosqlite-url"])
async def test_accepts_paths_and_urls(tmp_path: Path, spec: str) -> None:
    path = tmp_path / "sub" / "x.db"
    specs: dict[str, str | Path] = {
        "path": path,
        "str": str(path),
        "sqlite-url": f"sqlite:///{path}",
        "aiosqlite-url": f"sqlite+aiosqlite:///{path}",
    }
    store = SqliteStore(specs[spec])
    assert store.url == f"sqlite+aiosqlite:///{path}"
    await store.open()
    try:
        await store.ensure_session("main", 1)
    finally:
        await store.close()
    assert path.exists()


# concurrency


async def test_two_stores_on_one_file(db_path: Path) -> None:
    """Two engines (as two processes would) contend through SQLite's own locking."""
    a, b = SqliteStore(db_path), SqliteStore(db_path)
    await asyncio.gather(a.open(), b.open())
    try:
        assert a.schema_version == b.schema_version == LATEST
        await asyncio.gather(
            *(a.append_message(MessageRecord("main", "user", f"a{i}", i)) for i in range(25)),
            *(b.append_message(MessageRecord("main", "user", f"b{i}", i)) for i in range(25)),
        )
        session = await a.get_session("main")
        assert session is not None and session.message_count == 50
        assert len(await b.history("main", 100)) == 50
    finally:
        await a.close()
        await b.close()


# the prebuilt statements and kept connections (see the module docstring)


@pytest.mark.parametrize(
    ("record", "table"),
    [(SessionRecord, sqlite_module.sessions), (RunRecord, sqlite_module.runs),
     (DeviceRecord, sqlite_module.devices), (ApiKeyRecord, sqlite_module.api_keys)],
)  # fmt: skip
def test_records_list_fields_in_column_order(record: type, table: Table) -> None:
    """Rows of ``select(*table.c)`` become records by position."""
    assert [f.name for f in dataclasses.fields(record)] == [c.name for c in table.columns]


def test_prebuilt_upserts_compile_for_postgresql() -> None:
    """The PostgreSQL branch of each prebuilt upsert renders (SQLite runs the other one)."""
    dialect = make_url("postgresql+asyncpg://").get_dialect()()
    for name, per_dialect in sqlite_module._UPSERT.items():
        table = next(t for t in TABLES if t.name == name)
        (key,) = [c.name for c in table.primary_key]
        sql = str(per_dialect["postgresql"].compile(dialect=dialect, column_keys=[c.name for c in table.columns]))
        assert f"ON CONFLICT ({key}) DO UPDATE SET" in sql
        assert all(f"{c.name} = excluded.{c.name}" in sql for c in table.columns if c.name != key)
    columns = [c.name for c in sqlite_module.sessions.columns]
    bump = str(sqlite_module._BUMP_SESSION["postgresql"].compile(dialect=dialect, column_keys=columns))
    assert "ON CONFLICT (key) DO UPDATE SET" in bump and "coalesce(excluded.last_run_id" in bump
    absent = sqlite_module._INSERT_IF_ABSENT["sessions"]["postgresql"]
    assert "ON CONFLICT (key) DO NOTHING" in str(absent.compile(dialect=dialect, column_keys=columns))


class TestSqliteWithoutOnConflictContract(StoreContract):
    """The look-then-write path of dialects without ON CONFLICT, run on SQLite."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreFactory:
        monkeypatch.setattr(sqlite_module, "_UPSERT", {name: {} for name in sqlite_module._UPSERT})
        monkeypatch.setattr(sqlite_module, "_INSERT_IF_ABSENT", {"sessions": {}})
        monkeypatch.setattr(sqlite_module, "_BUMP_SESSION", {})
        return lambda: SqliteStore(tmp_path / "agenthub.db")


def _raw(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(db_path, timeout=0, isolation_level=None)


async def test_write_that_cannot_lock_fails_and_store_recovers(db_path: Path) -> None:
    store = SqliteStore(db_path, busy_timeout_ms=50)
    await store.open()
    try:
        await store.put_run(make_run("r1"))
        with contextlib.closing(_raw(db_path)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(OperationalError, match="locked"):
                await store.put_run(make_run("r2"))
            assert await store.get_run("r1") == make_run("r1")  # WAL: reads go on
            other.execute("ROLLBACK")
        await store.put_run(make_run("r2"))
        assert await store.get_run("r2") == make_run("r2")
    finally:
        await store.close()


@pytest.mark.parametrize("op", ["put_run", "append_message", "ensure_session", "get_run"])
async def test_cancelled_calls_leave_no_transaction_behind(store: SqliteStore, db_path: Path, op: str) -> None:
    """Cancelled at every step, a call leaves neither the write lock taken nor the store broken."""
    calls: dict[str, Callable[[int], Coroutine[Any, Any, object]]] = {
        "put_run": lambda i: store.put_run(make_run(f"r{i}")),
        "append_message": lambda i: store.append_message(msg(f"s{i % 3}", f"m{i}", i)),
        "ensure_session": lambda i: store.ensure_session(f"e{i}", i),
        "get_run": lambda i: store.get_run("r0"),
    }
    call = calls[op]
    for i in range(40):
        task = asyncio.create_task(call(i))
        for _ in range(i // 2):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.closing(_raw(db_path)) as other:
            other.execute("BEGIN IMMEDIATE")  # timeout=0: fails if the store still holds the lock
            other.execute("ROLLBACK")
    await store.put_run(make_run("after"))
    assert await store.get_run("after") == make_run("after")
    assert await store.append_message(msg("main", "after", 1)) > 0


async def test_kept_connections_see_other_writers_and_let_checkpoints_finish(db_path: Path) -> None:
    """Connections kept open between calls hold no transaction (no stale snapshot, no pinned WAL)."""
    a, b = SqliteStore(db_path), SqliteStore(db_path)
    await a.open()
    await b.open()
    try:
        assert await a.get_run("r1") is None
        await a.put_run(make_run("r0"))
        await b.put_run(make_run("r1", status="running"))
        assert await a.get_run("r1") == make_run("r1", status="running")
        await a.put_run(make_run("r1", status="ok"))
        assert await b.get_run("r1") == make_run("r1", status="ok")
        with contextlib.closing(_raw(db_path)) as other:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        await a.close()
        await b.close()


async def test_full_disk_is_retryable_logged_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLITE_FULL from a real full file system (a small tmpfs): a typed, retryable error; writes resume after."""
    data = tmp_path / "small"
    with mount_tmpfs(data, "1m"):
        store = SqliteStore(data / "agenthub.db")
        await store.open()
        try:
            await store.append_message(msg("main", "before", 1))
            filler = fill_disk(data)
            with caplog.at_level(logging.ERROR, logger="agenthub.storage.sql"):
                for i in range(5):
                    with pytest.raises(StoreFullError, match="disk full") as err:
                        await store.append_message(msg("main", "x" * 8192, 2 + i))
                    assert err.value.code is ErrorCode.UNAVAILABLE and err.value.retryable is True
            # one line for the outage (naming the file), not one per failed call
            lines = [r.getMessage() for r in caplog.records if r.name == "agenthub.storage.sql"]
            assert len(lines) == 1 and lines[0].startswith(f"database {data / 'agenthub.db'}: disk full"), lines
            assert [m.text for m in await store.history("main", 10)] == ["before"]  # reads go on
            filler.unlink()
            await store.append_message(msg("main", "after", 9))
            assert [m.text for m in await store.history("main", 10)] == ["before", "after"]
        finally:
            await store.close()


async def test_legacy_session_keys_are_renamed_to_canonical(db_path: Path) -> None:
    """Migration 8: transcripts written under "main" (and other bare keys) move to their OpenClaw
    name; two legacy keys folding into one are merged in message order; dialect keys stay."""
    store = SqliteStore(db_path)
    await store.open()
    engine = store.engine
    async with engine.begin() as conn:  # back to the state before migration 8
        await conn.execute(text("DELETE FROM schema_version WHERE version = 8"))
        await conn.execute(text("DROP TABLE session_meta"))
    await store.append_message(MessageRecord("main", "user", "one", 1, "r1"))
    await store.append_message(MessageRecord("Main", "user", "two", 2, "r2"))
    await store.append_message(MessageRecord("main", "assistant", "three", 3, "r1"))
    await store.append_message(MessageRecord("notes", "user", "n", 4))
    await store.append_message(MessageRecord("myagent:AbC", "user", "m", 5))
    await store.append_message(MessageRecord("agent:main:x", "user", "x", 6))
    await store.put_run(make_run("r1", session_key="main"))
    await store.close()

    migrated = SqliteStore(db_path)
    await migrated.open()
    try:
        assert migrated.schema_version == LATEST
        keys = {s.key for s in await migrated.list_sessions(100)}
        assert keys == {"agent:main:main", "agent:main:notes", "myagent:AbC", "agent:main:x"}
        assert [m.text for m in await migrated.history("agent:main:main", 10)] == ["one", "two", "three"]
        main = await migrated.get_session("agent:main:main")
        assert main is not None and main.message_count == 3 and main.created_ms == 1 and main.updated_ms == 3
        run = await migrated.get_run("r1")
        assert run is not None and run.session_key == "agent:main:main"
        assert await migrated.get_session("main") is None
    finally:
        await migrated.close()
