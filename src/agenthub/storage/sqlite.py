"""``SqliteStore``: the default ``Store``, on SQLAlchemy 2 async Core.

SQLite via aiosqlite by default; any async SQLAlchemy URL is accepted. Queries
are portable Core constructs (upserts use ``ON CONFLICT``, which SQLite and
PostgreSQL share), so PostgreSQL via asyncpg should need only a URL, though only
SQLite is exercised by the test suite so far.

SQLite specifics, applied only when the dialect is sqlite:

* PRAGMAs on every new connection: WAL (readers never block the writer),
  ``synchronous=NORMAL`` (durable across process crashes, the WAL trade-off),
  ``foreign_keys=ON`` and a ``busy_timeout`` for other processes holding the lock.
* Real transactions: the stdlib driver's legacy mode neither BEGINs before a
  SELECT nor before DDL (so migrations would autocommit piecemeal). We switch it
  off and emit BEGIN ourselves, ``BEGIN IMMEDIATE`` for writes so a write
  transaction owns the lock from its first statement instead of failing with
  SQLITE_BUSY when it upgrades from a read. Reads are single statements, each
  atomic on its own, so they skip BEGIN: with aiosqlite every statement is a
  round trip to the connection's thread, and BEGIN costs one more.
* One writer at a time inside the process (an ``asyncio.Lock``): SQLite allows a
  single writer anyway, and queueing on the event loop is cheaper and fairer than
  pool threads sleeping in the busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from agenthub.core.store import ApiKeyRecord, DeviceRecord, MessageRecord, RunRecord, SessionRecord, Store
from agenthub.protocol import _json
from agenthub.storage.migrations import migrate

__all__ = ["SqliteStore"]

# Execution option read by the sqlite "begin" hook: which BEGIN to emit.
_BEGIN_OPTION = "agenthub_sqlite_begin"
_CONFIG_ROW_ID = 1

# The schema as of the latest migration, for building queries. Migrations own the
# DDL (see storage/migrations); these definitions must only mirror it, and a test
# checks that they do.
_metadata = MetaData()

sessions = Table(
    "sessions",
    _metadata,
    Column("key", String, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("last_run_id", String),
)

messages = Table(
    "messages",
    _metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("session_key", String, nullable=False),
    Column("role", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("run_id", String),
    Column("meta", Text, nullable=False),
)

runs = Table(
    "runs",
    _metadata,
    Column("run_id", String, primary_key=True),
    Column("session_key", String, nullable=False),
    Column("status", String, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("ended_ms", BigInteger),
    Column("error", Text),
    Column("summary", Text),
    Column("origin", String, nullable=False),
    Column("owner", String),
)

api_keys = Table(
    "api_keys",
    _metadata,
    Column("key_id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("key_hash", String, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
)

devices = Table(
    "devices",
    _metadata,
    Column("device_id", String, primary_key=True),
    Column("public_key", Text, nullable=False),
    Column("role", String, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("display_name", String),
    Column("platform", String),
    Column("client_id", String),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("token_hash", String),
    Column("token_issued_ms", BigInteger),
)

idempotency = Table(
    "idempotency",
    _metadata,
    Column("key", String, primary_key=True),
    Column("method", String, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

config_table = Table(
    "config",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("data", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

TABLES: tuple[Table, ...] = (sessions, messages, runs, devices, idempotency, config_table, api_keys)

_INTERRUPTIBLE = ("queued", "running")


def _to_url(url_or_path: str | os.PathLike[str] | URL) -> URL:
    """A path means a SQLite file; a URL is taken as is, with sync drivers swapped for async ones."""
    if isinstance(url_or_path, URL):
        url = url_or_path
    elif isinstance(url_or_path, str) and "://" in url_or_path:
        url = make_url(url_or_path)
    else:
        return URL.create("sqlite+aiosqlite", database=os.path.expanduser(os.fspath(url_or_path)))
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    return url


def _is_memory(url: URL) -> bool:
    db = url.database or ""
    return db in ("", ":memory:") or "mode=memory" in db or url.query.get("mode") == "memory"


def _make_parent_dir(database: str) -> None:
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _dumps(value: Any) -> str:
    """JSON as text, so stored payloads stay readable with the sqlite3 shell or psql."""
    return _json.dumps_str(value)


def _session(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        key=row.key,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        message_count=row.message_count,
        last_run_id=row.last_run_id,
    )


# history(): built once (SQLAlchemy then reuses the compiled form); the columns are
# listed in the order _messages unpacks them.
_HISTORY = (
    select(
        messages.c.id, messages.c.session_key, messages.c.role, messages.c.text,
        messages.c.ts_ms, messages.c.run_id, messages.c.meta,
    )
    .where(messages.c.session_key == bindparam("session_key"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def _messages(rows: Sequence[Sequence[Any]]) -> list[MessageRecord]:
    """Newest-first ``_HISTORY`` rows as records, oldest first.

    Every transcript read that misses the gateway's TranscriptCache lands here:
    tuple unpacking costs a tenth of Row attribute access (measured, 200 rows),
    and the common empty meta skips the JSON decoder.
    """
    return [
        MessageRecord(key, role, text, ts_ms, run_id, {} if meta == "{}" else _json.loads(meta), id_)
        for id_, key, role, text, ts_ms, run_id, meta in reversed(rows)
    ]


def _run(row: Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        session_key=row.session_key,
        status=row.status,
        created_ms=row.created_ms,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
        error=row.error,
        summary=row.summary,
        origin=row.origin,
        owner=row.owner,
    )


def _api_key(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        user_id=row.user_id,
        key_hash=row.key_hash,
        scopes=list(_json.loads(row.scopes)),
        created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
    )


def _device_values(device: DeviceRecord) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "public_key": device.public_key,
        "role": device.role,
        "scopes": _dumps(list(device.scopes)),
        "display_name": device.display_name,
        "platform": device.platform,
        "client_id": device.client_id,
        "created_ms": device.created_ms,
        "last_seen_ms": device.last_seen_ms,
        "status": device.status,
        "token_hash": device.token_hash,
        "token_issued_ms": device.token_issued_ms,
    }


def _device(row: Row[Any]) -> DeviceRecord:
    return DeviceRecord(
        device_id=row.device_id,
        public_key=row.public_key,
        role=row.role,
        scopes=list(_json.loads(row.scopes)),
        display_name=row.display_name,
        platform=row.platform,
        client_id=row.client_id,
        created_ms=row.created_ms,
        last_seen_ms=row.last_seen_ms,
        status=row.status,
        token_hash=row.token_hash,
        token_issued_ms=row.token_issued_ms,
    )


class SqliteStore:
    """The ``Store`` protocol on an async SQLAlchemy engine (SQLite file by default).

    ``url_or_path`` is a filesystem path (a SQLite file, parent directories
    created on ``open``), ``":memory:"`` (tests; all access is serialised since
    the single connection is shared) or a SQLAlchemy URL.
    """

    def __init__(self, url_or_path: str | os.PathLike[str] | URL, *, busy_timeout_ms: int = 5000) -> None:
        self._url = _to_url(url_or_path)
        self._busy_timeout_ms = busy_timeout_ms
        self._is_sqlite = self._url.get_backend_name() == "sqlite"
        self._is_memory = self._is_sqlite and _is_memory(self._url)
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        self._schema_version = 0

    @property
    def url(self) -> str:
        """The database URL with any password masked, for logs and status output."""
        return self._url.render_as_string(hide_password=True)

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def engine(self) -> AsyncEngine:
        """The open engine, for diagnostics and tests; raises if the store is closed."""
        if self._engine is None:
            raise RuntimeError("SqliteStore is not open")
        return self._engine

    # lifecycle

    async def open(self) -> None:
        """Connect and bring the schema up to date; a no-op if already open.

        Runs under the write lock, so concurrent ``open()`` calls make one engine.
        """
        async with self._write_lock:
            if self._engine is not None:
                return
            if self._is_sqlite and not self._is_memory and self._url.database:
                await asyncio.to_thread(_make_parent_dir, self._url.database)
            engine = create_async_engine(self._url)
            if self._is_sqlite:
                self._install_sqlite_hooks(engine)
                reader = engine.execution_options(**{_BEGIN_OPTION: ""})
                writer = engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            else:
                reader = writer = engine
            try:
                self._schema_version = await migrate(writer)
            except BaseException:
                await engine.dispose()
                raise
            self._engine, self._reader, self._writer = engine, reader, writer

    async def close(self) -> None:
        """Dispose of the engine (closing pooled connections); safe to call twice."""
        engine = self._engine
        self._engine = self._reader = self._writer = None
        if engine is not None:
            await engine.dispose()

    def _install_sqlite_hooks(self, engine: AsyncEngine) -> None:
        busy_timeout = int(self._busy_timeout_ms)

        def on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            # Take BEGIN away from the driver (see module docstring); the hook below emits it.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
            finally:
                cursor.close()

        def on_begin(conn: Connection) -> None:
            # Default to a real BEGIN (migrations, ad-hoc use of .engine); "" means autocommit.
            begin = conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
            if begin:
                conn.exec_driver_sql(begin)

        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", on_begin)

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one read statement (no BEGIN on SQLite; see module docstring)."""
        engine = self._reader
        if engine is None:
            raise RuntimeError("SqliteStore is not open")
        lock: contextlib.AbstractAsyncContextManager[Any] = (
            self._write_lock if self._is_memory else contextlib.nullcontext()
        )
        async with lock, engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A committed-on-success write transaction, serialised in-process on SQLite."""
        writer = self._writer
        if writer is None:
            raise RuntimeError("SqliteStore is not open")
        lock: contextlib.AbstractAsyncContextManager[Any] = (
            self._write_lock if self._is_sqlite else contextlib.nullcontext()
        )
        async with lock, writer.begin() as conn:
            yield conn

    async def _upsert(
        self,
        conn: AsyncConnection,
        table: Table,
        values: dict[str, Any],
        keys: Sequence[str],
        *,
        update_existing: bool = True,
    ) -> None:
        """INSERT, or on key conflict UPDATE the other columns (or do nothing)."""
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            module = sqlite_dialect if dialect == "sqlite" else pg_dialect
            stmt = module.insert(table).values(**values)
            if update_existing:
                changes = {name: stmt.excluded[name] for name in values if name not in keys}
                await conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))
            else:
                await conn.execute(stmt.on_conflict_do_nothing(index_elements=list(keys)))
            return
        # Other dialects: look, then insert or update. Correct within the caller's
        # transaction unless another process inserts the same key concurrently.
        where = [table.c[name] == values[name] for name in keys]
        exists = await conn.scalar(select(func.count()).select_from(table).where(*where))
        if not exists:
            await conn.execute(insert(table).values(**values))
        elif update_existing:
            await conn.execute(
                update(table).where(*where).values({k: v for k, v in values.items() if k not in keys})
            )

    # sessions and transcripts

    async def ensure_session(self, key: str, now_ms: int) -> SessionRecord:
        """Return the session, creating it at ``now_ms``; an existing one is left untouched."""
        existing = await self.get_session(key)
        if existing is not None:
            return existing
        async with self._write() as conn:
            await self._upsert(
                conn,
                sessions,
                {"key": key, "created_ms": now_ms, "updated_ms": now_ms, "message_count": 0},
                ["key"],
                update_existing=False,
            )
            row = (await conn.execute(select(sessions).where(sessions.c.key == key))).one()
        return _session(row)

    async def get_session(self, key: str) -> SessionRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(sessions).where(sessions.c.key == key))).first()
        return None if row is None else _session(row)

    async def list_sessions(self, limit: int) -> list[SessionRecord]:
        """Most recently updated first (ties broken by key, so paging is stable)."""
        if limit <= 0:
            return []
        query = select(sessions).order_by(sessions.c.updated_ms.desc(), sessions.c.key).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_session(row) for row in rows]

    async def reset_session(self, key: str, now_ms: int) -> bool:
        """Drop the transcript, keep the session (count 0, updated now); False if unknown."""
        async with self._write() as conn:
            result = await conn.execute(
                update(sessions).where(sessions.c.key == key).values(message_count=0, updated_ms=now_ms)
            )
            if result.rowcount == 0:
                return False
            await conn.execute(delete(messages).where(messages.c.session_key == key))
        return True

    async def delete_session(self, key: str) -> bool:
        """Delete the session and its transcript (runs are history and stay); False if unknown."""
        async with self._write() as conn:
            # Explicit rather than relying on ON DELETE CASCADE, which needs foreign_keys=ON.
            await conn.execute(delete(messages).where(messages.c.session_key == key))
            result = await conn.execute(delete(sessions).where(sessions.c.key == key))
        return result.rowcount > 0

    async def append_message(self, msg: MessageRecord) -> int:
        """Insert one transcript row and bump its session, atomically; returns the row id.

        The session is created if missing. ``updated_ms`` never moves backwards, and
        ``last_run_id`` follows the latest message that carries a run id.
        """
        bump: dict[str, Any] = {
            "message_count": sessions.c.message_count + 1,
            "updated_ms": case((sessions.c.updated_ms < msg.ts_ms, msg.ts_ms), else_=sessions.c.updated_ms),
        }
        if msg.run_id is not None:
            bump["last_run_id"] = msg.run_id
        bump_session = update(sessions).where(sessions.c.key == msg.session_key).values(bump)
        async with self._write() as conn:
            # Bump first: the common case (session exists) is then two statements.
            if (await conn.execute(bump_session)).rowcount == 0:
                values = {
                    "key": msg.session_key,
                    "created_ms": msg.ts_ms,
                    "updated_ms": msg.ts_ms,
                    "message_count": 0,
                }
                await self._upsert(conn, sessions, values, ["key"], update_existing=False)
                await conn.execute(bump_session)
            result = await conn.execute(
                insert(messages).values(
                    session_key=msg.session_key,
                    role=msg.role,
                    text=msg.text,
                    ts_ms=msg.ts_ms,
                    run_id=msg.run_id,
                    meta=_dumps(msg.meta),
                )
            )
        primary_key = result.inserted_primary_key
        if primary_key is None:  # pragma: no cover - every supported dialect reports it
            raise RuntimeError("database did not report the new message id")
        return int(primary_key[0])

    async def history(self, session_key: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages of the session, oldest first."""
        if limit <= 0:
            return []
        async with self._read() as conn:
            rows = (await conn.execute(_HISTORY, {"session_key": session_key, "limit": limit})).all()
        return _messages(rows)

    # runs

    async def put_run(self, run: RunRecord) -> None:
        """Insert or fully replace the run with this ``run_id``."""
        values = {
            "run_id": run.run_id,
            "session_key": run.session_key,
            "status": run.status,
            "created_ms": run.created_ms,
            "started_ms": run.started_ms,
            "ended_ms": run.ended_ms,
            "error": run.error,
            "summary": run.summary,
            "origin": run.origin,
            "owner": run.owner,
        }
        async with self._write() as conn:
            await self._upsert(conn, runs, values, ["run_id"])

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(runs).where(runs.c.run_id == run_id))).first()
        return None if row is None else _run(row)

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int:
        """Mark runs a previous process left queued/running as errors (at start-up)."""
        async with self._write() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.status.in_(_INTERRUPTIBLE))
                .values(status="error", error=reason, ended_ms=now_ms)
            )
        return int(result.rowcount)

    async def count_runs_by_status(self) -> dict[str, int]:
        query = select(runs.c.status, func.count()).group_by(runs.c.status)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {status: int(count) for status, count in rows}

    # devices

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(devices).where(devices.c.device_id == device_id))).first()
        return None if row is None else _device(row)

    async def put_device(self, device: DeviceRecord) -> None:
        """Insert or fully replace the device with this ``device_id``."""
        await self.put_devices([device])

    async def put_devices(self, batch: Sequence[DeviceRecord]) -> None:
        """Upsert several devices in one transaction (``PairingService`` group-commits connects)."""
        rows = [_device_values(d) for d in batch]  # snapshot before the first await
        if not rows:
            return
        async with self._write() as conn:
            if conn.dialect.name in ("sqlite", "postgresql"):
                module = sqlite_dialect if conn.dialect.name == "sqlite" else pg_dialect
                stmt = module.insert(devices)
                changes = {name: stmt.excluded[name] for name in rows[0] if name != "device_id"}
                await conn.execute(stmt.on_conflict_do_update(index_elements=["device_id"], set_=changes), rows)
            else:
                for values in rows:
                    await self._upsert(conn, devices, values, ["device_id"])

    async def list_devices(self) -> list[DeviceRecord]:
        """All devices, oldest pairing first."""
        query = select(devices).order_by(devices.c.created_ms, devices.c.device_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_device(row) for row in rows]

    # user API keys

    async def put_api_key(self, key: ApiKeyRecord) -> None:
        """Insert or fully replace the key with this ``key_id``."""
        values = {
            "key_id": key.key_id,
            "user_id": key.user_id,
            "key_hash": key.key_hash,
            "scopes": _dumps(list(key.scopes)),
            "created_ms": key.created_ms,
            "revoked_ms": key.revoked_ms,
        }
        async with self._write() as conn:
            await self._upsert(conn, api_keys, values, ["key_id"])

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
        return None if row is None else _api_key(row)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        query = select(api_keys).order_by(api_keys.c.created_ms, api_keys.c.key_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        """Mark the key revoked (kept for the audit trail); False if unknown or already revoked."""
        async with self._write() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
        return int(result.rowcount) > 0

    # idempotency

    async def get_idempotent(self, key: str, not_before_ms: int) -> tuple[str, Any] | None:
        """The cached ``(method, response)`` if stored at or after ``not_before_ms``."""
        query = select(idempotency.c.method, idempotency.c.response).where(
            idempotency.c.key == key, idempotency.c.created_ms >= not_before_ms
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (row.method, _json.loads(row.response))

    async def put_idempotent(self, key: str, method: str, response: Any, now_ms: int) -> None:
        """Store (or replace) the response for ``key``, timestamped ``now_ms``."""
        values = {"key": key, "method": method, "response": _dumps(response), "created_ms": now_ms}
        async with self._write() as conn:
            await self._upsert(conn, idempotency, values, ["key"])

    async def purge_idempotent(self, before_ms: int) -> int:
        """Delete entries created strictly before ``before_ms``; returns how many."""
        async with self._write() as conn:
            result = await conn.execute(delete(idempotency).where(idempotency.c.created_ms < before_ms))
        return int(result.rowcount)

    # config overrides

    async def get_config(self) -> dict[str, Any]:
        async with self._read() as conn:
            data = await conn.scalar(select(config_table.c.data).where(config_table.c.id == _CONFIG_ROW_ID))
        if data is None:
            return {}
        loaded: dict[str, Any] = _json.loads(data)
        return loaded

    async def put_config(self, config: dict[str, Any], now_ms: int) -> None:
        """Replace the whole override document."""
        values = {"id": _CONFIG_ROW_ID, "data": _dumps(config), "updated_ms": now_ms}
        async with self._write() as conn:
            await self._upsert(conn, config_table, values, ["id"])


if TYPE_CHECKING:

    def _conforms(store: SqliteStore) -> Store:
        """mypy proves here that SqliteStore satisfies the Store protocol."""
        return store
