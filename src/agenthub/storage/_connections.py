"""How ``SqlStore`` reaches each engine: the one place where SQLite and PostgreSQL differ in connections.

A store call is a synchronous body run in one ``AsyncConnection.run_sync`` (one
greenlet for all its statements, BEGIN and COMMIT included). ``read(fn, ...)``
runs it as a read, ``write(fn, ...)`` in one committed transaction; how each
engine gets the connection for it is what this module holds.

``SqliteConnections``, for the embedded default:

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
  up to ``IDLE_READERS`` reader connections wait between reads, since a pool
  checkout and return cost more than a point read. A kept reader holds no
  transaction: without BEGIN, each SELECT's implicit one ends with the statement
  (its rows are fetched in full), so it pins neither a snapshot nor the WAL;
  only SQLAlchemy's bookkeeping transaction stays open, rolled back when the
  connection is given back. After any failure, cancellation included, a kept
  connection goes back to the pool, whose reset rolls back whatever the driver
  may still hold (a cancelled BEGIN still runs in the driver's thread), and the
  next call takes a fresh one.

``PooledConnections``, for PostgreSQL (asyncpg) and any other server: a normal
bounded pool (``pool_size`` connections, no overflow, ``pool_timeout_s`` to wait
for one or to connect), one pooled connection per call. Reads run in autocommit
(a single SELECT needs no BEGIN/ROLLBACK round trips); writes in a transaction
at the server's default isolation (READ COMMITTED), which the statements are
written for (upserts with ON CONFLICT; no read-then-write across statements
except where a conflict is harmless). The server does the locking; there is no
lock in the process, so writes from several processes and connections proceed
in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection, event, exc
from sqlalchemy.engine import URL, AdaptedConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["IDLE_READERS", "Connections", "PooledConnections", "SqliteConnections", "is_memory"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Execution option read by the sqlite "begin" hook: which BEGIN to emit.
_BEGIN_OPTION = "agenthub_sqlite_begin"

# SQLite reader connections kept between reads; more run concurrently when needed,
# from the pool (size 5: with the writer's, all kept ones fit).
IDLE_READERS = 4


class Connections(Protocol):
    """What ``SqlStore`` needs of an engine: reads, committed writes, the migration engine, close."""

    engine: AsyncEngine

    @property
    def migration_engine(self) -> AsyncEngine:
        """The engine whose transactions take the lock migrations need (see ``migrations``)."""
        ...

    async def read(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T: ...

    async def write(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T: ...

    async def close(self) -> None: ...


def is_memory(url: URL) -> bool:
    """An in-memory SQLite database (one connection, shared by every call)."""
    db = url.database or ""
    return db in ("", ":memory:") or "mode=memory" in db or url.query.get("mode") == "memory"


def _in_transaction(
    conn: Connection, fn: Callable[Concatenate[Connection, _P], _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``fn`` in one transaction: committed if it returns, rolled back if it raises."""
    with conn.begin():
        return fn(conn, *args, **kwargs)


async def _release(conn: AsyncConnection) -> None:
    """Return a kept connection to the pool, whose reset rolls back whatever the driver holds.

    Shielded, so a second cancellation cannot skip it; its own errors are dropped
    (after a failure, in favour of the one being handled).
    """
    with contextlib.suppress(Exception):
        await asyncio.shield(conn.close())


class SqliteConnections:
    """SQLite: one in-process writer on a kept connection, kept reader connections (module docstring)."""

    def __init__(self, url: URL, *, busy_timeout_ms: int) -> None:
        self.engine = create_async_engine(url)
        _install_sqlite_hooks(self.engine, busy_timeout_ms)
        self._reader = self.engine.execution_options(**{_BEGIN_OPTION: ""})
        self._writer = self.engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        self._memory = is_memory(url)
        self._writer_conn: AsyncConnection | None = None  # used under the write lock
        self._idle_readers: list[AsyncConnection] = []  # not in use; last in, first out
        self._write_lock = asyncio.Lock()
        self._closed = False

    @property
    def migration_engine(self) -> AsyncEngine:
        return self._writer

    async def read(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` without BEGIN, on a kept reader (serialised for ``:memory:``)."""
        if self._memory:  # one shared connection: no read may interleave with a write
            async with self._write_lock:
                return await self._read_on_idle(fn, *args, **kwargs)
        return await self._read_on_idle(fn, *args, **kwargs)

    async def _read_on_idle(
        self, fn: Callable[Concatenate[Connection, _P], _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        conn = self._idle_readers.pop() if self._idle_readers else await self._reader.connect()
        try:
            result = await conn.run_sync(fn, *args, **kwargs)
        except BaseException:
            await _release(conn)
            raise
        if not self._closed and len(self._idle_readers) < IDLE_READERS:
            self._idle_readers.append(conn)
        else:  # closed meanwhile, or enough kept
            await _release(conn)
        return result

    async def write(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(conn, ...)`` in one BEGIN IMMEDIATE transaction on the kept writer, one at a time."""
        async with self._write_lock:
            if self._closed:
                raise RuntimeError("SqlStore is not open")
            conn = self._writer_conn
            if conn is None:
                conn = self._writer_conn = await self._writer.connect()
            try:
                return await conn.run_sync(_in_transaction, fn, *args, **kwargs)
            except BaseException:
                self._writer_conn = None
                await _release(conn)
                raise

    async def close(self) -> None:
        """Release the kept connections and dispose of the engine, after the write in progress."""
        async with self._write_lock:
            self._closed = True
            kept, self._idle_readers = self._idle_readers, []
            if self._writer_conn is not None:
                kept.append(self._writer_conn)
                self._writer_conn = None
            for conn in kept:
                await _release(conn)
            await self.engine.dispose()


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    busy_timeout = int(busy_timeout_ms)

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


class PooledConnections:
    """PostgreSQL (and any other server): a bounded pool, one connection per call (module docstring)."""

    def __init__(self, url: URL, *, pool_size: int, pool_timeout_s: float) -> None:
        options: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            options = {
                "pool_size": pool_size,
                "max_overflow": 0,  # the pool size is the bound: never more connections than the setting
                "pool_timeout": pool_timeout_s,
                "connect_args": {
                    "timeout": pool_timeout_s,  # asyncpg's connect timeout (60 s by default)
                    "server_settings": {"application_name": "agenthub"},
                },
            }
        self.engine = create_async_engine(url, **options)
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def migration_engine(self) -> AsyncEngine:
        return self.engine

    async def read(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        async with self._reader.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_in_transaction, fn, *args, **kwargs)

    async def close(self) -> None:
        await self.engine.dispose()
