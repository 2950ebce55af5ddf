"""Pipelines (LangBot's agent configurations) in the gateway's SQL database.

The table is created by migration ``m0004_pipelines`` (access columns by
``m0007_pipeline_access``); this module only queries it, on the engine of an
open ``SqliteStore``, so the CLI and the gateway share one file.

Access: a ``public`` pipeline's socket takes anyone who can reach the port (the
seed's console snippet sends no credential); any other needs the gateway's
secret or the pipeline's own key, which is shown once when minted and stored
only as its SHA-256.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.secrets import hash_secret

__all__ = ["KEY_PREFIX", "Pipeline", "SqlitePipelines", "pipelines_table"]

KEY_PREFIX = "lbk_"

_metadata = MetaData()

pipelines_table = Table(
    "pipelines",
    _metadata,
    Column("uuid", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("provider", String),
    Column("config", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("public", Boolean, nullable=False, server_default="0"),
    Column("key_hash", String),
)


@dataclass(frozen=True, slots=True)
class Pipeline:
    uuid: str
    name: str
    provider: str | None
    created_ms: int
    public: bool = False  # sockets need no credential
    key_hash: str | None = None  # SHA-256 of the pipeline's own key, if it has one

    @property
    def access(self) -> str:
        """How its socket is reached, as ``pipelines list`` shows it: public, key, or token (gateway secret only)."""
        if self.public:
            return "public"
        return "key" if self.key_hash is not None else "token"


def _pipeline(row: Row[tuple[object, ...]]) -> Pipeline:
    m = row._mapping
    return Pipeline(
        str(m["uuid"]),
        str(m["name"]),
        m["provider"],
        int(m["created_ms"]),
        bool(m["public"]),
        m["key_hash"],
    )


class SqlitePipelines:
    """Create, list, find and delete pipelines, and mint their keys."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, pipeline_uuid: str) -> Pipeline | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(pipelines_table).where(pipelines_table.c.uuid == pipeline_uuid))).first()
        return _pipeline(row) if row else None

    async def list(self) -> list[Pipeline]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(pipelines_table).order_by(pipelines_table.c.created_ms))).all()
        return [_pipeline(r) for r in rows]

    async def create(self, name: str, provider: str | None, now_ms: int, *, public: bool = False) -> Pipeline:
        pipeline = Pipeline(str(uuid.uuid4()), name, provider, now_ms, public)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(pipelines_table).values(
                    uuid=pipeline.uuid, name=name, provider=provider, config="{}", created_ms=now_ms, public=public
                )
            )
        return pipeline

    async def new_key(self, pipeline_uuid: str) -> str | None:
        """Mint the pipeline's key (replacing any earlier one); the caller shows it once. None: no such pipeline."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(pipelines_table).where(pipelines_table.c.uuid == pipeline_uuid).values(key_hash=hash_secret(key))
            )
        return key if result.rowcount else None

    async def delete(self, pipeline_uuid: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(pipelines_table).where(pipelines_table.c.uuid == pipeline_uuid))
        return bool(result.rowcount)
