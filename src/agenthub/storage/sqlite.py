"""The store's former home: ``SqliteStore`` is ``storage.sql.SqlStore``, which serves SQLite and PostgreSQL.

Kept so that imports written before the move keep working; new code imports
``SqlStore`` from ``agenthub.storage.sql``.
"""

from __future__ import annotations

from agenthub.storage.sql import TABLES, SqlStore

__all__ = ["TABLES", "SqliteStore"]

SqliteStore = SqlStore
