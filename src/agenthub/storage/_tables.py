"""The schema as the store queries it: one ``Table`` per table, as the latest migration left it.

Migrations (``storage/migrations``) own the DDL; these definitions only mirror
it, and ``tests/storage`` checks that they do, on both engines.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

__all__ = ["TABLES", "api_keys", "config_table", "devices", "idempotency", "messages", "runs", "sessions"]

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
    Column("message", Text),  # the user message while it is not yet in the transcript (m0009)
    Column("message_meta", Text),
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
