"""Database failures in words: which ones are the operator's to fix, which ones pass.

Two places use this: ``SqlStore.open`` turns a failure at start into a
``StoreOpenError`` whose message names the database and what to do (rather
than a 200-line traceback), and every store call turns a full disk or an
unreachable server into a retryable ``UNAVAILABLE``. The engines report the
same conditions differently: SQLite by result code (``sqlite3`` errors carry
``sqlite_errorcode``), PostgreSQL by SQLSTATE (asyncpg errors carry
``sqlstate``), and a server that cannot be reached by a plain ``OSError``.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import URL

from ..core.store import StoreError, StoreFullError, StoreOpenError, StoreUnavailableError, StoreValueError
from .migrations import MigrationError

__all__ = ["describe_open_error", "display_name", "driver_message", "safe_url", "translate"]

# SQLite primary result codes (https://sqlite.org/rescode.html).
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
PG_DISK_FULL = "53100"
PG_BAD_CHARACTERS = ("22021", "22P05")  # character_not_in_repertoire, untranslatable_character
PG_UNAVAILABLE_CLASSES = ("08", "57P")  # connection exceptions; admin shutdown, cannot connect now
PG_NO_DATABASE = "3D000"
PG_AUTH_FAILED = ("28000", "28P01")
PG_NO_PRIVILEGE = "42501"

_URL_FLAGS = "--database-url or AGENTHUB_DATABASE_URL"


def safe_url(url: URL) -> str:
    """The URL with its password masked, in the user part and in a ``password=`` query parameter alike."""
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def display_name(url: URL) -> str:
    """The database as the operator knows it: a SQLite file's path, else the URL without its password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return safe_url(url)


def _sqlite_code(err: BaseException) -> int | None:
    orig = err.orig if isinstance(err, exc.DBAPIError) else err
    code = getattr(orig, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None  # extended codes keep the primary in the low byte


def _sqlstate(err: BaseException) -> str | None:
    orig = err.orig if isinstance(err, exc.DBAPIError) else err
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def driver_message(err: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's wrapping and background link."""
    orig: Any = err.orig if isinstance(err, exc.DBAPIError) else err
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _unreachable(err: BaseException) -> bool:
    if isinstance(err, exc.DBAPIError) and err.connection_invalidated:
        return True
    if isinstance(err, OSError | TimeoutError):  # refused, reset, no route, DNS, connect timeout
        return True
    state = _sqlstate(err)
    return state is not None and state.startswith(PG_UNAVAILABLE_CLASSES)


def translate(err: BaseException) -> StoreError | None:
    """The typed error for a failed call, or None to let the original propagate.

    Full disk, unreachable server, exhausted pool: ``UNAVAILABLE``, retryable
    (the store recovers by itself once space, the server or a connection
    returns). Text PostgreSQL cannot hold: ``INVALID_REQUEST``.
    """
    if isinstance(err, exc.TimeoutError):  # the pool's: every connection in use for pool_timeout_s
        return StoreUnavailableError("database busy: no database connection came free in time; retry later")
    if _sqlite_code(err) == SQLITE_FULL or _sqlstate(err) == PG_DISK_FULL:
        return StoreFullError("disk full: the gateway's database cannot be written until space is freed; retry later")
    if _sqlstate(err) in PG_BAD_CHARACTERS:
        return StoreValueError("a value contains a character the database cannot store (NUL, U+0000)")
    if _unreachable(err):
        return StoreUnavailableError("database unavailable: the gateway cannot reach its database; retry later")
    return None


def describe_open_error(err: BaseException, url: URL) -> StoreOpenError:
    """One paragraph for an operator whose database would not open: which one, what is wrong, what to do."""
    name = display_name(url)
    if url.get_backend_name() == "sqlite":
        return StoreOpenError(f"cannot open the database {name}: {_sqlite_advice(err, name)}")
    return StoreOpenError(f"cannot open the database {name}: {_server_advice(err, url)}")


def _sqlite_advice(err: BaseException, name: str) -> str:
    detail = driver_message(err)
    code = _sqlite_code(err)
    if isinstance(err, MigrationError):
        return f"{err}."
    if code in (SQLITE_NOTADB, SQLITE_CORRUPT):
        return (
            f"the file is not a SQLite database or is corrupted (SQLite: {detail}). "
            f"Move it aside (the gateway then starts with an empty database) or restore it from a backup; "
            f"`sqlite3 {name} .recover` may save what it still holds."
        )
    if code == SQLITE_FULL:
        return f"the disk is full (SQLite: {detail}). Free space on the disk that holds it, then start again."
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM) or isinstance(err, PermissionError):
        return (
            f"it cannot be created or written (SQLite: {detail}). The data directory and the database file "
            f"(with its -wal and -shm files) must be writable by this user, on a file system mounted read-write; "
            f"fix their permissions or choose another directory with --data-dir."
        )
    if code == SQLITE_BUSY:
        return (
            f"another process holds it locked (SQLite: {detail}). Stop the other gateway or command using "
            f"this data directory, or choose another one with --data-dir."
        )
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"the disk is full ({err.strerror}). Free space on the disk that holds it, then start again."
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"it cannot be created or written ({err.strerror or err}). The data directory and the database file "
            f"(with its -wal and -shm files) must be writable by this user, on a file system mounted read-write; "
            f"fix their permissions or choose another directory with --data-dir."
        )
    if isinstance(err, OSError):
        return (
            f"its directory cannot be created ({err.strerror or err}). Fix the path or its permissions, "
            f"or choose another directory with --data-dir."
        )
    return f"{detail}. Check the file and its directory, or choose another directory with --data-dir."


def _server_advice(err: BaseException, url: URL) -> str:
    state = _sqlstate(err)
    detail = driver_message(err)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if isinstance(err, MigrationError):
        return f"{err}."
    if isinstance(err, ImportError | exc.NoSuchModuleError):
        return (
            f"the driver for {url.drivername} is not installed ({detail}). For PostgreSQL install "
            f"agenthub[postgres] (asyncpg); SQLite needs no URL at all."
        )
    if isinstance(err, exc.ArgumentError):
        return f"the URL is not valid ({detail}). Fix {_URL_FLAGS}."
    if isinstance(err, socket.gaierror):
        return f"the host name does not resolve ({detail}). Fix the host in {_URL_FLAGS}."
    if isinstance(err, OSError | TimeoutError):
        return (
            f"no database server answers at {where} ({detail or type(err).__name__}). Check that PostgreSQL is "
            f"running and listening there, and that {_URL_FLAGS} names the right host and port."
        )
    if state == PG_NO_DATABASE:
        return (
            f"the server has no such database ({detail}). Create it (e.g. `createdb {url.database}`), "
            f"or fix the name in {_URL_FLAGS}."
        )
    if state in PG_AUTH_FAILED:
        return f"the server refused the credentials ({detail}). Check the user and password in {_URL_FLAGS}."
    if state == PG_NO_PRIVILEGE:
        return (
            f"the user may not create or change the tables ({detail}). Grant it CREATE on the database's schema "
            f"(the gateway creates and migrates its tables at start), or use another user."
        )
    if state == PG_DISK_FULL:
        return f"the database server's disk is full ({detail}). Free space on it, then start again."
    if state is not None and state.startswith(PG_UNAVAILABLE_CLASSES):
        return f"the server is not accepting connections ({detail}). Wait for it to finish starting, then start again."
    return f"{detail}. Check the server's log and {_URL_FLAGS}."
