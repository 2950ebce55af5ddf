"""LangBot pipelines: named agent configurations addressed by uuid (seed 004).

A ``default`` pipeline is created here, so a fresh gateway serves
``/api/v1/pipelines/default/ws/connect`` with the configured provider.
"""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, Text, insert

__all__ = ["upgrade"]

_metadata = MetaData()

_pipelines = Table(
    "pipelines",
    _metadata,
    Column("uuid", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("provider", String, nullable=True),  # NULL: the gateway's configured provider
    Column("config", Text, nullable=False, server_default="{}"),
    Column("created_ms", BigInteger, nullable=False),
)


def upgrade(conn: Connection) -> None:
    _metadata.create_all(conn)
    conn.execute(
        insert(_pipelines).values(
            uuid="default", name="default", provider=None, config="{}", created_ms=time.time_ns() // 1_000_000
        )
    )
