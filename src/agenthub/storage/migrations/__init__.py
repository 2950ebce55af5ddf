"""Numbered schema migrations and the runner that applies them.

Every module here named ``mNNNN_<name>.py`` defines ``upgrade(conn)``, a
synchronous function taking a SQLAlchemy ``Connection`` (run through
``AsyncConnection.run_sync`` so it can use ``MetaData.create_all``, ``inspect``
and the rest of the sync-only schema API). Versions are unique and increasing; gaps
are allowed (branches of work may number ahead), and each migration is applied
once, recorded by its own version rather than by a high-water mark.

The same migrations serve SQLite and PostgreSQL: they are written in portable
SQLAlchemy (``create_all`` on a private ``MetaData``, plain ``ALTER TABLE ... ADD
COLUMN``), both engines have transactional DDL, and ``tests/storage`` proves
that a migrated SQLite and a migrated PostgreSQL have the same schema. A new
migration is a new numbered module; write it the same way, or branch on
``conn.dialect.name`` inside it where the engines must differ.

``schema_version`` records one row per applied migration. Each migration runs in
its own transaction together with the insert of its row, and the current version
is re-read inside that transaction, so a crash mid-migration leaves the previous
version intact and two processes racing at start-up apply each step once. That
needs each transaction to hold the database's migration lock from its start
(:func:`_lock`): on SQLite the write lock (``SqlStore`` passes an engine whose
transactions start with ``BEGIN IMMEDIATE``), on PostgreSQL an advisory
transaction lock (without it, two processes creating ``schema_version`` at once
collide in the catalog).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Migration", "MigrationError", "current_version", "discover", "migrate", "schema_version_table"]

_MODULE_RE = re.compile(r"^m(\d{4})_([a-z0-9_]+)$")

_metadata = MetaData()

schema_version_table = Table(
    "schema_version",
    _metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String, nullable=False),
    Column("applied_ms", BigInteger, nullable=False),
)


class MigrationError(RuntimeError):
    """The migration set or the database is inconsistent; refusing to guess."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def discover() -> list[Migration]:
    """Find the ``mNNNN_*`` modules of this package, ordered, checked for gaps."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE_RE.match(info.name)
        if match is None:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        upgrade = getattr(module, "upgrade", None)
        if not callable(upgrade):
            raise MigrationError(f"migration {info.name} has no upgrade(conn) function")
        found.append(Migration(int(match.group(1)), match.group(2), upgrade))
    found.sort(key=lambda m: m.version)
    _check_sequence(found)
    return found


def _check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if any(v < 1 for v in versions) or len(set(versions)) != len(versions) or versions != sorted(versions):
        raise MigrationError(f"migrations must have unique, increasing, positive versions: {versions}")


# PostgreSQL advisory lock key for migrations: any constant that no other lock user picks.
_PG_MIGRATION_LOCK = 0x61676E74_6875625F  # "agnthub_"


async def _lock(conn: AsyncConnection) -> None:
    """Hold the migration lock until this transaction ends (SQLite: taken by BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


async def _read_version(conn: AsyncConnection) -> int:
    version = await conn.scalar(select(func.max(schema_version_table.c.version)))
    return int(version) if version is not None else 0


async def _applied(conn: AsyncConnection) -> set[int]:
    return {int(v) for v in (await conn.scalars(select(schema_version_table.c.version))).all()}


async def current_version(engine: AsyncEngine) -> int:
    """The applied schema version (0 for an empty database)."""
    async with engine.connect() as conn:
        has_table = await conn.run_sync(lambda c: c.dialect.has_table(c, schema_version_table.name))
        if not has_table:
            return 0
        return await _read_version(conn)


async def migrate(engine: AsyncEngine, migrations: Sequence[Migration] | None = None) -> int:
    """Apply pending migrations in order, one transaction each; return the resulting version.

    ``migrations`` defaults to :func:`discover`; tests pass their own list.
    A database newer than the code is an error rather than something to run against.
    """
    steps = list(discover() if migrations is None else migrations)
    _check_sequence(steps)
    async with engine.begin() as conn:
        await _lock(conn)
        await conn.run_sync(_metadata.create_all)
        version = await _read_version(conn)
    known = steps[-1].version if steps else 0
    if version > known:
        raise MigrationError(
            f"database schema version {version} is newer than this code knows ({known}); "
            "upgrade agenthub or use another database"
        )
    for step in steps:
        async with engine.begin() as conn:
            await _lock(conn)
            # Re-read under this transaction's lock: another process may have got here first.
            # Already applied (possibly by a racing process) still counts towards the version.
            if step.version not in await _applied(conn):
                await conn.run_sync(step.upgrade)
                await conn.execute(
                    insert(schema_version_table).values(
                        version=step.version, name=step.name, applied_ms=time.time_ns() // 1_000_000
                    )
                )
        version = max(version, step.version)
    return version
