"""AgentBox users: hashed API keys, and the owner of each run.

``api_keys`` keeps only the SHA-256 of each key; ``runs.owner`` records which
user a run belongs to, so per-user visibility survives a restart. Numbered 3
because 2 is reserved for the devices migration (the runner allows gaps).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, Index, MetaData, String, Table, Text, text

__all__ = ["upgrade"]

_metadata = MetaData()

Table(
    "api_keys",
    _metadata,
    Column("key_id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("key_hash", String, nullable=False),
    Column("scopes", Text, nullable=False, server_default="[]"),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
    Index("ix_api_keys_user_id", "user_id"),
)


def upgrade(conn: Connection) -> None:
    """Create ``api_keys`` and add the nullable ``runs.owner`` column (existing runs have none)."""
    _metadata.create_all(conn, checkfirst=False)
    conn.execute(text("ALTER TABLE runs ADD COLUMN owner VARCHAR"))
    conn.execute(text("CREATE INDEX ix_runs_owner ON runs (owner)"))
