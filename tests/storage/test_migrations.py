"""Schema migrations on both engines: the same schema on SQLite and PostgreSQL, and upgrades that keep rows.

The numbered migrations (``storage/migrations``) serve both engines. These
tests prove it three ways: a migrated SQLite and a migrated PostgreSQL have the
same tables, columns (types normalised), defaults, primary keys, indexes and
foreign keys; a database left at an earlier version (as the code on main made
it, up to 0004) with rows in it migrates to head with every row intact; and the
runner's guarantees (one transaction per migration, DDL included; refusal of a
newer database; numbering; concurrent start-ups) hold on each engine.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agenthub.core.store import ApiKeyRecord, MessageRecord, RunRecord, SessionRecord, StoreOpenError
from agenthub.storage import _tables
from agenthub.storage.migrations import Migration, MigrationError, current_version, discover, migrate
from agenthub.storage.pipelines import SqlitePipelines
from agenthub.storage.sql import TABLES, SqlStore, to_url
from tests import _servers
from tests._servers import PostgresServer

LATEST = discover()[-1].version  # versions may skip numbers
# The versions main's code released before this branch, in order; a database can be left at any of them.
RELEASED = [m.version for m in discover() if m.version <= 4]


def _normal_type(dialect: str, table: str, column: dict[str, Any], pk: list[str]) -> str:
    name = type(column["type"]).__name__.upper()
    # SQLite's single-column INTEGER PRIMARY KEY is the 64-bit rowid: PostgreSQL's BIGINT.
    if dialect == "sqlite" and name == "INTEGER" and pk == [column["name"]] and table == "messages":
        return "BIGINT"
    return name


def _normal_default(default: str | None) -> str | None:
    """``'0'``, ``0`` and ``'0'::integer`` alike (and ``FALSE``, ``false``).

    PostgreSQL's identity sequence is the rowid's counterpart.
    """
    if default is None or default.startswith("nextval("):
        return None
    default = re.sub(r"(::[a-z ]+)+$", "", default.strip()).strip("'\"")
    # SQL's boolean literals are case-insensitive: SQLite keeps FALSE as written, PostgreSQL says false.
    return default.lower() if default.lower() in ("true", "false") else default


def _schema(conn: Connection) -> dict[str, Any]:
    """Everything a migration decides, normalised so two engines can be compared."""
    inspector = inspect(conn)
    dialect = conn.dialect.name
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(table)["constrained_columns"]
        schema[table] = {
            "columns": {
                c["name"]: (_normal_type(dialect, table, c, pk), c["nullable"], _normal_default(c["default"]))
                for c in inspector.get_columns(table)
            },
            "column_order": [c["name"] for c in inspector.get_columns(table)],
            "primary_key": pk,
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"])) for ix in inspector.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
        }
    return schema


async def _schema_of(url: str) -> dict[str, Any]:
    store = SqlStore(url)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            return await conn.run_sync(_schema)
    finally:
        await store.close()


def _version_rows(conn: Connection) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in conn.execute(text("SELECT version, name FROM schema_version ORDER BY version"))]


# the same schema on both engines


async def test_migrated_sqlite_and_postgresql_have_the_same_schema(tmp_path: Path, pg_url: str) -> None:
    sqlite_schema = await _schema_of(str(tmp_path / "agenthub.db"))
    pg_schema = await _schema_of(pg_url)
    assert sqlite_schema == pg_schema
    # and it is the schema the store queries: every table, every column, in the records' order
    for table in TABLES:
        assert sqlite_schema[table.name]["column_order"] == [c.name for c in table.columns]
    assert {"sessions", "messages", "runs", "devices", "idempotency", "config", "api_keys", "pipelines"} <= set(
        sqlite_schema
    )
    # what the comparison covers is really there (a normalisation bug could hide everything)
    messages = sqlite_schema["messages"]
    assert messages["columns"]["id"] == ("BIGINT", False, None)
    assert messages["columns"]["meta"] == ("TEXT", False, "{}")
    assert ("ix_messages_session_id", ("session_key", "id"), False) in messages["indexes"]
    assert messages["foreign_keys"] == [(("session_key",), "sessions", ("key",), "CASCADE")]
    assert sqlite_schema["runs"]["columns"]["owner"] == ("VARCHAR", True, None)
    assert sqlite_schema["sessions"]["columns"]["message_count"] == ("INTEGER", False, "0")


async def test_migrations_are_recorded_and_idempotent(db_url: str) -> None:
    for _ in range(2):
        store = SqlStore(db_url)
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


async def test_concurrent_start_ups_migrate_once(db_url: str) -> None:
    """Several processes opening one empty database at once: each migration applies once, none fails."""
    stores = [SqlStore(db_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert {s.schema_version for s in stores} == {LATEST}
        async with stores[0].engine.connect() as conn:
            assert await conn.run_sync(_version_rows) == [(m.version, m.name) for m in discover()]
        await asyncio.gather(
            *(s.append_message(MessageRecord("main", "user", f"m{i}", i)) for i, s in enumerate(stores))
        )
        assert len(await stores[1].history("main", 10)) == 4
    finally:
        for s in stores:
            await s.close()


# upgrades keep rows


def _rows_for(version: int) -> dict[str, list[dict[str, Any]]]:
    """Rows as main's code wrote them into a database at ``version`` (JSON as text, times in ms)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "sessions": [
            {"key": "main", "created_ms": 1_000, "updated_ms": 1_002, "message_count": 2, "last_run_id": "r1"},
            {"key": "empty", "created_ms": 500, "updated_ms": 500, "message_count": 0, "last_run_id": None},
        ],
        "messages": [
            {
                "session_key": "main",
                "role": "user",
                "text": "hello ✓",
                "ts_ms": 1_001,
                "run_id": "r1",
                "meta": '{"source":"chat"}',
            },
            {
                "session_key": "main",
                "role": "assistant",
                "text": "Grüße 👋",
                "ts_ms": 1_002,
                "run_id": "r1",
                "meta": "{}",
            },
        ],
        "runs": [
            {
                "run_id": "r1",
                "session_key": "main",
                "status": "ok",
                "created_ms": 1_000,
                "started_ms": 1_001,
                "ended_ms": 1_002,
                "error": None,
                "summary": "done",
                "origin": "ws:cli",
            },
            {
                "run_id": "r2",
                "session_key": "main",
                "status": "running",
                "created_ms": 1_003,
                "started_ms": 1_004,
                "ended_ms": None,
                "error": None,
                "summary": None,
                "origin": "",
            },
        ],
        "devices": [
            {
                "device_id": "d1",
                "public_key": "pk",
                "role": "operator",
                "scopes": '["operator.read"]',
                "display_name": "Laptop",
                "platform": "linux",
                "client_id": "cli",
                "created_ms": 1_000,
                "last_seen_ms": 2_000,
                "status": "paired",
                "token_hash": "h",
                "token_issued_ms": 1_500,
            },
        ],
        "idempotency": [{"key": "k1", "method": "chat.send", "response": '{"ok":true}', "created_ms": 1_000}],
        "config": [{"id": 1, "data": '{"name":"hub"}', "updated_ms": 1_000}],
    }
    if version >= 3:
        rows["api_keys"] = [
            {"key_id": "abc", "user_id": "alice", "key_hash": "sha", "scopes": '["tasks"]', "created_ms": 1_000,
             "revoked_ms": None},
        ]  # fmt: skip
        rows["runs"][0]["owner"] = "alice"
        rows["runs"][1]["owner"] = None
    if version >= 4:
        rows["pipelines"] = [{"uuid": "p-1", "name": "support", "provider": "demo", "config": "{}", "created_ms": 9}]
    return rows


async def _leave_at(url: str, version: int) -> None:
    """A database as the code that knew migrations up to ``version`` left it, with rows in every table."""
    engine: AsyncEngine = create_async_engine(to_url(url))
    try:
        assert await migrate(engine, [m for m in discover() if m.version <= version]) == version
        async with engine.begin() as conn:
            for name, rows in _rows_for(version).items():
                table = next(t for t in (*TABLES, _pipelines_table()) if t.name == name)
                await conn.execute(insert(table), rows)
    finally:
        await engine.dispose()


def _pipelines_table() -> Any:
    from agenthub.storage.pipelines import pipelines_table

    return pipelines_table


@pytest.mark.parametrize("version", RELEASED)
async def test_upgrade_from_an_earlier_schema_keeps_every_row(db_url: str, tmp_path: Path, version: int) -> None:
    await _leave_at(db_url, version)
    store = SqlStore(db_url)
    await store.open()
    try:
        assert store.schema_version == LATEST
        # Migration 8 moved the bare keys to OpenClaw's canonical ones: "main" is agent:main:main.
        main, empty = "agent:main:main", "agent:main:empty"
        history = await store.history(main, 10)
        assert [(m.role, m.text, m.meta) for m in history] == [
            ("user", "hello ✓", {"source": "chat"}),
            ("assistant", "Grüße 👋", {}),
        ]
        assert await store.get_session(main) == SessionRecord(main, 1_000, 1_002, 2, "r1")
        assert await store.get_session("main") is None
        assert [s.key for s in await store.list_sessions(10)] == [main, empty]
        owner = "alice" if version >= 3 else None
        assert await store.get_run("r1") == RunRecord(
            "r1", main, "ok", 1_000, 1_001, 1_002, None, "done", "ws:cli", owner
        )
        assert await store.fail_interrupted_runs("restarted", 9_000) == 1
        device = await store.get_device("d1")
        assert device is not None and device.scopes == ["operator.read"] and device.token_issued_ms == 1_500
        assert await store.get_idempotent("k1", 0) == ("chat.send", {"ok": True})
        assert await store.get_config() == {"name": "hub"}
        if version >= 3:
            assert await store.list_api_keys() == [ApiKeyRecord("abc", "alice", "sha", ["tasks"], 1_000)]
        # the new schema takes new rows: ids keep growing past the old ones
        new_id = await store.append_message(MessageRecord(main, "user", "after", 9_001))
        assert new_id > max(m.id or 0 for m in history)
        pipelines = {p.uuid: p.name for p in await SqlitePipelines(store.engine).list()}
        assert pipelines["default"] == "default"
        if version >= 4:
            assert pipelines["p-1"] == "support"
        async with store.engine.connect() as conn:
            upgraded = await conn.run_sync(_schema)
    finally:
        await store.close()
    # an upgraded database has exactly the schema of a new one
    fresh = await _schema_of(str(tmp_path / "fresh.db"))
    assert upgraded == fresh


# the runner's guarantees, on each engine


@pytest.fixture
async def store(db_url: str) -> Any:
    store = SqlStore(db_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_failed_migration_rolls_back_and_later_ones_apply(store: SqlStore) -> None:
    """Each migration is one transaction, DDL included (both engines have transactional DDL)."""

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


async def test_database_newer_than_code_is_refused(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    noop = Migration(LATEST + 1, "future", lambda conn: None)
    assert await migrate(store.engine, [*discover(), noop]) == LATEST + 1
    name = store.display_name
    await store.close()

    newer = SqlStore(db_url)
    with pytest.raises(StoreOpenError, match=f"database {re.escape(name)}: database schema version .* is newer") as err:
        await newer.open()
    assert isinstance(err.value.__cause__, MigrationError)
    with pytest.raises(RuntimeError, match="not open"):
        newer.engine  # noqa: B018 - the failed open left nothing half-open


async def test_migration_numbers_must_be_unique_but_may_skip(store: SqlStore) -> None:
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


def test_query_tables_are_the_ones_the_store_uses() -> None:
    assert TABLES == _tables.TABLES


def test_postgres_fixture_is_a_real_server(postgres: PostgresServer) -> None:
    assert int(postgres.psql("SHOW server_version_num").strip()) >= 150000


def test_missing_postgres_fails_naming_the_make_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_servers, "_PG_GLOB", str(tmp_path / "none" / "*" / "bin" / "initdb"))
    with pytest.raises(pytest.fail.Exception, match=r"PostgreSQL is not installed .*run `make postgres`"):
        _servers.require_pg_bin()
