"""Messaging channels: DM pairing requests and the senders operators approved.

``channel_pairing_requests`` holds one pending request per (channel, account,
sender), with the SHA-256 of its pairing code (the code itself is only sent to
the sender); ``channel_allow_entries`` the approved senders. Portable SQL
(no engine-specific types), so SQLite and PostgreSQL share it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, Index, MetaData, String, Table, Text

__all__ = ["upgrade"]

_metadata = MetaData()

Table(
    "channel_pairing_requests",
    _metadata,
    Column("request_id", String, primary_key=True),
    Column("channel", String, nullable=False),
    Column("account_id", String, nullable=False),
    Column("sender_id", String, nullable=False),
    Column("code_hash", String, nullable=False),
    Column("meta", Text, nullable=False, server_default="{}"),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    # A unique index, not a constraint: both engines report it alike (the schema comparison checks).
    Index("uq_channel_pairing_sender", "channel", "account_id", "sender_id", unique=True),
    Index("ix_channel_pairing_code", "code_hash"),
)

Table(
    "channel_allow_entries",
    _metadata,
    Column("channel", String, primary_key=True),
    Column("account_id", String, primary_key=True),
    Column("sender_id", String, primary_key=True),
    Column("approved_ms", BigInteger, nullable=False),
)


def upgrade(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
