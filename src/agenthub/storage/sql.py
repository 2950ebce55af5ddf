"""``SqlStore``: the ``Store`` on SQLAlchemy 2 async Core, for SQLite (the default) and PostgreSQL.

One implementation serves both engines. Queries are portable Core constructs;
the engines differ in three named places only:

* **Upserts** (``_ON_CONFLICT_INSERTS``): both have ``INSERT ... ON CONFLICT``,
  each through its own SQLAlchemy construct; any other dialect gets a
  look-then-write fallback.
* **Connections and locking** (``storage._connections``): SQLite gets one
  in-process writer on a kept connection, kept readers, BEGIN IMMEDIATE and
  its PRAGMAs; PostgreSQL gets a bounded asyncpg pool (``pool_size``), reads in
  autocommit, and leaves locking to the server.
* **Migrations' lock** (``storage.migrations._lock``): SQLite's write lock,
  PostgreSQL's advisory lock; the numbered migrations themselves are shared.

Per-call cost: an agent run makes about ten store calls, and SQLAlchemy's work
per call, not the database's, dominated them on SQLite. So statements are built
once at import with ``bindparam``s (SQLAlchemy then skips construction,
cache-key generation and compilation); each call's statements, BEGIN and COMMIT
included, run in one ``run_sync`` (one greenlet rather than one per step); a
write is as few statements as its meaning allows (``append_message``: one
upsert creating or bumping the session, one insert); rows map to records by
position; and SQLite connections are kept between calls.

Failures: at ``open()`` any failure becomes a ``StoreOpenError`` that names the
database (a file, or the URL without its password) and what to do. During
calls, a full disk and an unreachable server become retryable ``UNAVAILABLE``
errors (``StoreFullError``, ``StoreUnavailableError``), so clients read "disk
full" rather than "internal error"; the store recovers by itself once space or
the server is back (a failed kept connection is replaced on the next call).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Executable,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    bindparam,
    case,
    delete,
    exc,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from agenthub.core.store import (
    ApiKeyRecord,
    DeviceRecord,
    MessageRecord,
    RunRecord,
    SessionRecord,
    Store,
    StoreError,
    StoreOpenError,
    StoreUnavailableError,
    StoreValueError,
)
from agenthub.protocol import _json
from agenthub.storage import _errors
from agenthub.storage._connections import Connections, PooledConnections, SqliteConnections, is_memory
from agenthub.storage._tables import (
    TABLES,
    api_keys,
    config_table,
    devices,
    idempotency,
    messages,
    runs,
    session_meta,
    sessions,
)
from agenthub.storage.migrations import migrate

__all__ = ["TABLES", "SqlStore", "open_error", "to_url"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

_CONFIG_ROW_ID = 1
# A database outage fails every call; its log line repeats at most this often.
_OUTAGE_LOG_INTERVAL_S = 10.0
_INTERRUPTIBLE = ("queued", "running")
# PostgreSQL text cannot hold NUL; the transcript refuses it on every engine alike (see append_message).
_NUL = "\x00"


def open_error(err: BaseException, database: str | os.PathLike[str] | URL) -> StoreOpenError:
    """The one-paragraph ``StoreOpenError`` for ``database`` failing with ``err`` (e.g. its data dir is unusable)."""
    return _errors.describe_open_error(err, to_url(database))


def to_url(url_or_path: str | os.PathLike[str] | URL) -> URL:
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


def _refuse_nul(*values: str | None) -> None:
    """Refuse NUL in transcript text on every engine alike (PostgreSQL text cannot hold it)."""
    for value in values:
        if value is not None and _NUL in value:
            raise StoreValueError("text contains a NUL character (U+0000), which the transcript cannot store")


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
# Row locks on PostgreSQL, where two processes may notice one dead owner at once; SQLite's
# write transaction already holds the whole database (the clause compiles to nothing there).
_INTERRUPTED_RUNS = select(*runs.c).where(runs.c.status.in_(_INTERRUPTIBLE)).with_for_update()
_INTERRUPTED_RUN = _INTERRUPTED_RUNS.where(runs.c.run_id == bindparam("run_id"))
_FAIL_RUN = (
    update(runs)
    .where(runs.c.run_id == bindparam("id_"))
    .values(
        status="error",
        error=bindparam("reason", type_=Text),
        ended_ms=bindparam("now_ms", type_=BigInteger),
        message=None,
        message_meta=None,
    )
)
_USER_MESSAGE_OF_RUN = (
    select(messages.c.id)
    .where(
        messages.c.session_key == bindparam("session_key"),  # ix_messages_session_id narrows the scan
        messages.c.run_id == bindparam("run_id"),
        messages.c.role == "user",
    )
    .limit(1)
)
_COUNT_RUNS = select(runs.c.status, func.count()).group_by(runs.c.status)
_COUNT_OWNER_RUNS = (
    select(runs.c.status, func.count()).where(runs.c.owner == bindparam("owner")).group_by(runs.c.status)
)
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


def _fail_runs(
    conn: Connection, query: Select[Any], params: dict[str, Any], reason: str, now_ms: int
) -> list[RunRecord]:
    """End the interrupted runs ``query`` selects as errors, in one transaction.

    A run still holding its acknowledged user message (it never started, or its
    process died between storing the message and clearing it) gets that message
    appended to its transcript first, so a crash loses no acknowledged message.
    """
    failed = [_run(row) for row in conn.execute(query, params)]
    for run in failed:
        if run.message is not None:
            mine = {"session_key": run.session_key, "run_id": run.run_id}
            if conn.execute(_USER_MESSAGE_OF_RUN, mine).first() is None:
                message = MessageRecord(run.session_key, "user", run.message, run.created_ms, run.run_id)
                _append_message(conn, *_message_rows(message, run.message_meta or {}))
        conn.execute(_FAIL_RUN, {"id_": run.run_id, "reason": reason, "now_ms": now_ms})
        run.status, run.error, run.ended_ms, run.message, run.message_meta = "error", reason, now_ms, None, None
    return failed


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


# Rows to records. Selects of ``*table.c`` follow the record's field order; scopes are JSON.
_API_KEY_SCOPES = list(api_keys.c.keys()).index("scopes")
_DEVICE_SCOPES = list(devices.c.keys()).index("scopes")


def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


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


def _run(row: Sequence[Any]) -> RunRecord:
    """A ``runs`` row as its record (``message_meta`` is JSON text)."""
    record = RunRecord(*row)
    meta: str | None = row[-1]
    record.message_meta = None if meta is None else _json.loads(meta)
    return record


def _message_rows(msg: MessageRecord, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session bump and the message row ``_append_message`` writes for ``msg``."""
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
        "meta": _dumps(meta) if meta else "{}",
    }
    return session, message


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


class SqlStore:
    """The ``Store`` protocol on an async SQLAlchemy engine: a SQLite file by default, or PostgreSQL.

    ``url_or_path`` is a filesystem path (a SQLite file, parent directories
    created on ``open``), ``":memory:"`` (tests; all access is serialised since
    the single connection is shared) or a SQLAlchemy URL such as
    ``postgresql+asyncpg://user:password@host:5432/agenthub`` (``postgresql://``
    means asyncpg). ``pool_size`` and ``pool_timeout_s`` bound a server's pool
    (connections, and the wait for one or for a connect); ``busy_timeout_ms`` is
    how long SQLite waits for another process's lock.
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str] | URL,
        *,
        busy_timeout_ms: int = 5000,
        pool_size: int = 10,
        pool_timeout_s: float = 10.0,
    ) -> None:
        self._url = to_url(url_or_path)
        self._busy_timeout_ms = busy_timeout_ms
        self._pool_size = pool_size
        self._pool_timeout_s = pool_timeout_s
        self._is_sqlite = self._url.get_backend_name() == "sqlite"
        self._conns: Connections | None = None
        self._lifecycle = asyncio.Lock()
        self._schema_version = 0
        self._outage_logged_at = -_OUTAGE_LOG_INTERVAL_S  # monotonic time of the last outage log line
        self._outage_unlogged = 0

    @property
    def url(self) -> str:
        """The database URL with any password masked, for logs and status output."""
        return _errors.safe_url(self._url)

    @property
    def display_name(self) -> str:
        """The database as an operator knows it: the SQLite file's path, or the URL without its password."""
        return _errors.display_name(self._url)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql`` (SQLAlchemy's backend name), for status output."""
        return self._url.get_backend_name()

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def engine(self) -> AsyncEngine:
        """The open engine, for diagnostics, tests and the pipelines table; raises if the store is closed."""
        if self._conns is None:
            raise RuntimeError("SqlStore is not open")
        return self._conns.engine

    # lifecycle

    async def open(self) -> None:
        """Connect and bring the schema up to date; a no-op if already open.

        Any failure is raised as ``StoreOpenError`` (its message is for the
        operator), with nothing left half-open. Concurrent calls make one engine.
        """
        async with self._lifecycle:
            if self._conns is not None:
                return
            conns: Connections | None = None
            try:
                if self._is_sqlite and not is_memory(self._url) and self._url.database:
                    await asyncio.to_thread(_make_parent_dir, self._url.database)
                conns = self._connections()
                self._schema_version = await migrate(conns.migration_engine)
            except Exception as err:
                if conns is not None:
                    await conns.close()
                log.debug("database %s did not open", self.display_name, exc_info=err)
                raise _errors.describe_open_error(err, self._url) from err
            except BaseException:
                if conns is not None:
                    await conns.close()
                raise
            self._conns = conns

    def _connections(self) -> Connections:
        if self._is_sqlite:
            return SqliteConnections(self._url, busy_timeout_ms=self._busy_timeout_ms)
        return PooledConnections(self._url, pool_size=self._pool_size, pool_timeout_s=self._pool_timeout_s)

    async def close(self) -> None:
        """Dispose of the engine (closing pooled connections); safe to call twice.

        New calls fail at once; SQLite waits for the write in progress.
        """
        async with self._lifecycle:
            conns, self._conns = self._conns, None
            if conns is not None:
                await conns.close()

    async def _read(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` as a read (no transaction: each body is one statement)."""
        conns = self._conns
        if conns is None:
            raise RuntimeError("SqlStore is not open")
        try:
            return await conns.read(fn, *args, **kwargs)
        except (exc.DBAPIError, exc.TimeoutError, OSError) as err:
            typed = self._typed(err)
            if typed is None:
                raise
            raise typed from err

    async def _write(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` in one transaction, committed on success."""
        conns = self._conns
        if conns is None:
            raise RuntimeError("SqlStore is not open")
        try:
            return await conns.write(fn, *args, **kwargs)
        except (exc.DBAPIError, exc.TimeoutError, OSError) as err:
            typed = self._typed(err)
            if typed is None:
                raise
            raise typed from err

    def _typed(self, err: exc.DBAPIError | exc.TimeoutError | OSError) -> StoreError | None:
        """The typed error for a failed call, or None to re-raise ``err`` as it is.

        An outage (full disk, server gone) is logged with the database's name,
        which clients never see: the first failure at once, then at most one line
        per ``_OUTAGE_LOG_INTERVAL_S`` with the count of those not logged.
        """
        typed = _errors.translate(err)
        if isinstance(typed, StoreUnavailableError):
            now = time.monotonic()
            if now - self._outage_logged_at >= _OUTAGE_LOG_INTERVAL_S:
                more = f" (and {self._outage_unlogged} more since the last report)" if self._outage_unlogged else ""
                log.error("database %s: %s%s: %s", self.display_name, typed, more, _errors.driver_message(err))
                self._outage_logged_at, self._outage_unlogged = now, 0
            else:
                self._outage_unlogged += 1
        return typed

    # sessions and transcripts

    async def ping(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """One round trip to the database; raises ``StoreUnavailableError`` when it cannot answer.

        Returns the connection pool's state (``health``, ``status`` and ``/metrics`` show it).
        """
        async with asyncio.timeout(timeout_s):
            await self._read(_ping)
        pool: Any = self.engine.pool
        state: dict[str, Any] = {"kind": self.backend}
        for name in ("size", "checkedout", "overflow", "checkedin"):
            fn = getattr(pool, name, None)
            if callable(fn):
                state[name] = fn()
        return state

    async def ensure_session(self, key: str, now_ms: int) -> SessionRecord:
        """Return the session, creating it at ``now_ms``; an existing one is left untouched."""
        _refuse_nul(key)
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
        ``last_run_id`` follows the latest message that carries a run id. Text with
        NUL is refused (``StoreValueError``) on every engine, as PostgreSQL must.
        """
        _refuse_nul(msg.session_key, msg.role, msg.text, msg.run_id)
        return await self._write(_append_message, *_message_rows(msg, msg.meta))

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
            "message": run.message,
            "message_meta": None if run.message_meta is None else _dumps(run.message_meta),
        }
        if run.message is not None:
            _refuse_nul(run.message)  # it will be a transcript row: refused now, not at a restart
        await self._write(_upsert, runs, values)

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._read(_first, _GET_RUN, {"run_id": run_id})
        return None if row is None else _run(row)

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int:
        """Mark runs a previous process left queued/running as errors (at start-up), storing their messages."""
        return len(await self._write(_fail_runs, _INTERRUPTED_RUNS, {}, reason, now_ms))

    async def fail_run(self, run_id: str, reason: str, now_ms: int) -> RunRecord | None:
        """Mark one queued/running run as an error (its owner died), storing its message; None if it had ended."""
        failed = await self._write(_fail_runs, _INTERRUPTED_RUN, {"run_id": run_id}, reason, now_ms)
        return failed[0] if failed else None

    async def count_runs_by_status(self, owner: str | None = None) -> dict[str, int]:
        """Runs by status; with ``owner``, only that user's (``ix_runs_owner``)."""
        if owner is None:
            rows = await self._read(_all, _COUNT_RUNS, {})
        else:
            rows = await self._read(_all, _COUNT_OWNER_RUNS, {"owner": owner})
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

    def _conforms(store: SqlStore) -> Store:
        """mypy proves here that SqlStore satisfies the Store protocol."""
        return store
