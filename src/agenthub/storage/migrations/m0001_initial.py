"""Initial schema: sessions, transcripts, runs, devices, idempotency cache, config.

The tables are declared here, on a ``MetaData`` private to this migration, so that
later migrations can alter them without this file ever changing: a migration is a
frozen record of how the schema got from version N-1 to N.

Portability notes: keys are unbounded ``String`` (VARCHAR on PostgreSQL, TEXT
affinity on SQLite); times are epoch milliseconds in ``BigInteger`` because they
overflow 32 bits; JSON payloads are ``Text`` holding the output of
``agenthub.protocol._json``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["upgrade"]

_metadata = MetaData()

Table(
    "sessions",
    _metadata,
    Column("key", String, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("message_count", Integer, nullable=False, server_default="0"),
    Column("last_run_id", String, nullable=True),
    Index("ix_sessions_updated_ms", "updated_ms"),
)

Table(
    "messages",
    _metadata,
    # INTEGER PRIMARY KEY (a rowid alias) on SQLite, BIGINT identity elsewhere.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column(
        "session_key",
        String,
        ForeignKey("sessions.key", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("run_id", String, nullable=True),
    Column("meta", Text, nullable=False, server_default="{}"),
    # history() reads "the last N of one session": this index serves it backwards.
    Index("ix_messages_session_id", "session_key", "id"),
    # AUTOINCREMENT so ids are never reused after a reset: clients may hold them.
    sqlite_autoincrement=True,
)

Table(
    "runs",
    _metadata,
    Column("run_id", String, primary_key=True),
    Column("session_key", String, nullable=False),
    Column("status", String, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger, nullable=True),
    Column("ended_ms", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("summary", Text, nullable=True),
    Column("origin", String, nullable=False, server_default=""),
    # fail_interrupted_runs() and count_runs_by_status() select by status.
    Index("ix_runs_status", "status"),
    Index("ix_runs_session_key", "session_key"),
)

Table(
    "devices",
    _metadata,
    Column("device_id", String, primary_key=True),
    Column("public_key", Text, nullable=False),
    Column("role", String, nullable=False),
    Column("scopes", Text, nullable=False, server_default="[]"),
    Column("display_name", String, nullable=True),
    Column("platform", String, nullable=True),
    Column("client_id", String, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("status", String, nullable=False, server_default="paired"),
    Column("token_hash", String, nullable=True),
    Column("token_issued_ms", BigInteger, nullable=True),
)

Table(
    "idempotency",
    _metadata,
    Column("key", String, primary_key=True),
    Column("method", String, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # purge_idempotent() deletes by age.
    Index("ix_idempotency_created_ms", "created_ms"),
)

Table(
    "config",
    _metadata,
    # A single row (id=1): the whole override document is replaced at once.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("data", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)


def upgrade(conn: Connection) -> None:
    """Create every table; runs inside the runner's transaction."""
    _metadata.create_all(conn, checkfirst=False)
