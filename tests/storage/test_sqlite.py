"""SqliteStore: the Store contract on a real SQLite file, plus what only a database has.

Restart survival, migration bookkeeping and transactional DDL, PRAGMAs,
concurrent writers (in one store and across two engines on the same file), and
the per-call machinery: prebuilt statements (and their fallback for dialects
without ON CONFLICT), connections kept open between calls, failed and cancelled calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agenthub.core.store import ApiKeyRecord, DeviceRecord, MessageRecord, RunRecord, SessionRecord
from agenthub.storage import sqlite as sqlite_module
from agenthub.storage.migrations import Migration, MigrationError, current_version, discover, migrate
from agenthub.storage.sqlite import TABLES, SqliteStore
from tests.core.store_contract import StoreContract, StoreFactory, make_device, make_run, msg

LATEST = discover()[-1].version  # versions may skip numbers


class TestSqliteFileContract(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        # a nested, not yet existing directory: open() must create it
        return lambda: SqliteStore(tmp_path / "state" / "agenthub.db")


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


# restart


async def test_data_survives_restart(db_path: Path) -> None:
    first = SqliteStore(db_path)
    await first.open()
    ids = [await first.append_message(msg("main", f"m{i}", 1_000 + i, meta={"i": i, "ü": "✓"})) for i in range(3)]
    await first.put_run(make_run("r1", status="running"))
    await first.put_device(make_device("d1"))
    await first.put_idempotent("k1", "chat.send", {"ok": True}, 5_000)
    await first.put_config({"name": "hub"}, 5_000)
    await first.close()

    second = SqliteStore(str(db_path))
    await second.open()
    try:
        assert second.schema_version == LATEST
        history = await second.history("main", 10)
        assert [(m.id, m.text, m.meta) for m in history] == [(ids[i], f"m{i}", {"i": i, "ü": "✓"}) for i in range(3)]
        assert await second.get_session("main") == SessionRecord("main", 1_000, 1_002, 3)
        assert await second.get_run("r1") == make_run("r1", status="running")
        assert await second.get_device("d1") == make_device("d1")
        assert await second.get_idempotent("k1", 5_000) == ("chat.send", {"ok": True})
        assert await second.get_config() == {"name": "hub"}
        # what a gateway does at start-up: runs the dead process left running are failed
        assert await second.fail_interrupted_runs("restarted", 9_000) == 1
        # ids keep growing after a restart, even once the transcript was reset
        assert await second.reset_session("main", 9_000)
        assert await second.append_message(msg("main", "after", 9_001)) > max(ids)
    finally:
        await second.close()


async def test_open_and_close_are_idempotent(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await asyncio.gather(store.open(), store.open())
    engine = store.engine
    await store.open()
    assert store.engine is engine
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_session("main")
    await store.open()  # reopening the same object works too
    assert await store.ensure_session("main", 1) == SessionRecord("main", 1, 1, 0)
    await store.close()


# migrations


def _version_rows(conn: Connection) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in conn.execute(text("SELECT version, name FROM schema_version ORDER BY version"))]


async def test_migrations_are_recorded_and_idempotent(db_path: Path) -> None:
    assert LATEST >= 1
    for _ in range(2):
        store = SqliteStore(db_path)
        await store.open()
        assert store.schema_version == LATEST
        async with store.engine.connect() as conn:
            rows = await conn.run_sync(_version_rows)
        assert rows == [(m.version, m.name) for m in discover()]
        assert rows[0] == (1, "initial")
        # running the migrator again directly changes nothing either
        assert await migrate(store.engine) == LATEST
        assert await current_version(store.engine) == LATEST
        await store.close()


async def test_store_tables_mirror_migrated_schema(store: SqliteStore) -> None:
    """The query-side Table objects must match what the migrations built."""

    def columns(conn: Connection) -> dict[str, set[str]]:
        inspector = inspect(conn)
        return {t.name: {c["name"] for c in inspector.get_columns(t.name)} for t in TABLES}

    async with store.engine.connect() as conn:
        actual = await conn.run_sync(columns)
    assert actual == {t.name: {c.name for c in t.columns} for t in TABLES}


async def test_indexes_exist(store: SqliteStore) -> None:
    def indexes(conn: Connection) -> dict[str, list[list[str | None]]]:
        inspector = inspect(conn)
        return {t: [ix["column_names"] for ix in inspector.get_indexes(t)] for t in ("messages", "runs")}

    async with store.engine.connect() as conn:
        found = await conn.run_sync(indexes)
    assert ["session_key", "id"] in found["messages"]
    assert ["status"] in found["runs"]


async def test_failed_migration_rolls_back_and_later_ones_apply(store: SqliteStore) -> None:
    """Each migration is one transaction, DDL included (SQLite has transactional DDL)."""

    def broken(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        conn.execute(text("ALTER TABLE sessions ADD COLUMN title VARCHAR"))
        raise RuntimeError("migration bug")

    def adds_title(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE sessions ADD COLUMN title VARCHAR"))

    engine = store.engine
    steps = discover()
    with pytest.raises(RuntimeError, match="migration bug"):
        await migrate(engine, [*steps, Migration(LATEST + 1, "broken", broken)])

    def tables_and_session_columns(conn: Connection) -> tuple[list[str], list[str]]:
        inspector = inspect(conn)
        return inspector.get_table_names(), [c["name"] for c in inspector.get_columns("sessions")]

    async with engine.connect() as conn:
        tables, session_columns = await conn.run_sync(tables_and_session_columns)
    assert "half_done" not in tables
    assert "title" not in session_columns
    assert await current_version(engine) == LATEST

    assert await migrate(engine, [*steps, Migration(LATEST + 1, "add_title", adds_title)]) == LATEST + 1
    async with engine.connect() as conn:
        _, session_columns = await conn.run_sync(tables_and_session_columns)
        rows = await conn.run_sync(_version_rows)
    assert "title" in session_columns
    assert rows[-1] == (LATEST + 1, "add_title")


async def test_database_newer_than_code_is_refused(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    noop = Migration(LATEST + 1, "future", lambda conn: None)
    assert await migrate(store.engine, [*discover(), noop]) == LATEST + 1
    await store.close()

    newer = SqliteStore(db_path)
    with pytest.raises(MigrationError, match="newer"):
        await newer.open()
    with pytest.raises(RuntimeError, match="not open"):
        newer.engine  # noqa: B018 - the failed open left nothing half-open


async def test_migration_numbers_must_be_unique_but_may_skip(store: SqliteStore) -> None:
    steps = discover()
    with pytest.raises(MigrationError, match="unique"):
        await migrate(store.engine, [*steps, Migration(LATEST, "duplicate", lambda conn: None)])
    assert await current_version(store.engine) == LATEST
    ran: list[int] = []
    ahead = Migration(LATEST + 2, "ahead", lambda conn: ran.append(LATEST + 2))
    assert await migrate(store.engine, [*steps, ahead]) == LATEST + 2
    # A migration numbered below the high-water mark but never applied still runs, once.
    behind = Migration(LATEST + 1, "behind", lambda conn: ran.append(LATEST + 1))
    assert await migrate(store.engine, [*steps, behind, ahead]) == LATEST + 2
    assert await migrate(store.engine, [*steps, behind, ahead]) == LATEST + 2
    assert ran == [LATEST + 2, LATEST + 1]


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


async def test_concurrent_appends_lose_nothing(store: SqliteStore) -> None:
    n = 50
    ids = await asyncio.gather(
        *(store.append_message(msg("main", f"m{i}", 1_000 + i, meta={"i": i})) for i in range(n))
    )
    assert len(set(ids)) == n
    session = await store.get_session("main")
    assert session is not None and session.message_count == n
    history = await store.history("main", n * 2)
    assert len(history) == n
    assert [m.id for m in history] == sorted(ids)
    assert sorted(m.meta["i"] for m in history) == list(range(n))


async def test_concurrent_mixed_operations(store: SqliteStore) -> None:
    """Racing creators of one session agree on it; reads run alongside writes."""
    created = await asyncio.gather(*(store.ensure_session("race", 1_000 + i) for i in range(20)))
    assert len({(s.key, s.created_ms) for s in created}) == 1

    async def writer(i: int) -> None:
        await store.append_message(msg(f"s{i % 5}", f"m{i}", 2_000 + i))
        await store.put_run(make_run(f"r{i}", session_key=f"s{i % 5}", status="ok"))

    async def reader(i: int) -> None:
        await store.history(f"s{i % 5}", 10)
        await store.list_sessions(10)

    await asyncio.gather(*(writer(i) for i in range(40)), *(reader(i) for i in range(40)))
    sessions = {s.key: s.message_count for s in await store.list_sessions(100)}
    assert sessions == {"race": 0, **{f"s{k}": 8 for k in range(5)}}
    assert await store.count_runs_by_status() == {"ok": 40}


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


async def test_legacy_session_keys_are_renamed_to_canonical(db_path: Path) -> None:
    """Migration 10: transcripts written under "main" (and other bare keys) move to their OpenClaw
    name; two legacy keys folding into one are merged in message order; dialect keys stay."""
    store = SqliteStore(db_path)
    await store.open()
    engine = store.engine
    async with engine.begin() as conn:  # back to the state before migration 10
        await conn.execute(text("DELETE FROM schema_version WHERE version = 10"))
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
