"""``SqliteStore``: the default ``Store``, on SQLAlchemy 2 async Core.

SQLite via aiosqlite by default; any async SQLAlchemy URL is accepted. Queries
are portable Core constructs (upserts use ``ON CONFLICT``, which SQLite and
PostgreSQL share; other dialects get a look-then-write fallback), so PostgreSQL
via asyncpg should need only a URL, though only SQLite is exercised by the test
suite so far.

Per-call cost: an agent run makes about ten store calls, and SQLAlchemy's work
per call, not SQLite's, dominated them. So statements are built once at import
with ``bindparam``s (SQLAlchemy then skips construction, cache-key generation and
compilation); each call's statements, BEGIN and COMMIT included, run in one
``run_sync`` (one greenlet rather than one per step); a write is as few
statements as its meaning allows (``append_message``: one upsert creating or
bumping the session, one insert); rows map to records by position; and SQLite
connections are kept between calls (below).

SQLite specifics, applied only when the dialect is sqlite:

* PRAGMAs on every new connection: WAL (readers never block the writer),
  ``synchronous=NORMAL`` (durable across process crashes, the WAL trade-off),
  ``foreign_keys=ON`` and a ``busy_timeout`` for other processes holding the lock.
* Real transactions: the stdlib driver's legacy mode neither BEGINs before a
  SELECT nor before DDL (so migrations would autocommit piecemeal). We switch it
  off and emit BEGIN ourselves, ``BEGIN IMMEDIATE`` for writes so a write
  transaction owns the lock from its first statement instead of failing with
  SQLITE_BUSY when it upgrades from a read. Reads are single statements, each
  atomic on its own, so they skip BEGIN: with aiosqlite every driver call is a
  round trip to the connection's thread. BEGIN itself goes straight to the
  driver connection: one round trip, where a SQLAlchemy cursor takes three.
* One writer at a time inside the process (an ``asyncio.Lock``): SQLite allows a
  single writer anyway, and queueing on the event loop is cheaper and fairer than
  pool threads sleeping in the busy handler.
* Kept connections: the writer keeps one connection for its transactions, and
  up to ``_IDLE_READERS`` reader connections wait between reads, since a pool
  checkout and return cost more than a point read. A kept reader holds no
  transaction: without BEGIN, each SELECT's implicit one ends with the statement
  (its rows are fetched in full), so it pins neither a snapshot nor the WAL;
  only SQLAlchemy's bookkeeping transaction stays open, rolled back when the
  connection is given back. After any failure, cancellation included, a kept
  connection goes back to the pool, whose reset rolls back whatever the driver
  may still hold (a cancelled BEGIN still runs in the driver's thread), and the
  next call takes a fresh one.

Other dialects take a pooled connection per call (a kept reader would sit idle
in a transaction there) and no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Executable,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    case,
    delete,
    event,
    exc,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, AdaptedConnection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from agenthub.core.store import ApiKeyRecord, DeviceRecord, MessageRecord, RunRecord, SessionRecord, Store
from agenthub.protocol import _json
from agenthub.storage.migrations import migrate

__all__ = ["SqliteStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Execution option read by the sqlite "begin" hook: which BEGIN to emit.
_BEGIN_OPTION = "agenthub_sqlite_begin"
_CONFIG_ROW_ID = 1

# The schema as of the latest migration, for building queries. Migrations own the
# DDL (see storage/migrations); these definitions must only mirror it, and a test
# checks that they do. Column order matters too: the record dataclasses list
# their fields in the same order, so rows of ``select(*table.c)`` map by position
# (also tested).
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

session_meta = Table(
    "session_meta",
    _metadata,
    Column("key", String, primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

TABLES: tuple[Table, ...] = (sessions, messages, runs, devices, idempotency, config_table, api_keys, session_meta)

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


# Statements, built once (see module docstring). In UPDATEs, parameter names avoid
# the names of the columns set (SQLAlchemy reserves those for the SET clause).

_GET_SESSION = select(*sessions.c).where(sessions.c.key == bindparam("key"))
_LIST_SESSIONS = (
    select(*sessions.c).order_by(sessions.c.updated_ms.desc(), sessions.c.key).limit(bindparam("limit", type_=Integer))
)
_RESET_SESSION = (
    update(sessions)
    .where(sessions.c.key == bindparam("session_key"))
    .values(message_count=0, updated_ms=bindparam("now_ms", type_=BigInteger))
)
_DELETE_SESSION = delete(sessions).where(sessions.c.key == bindparam("session_key"))
_DELETE_MESSAGES = delete(messages).where(messages.c.session_key == bindparam("session_key"))
_INSERT_MESSAGE = insert(messages)  # values come as parameters; the id is the database's

# history(): the columns in the order _messages unpacks them.
_HISTORY = (
    select(
        messages.c.id,
        messages.c.session_key,
        messages.c.role,
        messages.c.text,
        messages.c.ts_ms,
        messages.c.run_id,
        messages.c.meta,
    )
    .where(messages.c.session_key == bindparam("session_key"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)

_GET_RUN = select(*runs.c).where(runs.c.run_id == bindparam("run_id"))
_FAIL_INTERRUPTED = (
    update(runs)
    .where(runs.c.status.in_(_INTERRUPTIBLE))
    .values(status="error", error=bindparam("reason", type_=Text), ended_ms=bindparam("now_ms", type_=BigInteger))
)
_COUNT_RUNS = select(runs.c.status, func.count()).group_by(runs.c.status)
_COUNT_SESSIONS = select(func.count()).select_from(sessions)

_GET_DEVICE = select(*devices.c).where(devices.c.device_id == bindparam("device_id"))
_LIST_DEVICES = select(*devices.c).order_by(devices.c.created_ms, devices.c.device_id)

_GET_API_KEY = select(*api_keys.c).where(api_keys.c.key_id == bindparam("key_id"))
_LIST_API_KEYS = select(*api_keys.c).order_by(api_keys.c.created_ms, api_keys.c.key_id)
_REVOKE_API_KEY = (
    update(api_keys)
    .where(api_keys.c.key_id == bindparam("api_key_id"), api_keys.c.revoked_ms.is_(None))
    .values(revoked_ms=bindparam("now_ms", type_=BigInteger))
)

_GET_IDEMPOTENT = select(idempotency.c.method, idempotency.c.response).where(
    idempotency.c.key == bindparam("key"), idempotency.c.created_ms >= bindparam("not_before_ms")
)
_PURGE_IDEMPOTENT = delete(idempotency).where(idempotency.c.created_ms < bindparam("before_ms"))

_GET_CONFIG = select(config_table.c.data).where(config_table.c.id == _CONFIG_ROW_ID)

_GET_SESSION_META = select(session_meta.c.key, session_meta.c.data).where(
    session_meta.c.key.in_(bindparam("keys", expanding=True))
)
_ALL_SESSION_META = select(session_meta.c.key, session_meta.c.data)
_NTH_NEWEST_MESSAGE = (
    select(messages.c.id)
    .where(messages.c.session_key == bindparam("session_key"))
    .order_by(messages.c.id.desc())
    .offset(bindparam("offset", type_=Integer))
    .limit(1)
)
_DELETE_OLDER_MESSAGES = delete(messages).where(
    messages.c.session_key == bindparam("session_key"), messages.c.id < bindparam("cutoff", type_=BigInteger)
)
_SET_MESSAGE_COUNT = (
    update(sessions)
    .where(sessions.c.key == bindparam("session_key"))
    .values(message_count=bindparam("count", type_=Integer))
)
_DELETE_SESSION_META = delete(session_meta).where(session_meta.c.key == bindparam("session_key"))

# The dialects with INSERT ... ON CONFLICT, each with its own construct.
_ON_CONFLICT_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite_dialect.insert,
    "postgresql": pg_dialect.insert,
}


def _upserts(table: Table, *, update_existing: bool = True) -> dict[str, Insert]:
    """Per dialect: INSERT, or on primary key conflict UPDATE every other column (or do nothing).

    The values come as execute parameters, and must name every column: a column
    left out would be updated to its default.
    """
    keys = [column.name for column in table.primary_key]
    statements: dict[str, Insert] = {}
    for dialect, make_insert in _ON_CONFLICT_INSERTS.items():
        stmt = make_insert(table)
        if update_existing:
            changes = {column.name: stmt.excluded[column.name] for column in table.c if not column.primary_key}
            statements[dialect] = stmt.on_conflict_do_update(index_elements=keys, set_=changes)
        else:
            statements[dialect] = stmt.on_conflict_do_nothing(index_elements=keys)
    return statements


# By table name, then dialect name; the tables the put_* methods replace rows of.
_UPSERT: dict[str, dict[str, Insert]] = {
    table.name: _upserts(table) for table in (runs, devices, idempotency, config_table, api_keys, session_meta)
}
_INSERT_IF_ABSENT: dict[str, dict[str, Insert]] = {"sessions": _upserts(sessions, update_existing=False)}


def _bump_session_upserts() -> dict[str, Insert]:
    """Per dialect: create the session for a new message, or count the message in.

    ``updated_ms`` never moves backwards, and ``last_run_id`` follows the latest
    message that carries a run id. Parameters: every ``sessions`` column, as the
    row a first message creates (``message_count`` 1).
    """
    statements: dict[str, Insert] = {}
    for dialect, make_insert in _ON_CONFLICT_INSERTS.items():
        stmt = make_insert(sessions)
        new = stmt.excluded
        statements[dialect] = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "message_count": sessions.c.message_count + 1,
                "updated_ms": case(
                    (sessions.c.updated_ms < new.updated_ms, new.updated_ms), else_=sessions.c.updated_ms
                ),
                "last_run_id": func.coalesce(new.last_run_id, sessions.c.last_run_id),
            },
        )
    return statements


_BUMP_SESSION = _bump_session_upserts()
# Dialects without ON CONFLICT bump an existing session with this UPDATE instead.
_BUMP_SESSION_UPDATE = (
    update(sessions)
    .where(sessions.c.key == bindparam("session_key"))
    .values(
        message_count=sessions.c.message_count + 1,
        updated_ms=case(
            (sessions.c.updated_ms < bindparam("ts_ms", type_=BigInteger), bindparam("ts_ms", type_=BigInteger)),
            else_=sessions.c.updated_ms,
        ),
        last_run_id=func.coalesce(bindparam("run_id", type_=String), sessions.c.last_run_id),
    )
)


# Bodies run inside AsyncConnection.run_sync (see _read and _write).


def _first(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Sequence[Any] | None:
    return conn.execute(stmt, params).first()


def _all(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    return conn.execute(stmt, params).all()


def _rowcount(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> int:
    return int(conn.execute(stmt, params).rowcount)


def _upsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any] | list[dict[str, Any]],
    *,
    update_existing: bool = True,
) -> int:
    """INSERT, or on key conflict UPDATE the other columns (or do nothing); rows inserted or changed.

    ``values`` is one row or a batch (one executemany), each naming every column.
    """
    statements = _UPSERT if update_existing else _INSERT_IF_ABSENT
    stmt = statements[table.name].get(conn.dialect.name)
    if stmt is not None:
        return int(conn.execute(stmt, values).rowcount)
    # Other dialects: look, then insert or update. Correct within the caller's
    # transaction unless another process inserts the same key concurrently.
    keys = [column.name for column in table.primary_key]
    changed = 0
    for row in values if isinstance(values, list) else [values]:
        where = [table.c[name] == row[name] for name in keys]
        if not conn.scalar(select(func.count()).select_from(table).where(*where)):
            conn.execute(insert(table).values(**row))
            changed += 1
        elif update_existing:
            conn.execute(update(table).where(*where).values({k: v for k, v in row.items() if k not in keys}))
            changed += 1
    return changed


def _create_session(conn: Connection, values: dict[str, Any]) -> Sequence[Any] | None:
    """Insert the session unless it exists; None if inserted (the caller has the values), else the row."""
    if _upsert(conn, sessions, values, update_existing=False):
        return None
    return conn.execute(_GET_SESSION, {"key": values["key"]}).one()


def _append_message(conn: Connection, session: dict[str, Any], message: dict[str, Any]) -> int:
    stmt = _BUMP_SESSION.get(conn.dialect.name)
    if stmt is not None:
        conn.execute(stmt, session)
    else:
        bump = {"session_key": session["key"], "ts_ms": session["updated_ms"], "run_id": session["last_run_id"]}
        if conn.execute(_BUMP_SESSION_UPDATE, bump).rowcount == 0:
            _upsert(conn, sessions, {**session, "message_count": 0, "last_run_id": None}, update_existing=False)
            conn.execute(_BUMP_SESSION_UPDATE, bump)
    primary_key = conn.execute(_INSERT_MESSAGE, message).inserted_primary_key
    if primary_key is None:  # pragma: no cover - every supported dialect reports it
        raise RuntimeError("database did not report the new message id")
    return int(primary_key[0])


def _reset_session(conn: Connection, key: str, now_ms: int) -> bool:
    if conn.execute(_RESET_SESSION, {"session_key": key, "now_ms": now_ms}).rowcount == 0:
        return False
    conn.execute(_DELETE_MESSAGES, {"session_key": key})
    return True


def _trim_session(conn: Connection, key: str, keep: int) -> int:
    """Delete all but the newest ``keep`` messages of the session; returns how many went."""
    cutoff = conn.execute(_NTH_NEWEST_MESSAGE, {"session_key": key, "offset": keep - 1}).scalar()
    if cutoff is None:
        return 0
    removed = int(conn.execute(_DELETE_OLDER_MESSAGES, {"session_key": key, "cutoff": cutoff}).rowcount)
    if removed:
        conn.execute(_SET_MESSAGE_COUNT, {"session_key": key, "count": keep})
    return removed


def _delete_session(conn: Connection, key: str) -> bool:
    # Explicit rather than relying on ON DELETE CASCADE, which needs foreign_keys=ON.
    conn.execute(_DELETE_MESSAGES, {"session_key": key})
    conn.execute(_DELETE_SESSION_META, {"session_key": key})
    return int(conn.execute(_DELETE_SESSION, {"session_key": key}).rowcount) > 0


def _in_transaction(
    conn: Connection, fn: Callable[Concatenate[Connection, _P], _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``fn`` in one transaction: committed if it returns, rolled back if it raises."""
    with conn.begin():
        return fn(conn, *args, **kwargs)


# Rows to records. Selects of ``*table.c`` follow the record's field order; scopes are JSON.
_API_KEY_SCOPES = list(api_keys.c.keys()).index("scopes")
_DEVICE_SCOPES = list(devices.c.keys()).index("scopes")


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


def _api_key(row: Sequence[Any]) -> ApiKeyRecord:
    values = list(row)
    values[_API_KEY_SCOPES] = list(_json.loads(values[_API_KEY_SCOPES]))
    return ApiKeyRecord(*values)


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


def _device(row: Sequence[Any]) -> DeviceRecord:
    values = list(row)
    values[_DEVICE_SCOPES] = list(_json.loads(values[_DEVICE_SCOPES]))
    return DeviceRecord(*values)


# SQLite reader connections kept between reads; more run concurrently when needed,
# from the pool (size 5: with the writer's, all kept ones fit).
_IDLE_READERS = 4


async def _release(conn: AsyncConnection) -> None:
    """Return a kept connection to the pool, whose reset rolls back whatever the driver holds.

    Shielded, so a second cancellation cannot skip it; its own errors are dropped
    (after a failure, in favour of the one being handled).
    """
    with contextlib.suppress(Exception):
        await asyncio.shield(conn.close())


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
        # SQLite's kept connections (see module docstring), opened on demand.
        self._writer_conn: AsyncConnection | None = None  # used under the write lock
        self._idle_readers: list[AsyncConnection] = []  # not in use; last in, first out
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
        """Dispose of the engine (closing pooled connections); safe to call twice.

        Waits for the write in progress, if any (under the write lock).
        """
        async with self._write_lock:
            engine, writer_conn, readers = self._engine, self._writer_conn, self._idle_readers
            self._engine = self._reader = self._writer = self._writer_conn = None
            self._idle_readers = []
            for conn in [*readers, writer_conn]:
                if conn is not None:
                    await _release(conn)
            if engine is not None:
                await engine.dispose()

    def _install_sqlite_hooks(self, engine: AsyncEngine) -> None:
        busy_timeout = int(self._busy_timeout_ms)

        def on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            # Take BEGIN away from the driver (see module docstring); the hook below emits it.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            try:
                # busy_timeout first: switching to WAL needs the lock, which another connection
                # (or process) may hold for a moment; without a timeout that is "database is locked".
                cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
            finally:
                cursor.close()

        def on_begin(conn: Connection) -> None:
            # Default to a real BEGIN (migrations, ad-hoc use of .engine); "" means autocommit.
            begin = conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
            if not begin:
                return
            # One round trip on the driver connection (see module docstring); a
            # DBAPI error is raised wrapped, as SQLAlchemy raises the others.
            adapted = conn.connection.dbapi_connection
            assert isinstance(adapted, AdaptedConnection)  # create_async_engine: an async driver
            base_error = conn.dialect.loaded_dbapi.Error
            try:
                adapted.run_async(lambda driver: driver.execute(begin))
            except base_error as err:
                raise exc.DBAPIError.instance(begin, None, err, base_error, dialect=conn.dialect) from err

        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", on_begin)

    async def _read(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` as a read: without BEGIN on SQLite (see module docstring)."""
        engine = self._reader
        if engine is None:
            raise RuntimeError("SqliteStore is not open")
        if not self._is_sqlite:
            async with engine.connect() as pooled:
                return await pooled.run_sync(fn, *args, **kwargs)
        if self._is_memory:
            async with self._write_lock:
                return await self._read_on_idle(engine, fn, *args, **kwargs)
        return await self._read_on_idle(engine, fn, *args, **kwargs)

    async def _read_on_idle(
        self,
        engine: AsyncEngine,
        fn: Callable[Concatenate[Connection, _P], _T],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        conn = self._idle_readers.pop() if self._idle_readers else await engine.connect()
        try:
            result = await conn.run_sync(fn, *args, **kwargs)
        except BaseException:
            await _release(conn)
            raise
        if self._reader is engine and len(self._idle_readers) < _IDLE_READERS:
            self._idle_readers.append(conn)
        else:  # closed meanwhile, or enough kept
            await _release(conn)
        return result

    async def _write(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` in one transaction, committed on success; serialised in-process on SQLite."""
        if not self._is_sqlite:
            if self._writer is None:
                raise RuntimeError("SqliteStore is not open")
            async with self._writer.connect() as pooled:
                return await pooled.run_sync(_in_transaction, fn, *args, **kwargs)
        async with self._write_lock:
            conn = self._writer_conn
            if conn is None:
                if self._writer is None:
                    raise RuntimeError("SqliteStore is not open")
                conn = self._writer_conn = await self._writer.connect()
            try:
                return await conn.run_sync(_in_transaction, fn, *args, **kwargs)
            except BaseException:
                self._writer_conn = None
                await _release(conn)
                raise

    # sessions and transcripts

    async def ensure_session(self, key: str, now_ms: int) -> SessionRecord:
        """Return the session, creating it at ``now_ms``; an existing one is left untouched."""
        existing = await self.get_session(key)
        if existing is not None:
            return existing
        values = {"key": key, "created_ms": now_ms, "updated_ms": now_ms, "message_count": 0, "last_run_id": None}
        row = await self._write(_create_session, values)
        # None: inserted just now, so the values are the row (no need to read it back).
        return SessionRecord(key, now_ms, now_ms, 0) if row is None else SessionRecord(*row)

    async def get_session(self, key: str) -> SessionRecord | None:
        row = await self._read(_first, _GET_SESSION, {"key": key})
        return None if row is None else SessionRecord(*row)

    async def list_sessions(self, limit: int) -> list[SessionRecord]:
        """Most recently updated first (ties broken by key, so paging is stable)."""
        if limit <= 0:
            return []
        rows = await self._read(_all, _LIST_SESSIONS, {"limit": limit})
        return [SessionRecord(*row) for row in rows]

    async def count_sessions(self) -> int:
        row = await self._read(_first, _COUNT_SESSIONS, {})
        return int(row[0]) if row else 0

    async def reset_session(self, key: str, now_ms: int) -> bool:
        """Drop the transcript, keep the session (count 0, updated now); False if unknown."""
        return await self._write(_reset_session, key, now_ms)

    async def delete_session(self, key: str) -> bool:
        """Delete the session and its transcript (runs are history and stay); False if unknown."""
        return await self._write(_delete_session, key)

    async def trim_session(self, key: str, keep: int) -> int:
        """Keep only the newest ``keep`` (>= 1) messages of the session; returns how many were deleted."""
        if keep < 1:
            raise ValueError("keep must be >= 1")
        return await self._write(_trim_session, key, keep)

    async def append_message(self, msg: MessageRecord) -> int:
        """Insert one transcript row and bump its session, atomically; returns the row id.

        The session is created if missing. ``updated_ms`` never moves backwards, and
        ``last_run_id`` follows the latest message that carries a run id.
        """
        session = {
            "key": msg.session_key,
            "created_ms": msg.ts_ms,
            "updated_ms": msg.ts_ms,
            "message_count": 1,
            "last_run_id": msg.run_id,
        }
        message = {
            "session_key": msg.session_key,
            "role": msg.role,
            "text": msg.text,
            "ts_ms": msg.ts_ms,
            "run_id": msg.run_id,
            "meta": _dumps(msg.meta) if msg.meta else "{}",
        }
        return await self._write(_append_message, session, message)

    async def history(self, session_key: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages of the session, oldest first."""
        if limit <= 0:
            return []
        rows = await self._read(_all, _HISTORY, {"session_key": session_key, "limit": limit})
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
        await self._write(_upsert, runs, values)

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._read(_first, _GET_RUN, {"run_id": run_id})
        return None if row is None else RunRecord(*row)

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int:
        """Mark runs a previous process left queued/running as errors (at start-up)."""
        return await self._write(_rowcount, _FAIL_INTERRUPTED, {"reason": reason, "now_ms": now_ms})

    async def count_runs_by_status(self) -> dict[str, int]:
        rows = await self._read(_all, _COUNT_RUNS, {})
        return {status: int(count) for status, count in rows}

    # devices

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        row = await self._read(_first, _GET_DEVICE, {"device_id": device_id})
        return None if row is None else _device(row)

    async def put_device(self, device: DeviceRecord) -> None:
        """Insert or fully replace the device with this ``device_id``."""
        await self.put_devices([device])

    async def put_devices(self, batch: Sequence[DeviceRecord]) -> None:
        """Upsert several devices in one transaction (``PairingService`` group-commits connects)."""
        rows = [_device_values(d) for d in batch]  # snapshot before the first await
        if not rows:
            return
        await self._write(_upsert, devices, rows)  # several rows: one executemany

    async def list_devices(self) -> list[DeviceRecord]:
        """All devices, oldest pairing first."""
        rows = await self._read(_all, _LIST_DEVICES, {})
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
        await self._write(_upsert, api_keys, values)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._read(_first, _GET_API_KEY, {"key_id": key_id})
        return None if row is None else _api_key(row)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        rows = await self._read(_all, _LIST_API_KEYS, {})
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        """Mark the key revoked (kept for the audit trail); False if unknown or already revoked."""
        return await self._write(_rowcount, _REVOKE_API_KEY, {"api_key_id": key_id, "now_ms": now_ms}) > 0

    # idempotency

    async def get_idempotent(self, key: str, not_before_ms: int) -> tuple[str, Any] | None:
        """The cached ``(method, response)`` if stored at or after ``not_before_ms``."""
        row = await self._read(_first, _GET_IDEMPOTENT, {"key": key, "not_before_ms": not_before_ms})
        if row is None:
            return None
        method, response = row
        return method, _json.loads(response)

    async def put_idempotent(self, key: str, method: str, response: Any, now_ms: int) -> None:
        """Store (or replace) the response for ``key``, timestamped ``now_ms``."""
        values = {"key": key, "method": method, "response": _dumps(response), "created_ms": now_ms}
        await self._write(_upsert, idempotency, values)

    async def purge_idempotent(self, before_ms: int) -> int:
        """Delete entries created strictly before ``before_ms``; returns how many."""
        return await self._write(_rowcount, _PURGE_IDEMPOTENT, {"before_ms": before_ms})

    # per-session metadata (sessions.patch)

    async def get_session_meta(self, keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """The stored metadata of each of ``keys`` that has any (None: of every session that has any)."""
        if keys is not None and not keys:
            return {}
        if keys is None:
            rows = await self._read(_all, _ALL_SESSION_META, {})
        else:
            rows = await self._read(_all, _GET_SESSION_META, {"keys": list(keys)})
        return {key: _json.loads(data) for key, data in rows}

    async def put_session_meta(self, key: str, meta: dict[str, Any], now_ms: int) -> None:
        """Replace the session's metadata object."""
        await self._write(_upsert, session_meta, {"key": key, "data": _dumps(meta), "updated_ms": now_ms})

    # config overrides

    async def get_config(self) -> dict[str, Any]:
        row = await self._read(_first, _GET_CONFIG, {})
        if row is None:
            return {}
        loaded: dict[str, Any] = _json.loads(row[0])
        return loaded

    async def put_config(self, config: dict[str, Any], now_ms: int) -> None:
        """Replace the whole override document."""
        values = {"id": _CONFIG_ROW_ID, "data": _dumps(config), "updated_ms": now_ms}
        await self._write(_upsert, config_table, values)


if TYPE_CHECKING:

    def _conforms(store: SqliteStore) -> Store:
        """mypy proves here that SqliteStore satisfies the Store protocol."""
        return store
