"""Pipelines (LangBot's agent configurations) in the gateway's SQL database.

The table is created by migration ``m0004_pipelines``; this module only queries
it, on the engine of an open ``SqliteStore``, so the CLI and the gateway share
one file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Pipeline", "SqlitePipelines", "pipelines_table"]

_metadata = MetaData()

pipelines_table = Table(
    "pipelines",
    _metadata,
    Column("uuid", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("provider", String),
    Column("config", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Pipeline:
    uuid: str
    name: str
    provider: str | None
    created_ms: int


class SqlitePipelines:
    """Create, list, find and delete pipelines."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, pipeline_uuid: str) -> Pipeline | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(pipelines_table).where(pipelines_table.c.uuid == pipeline_uuid))).first()
        return Pipeline(row.uuid, row.name, row.provider, row.created_ms) if row else None

    async def list(self) -> list[Pipeline]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(pipelines_table).order_by(pipelines_table.c.created_ms))).all()
        return [Pipeline(r.uuid, r.name, r.provider, r.created_ms) for r in rows]

    async def create(self, name: str, provider: str | None, now_ms: int) -> Pipeline:
        pipeline = Pipeline(str(uuid.uuid4()), name, provider, now_ms)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(pipelines_table).values(
                    uuid=pipeline.uuid, name=name, provider=provider, config="{}", created_ms=now_ms
                )
            )
        return pipeline

    async def delete(self, pipeline_uuid: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(pipelines_table).where(pipelines_table.c.uuid == pipeline_uuid))
        return bool(result.rowcount)
