"""Scheduled jobs and their run log in the gateway's SQL database (portable SQLAlchemy Core).

The tables are created by migration ``m0006_cron``; this module only queries
them, on the engine of the open store (as ``storage.pipelines`` does), so the
same code serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from ..protocol import _json

__all__ = ["SqlCronStore", "cron_jobs_table", "cron_runs_table"]

_metadata = MetaData()

cron_jobs_table = Table(
    "cron_jobs",
    _metadata,
    Column("id", String, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
)

cron_runs_table = Table(
    "cron_runs",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, nullable=False),
    Column("job_id", String, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("status", String),
    Column("entry", Text, nullable=False),
)


class SqlCronStore:
    """The ``core.scheduler.CronStore`` protocol on a SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def load(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(cron_jobs_table.c.definition, cron_jobs_table.c.state))).all()
        return [(_json.loads(r.definition), _json.loads(r.state or "{}")) for r in rows]

    async def put_job(self, definition: dict[str, Any], state: dict[str, Any]) -> None:
        t = cron_jobs_table
        values = {
            "definition": _json.dumps_str(definition),
            "state": _json.dumps_str(state),
            "enabled": bool(definition.get("enabled", True)),
            "next_run_ms": state.get("nextRunAtMs"),
            "updated_ms": int(definition["updatedAtMs"]),
        }
        async with self.engine.begin() as conn:
            done = await conn.execute(update(t).where(t.c.id == definition["id"]).values(**values))
            if not done.rowcount:
                await conn.execute(insert(t).values(id=definition["id"], **values))

    async def put_state(self, job_id: str, state: dict[str, Any]) -> None:
        t = cron_jobs_table
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.id == job_id)
                .values(state=_json.dumps_str(state), next_run_ms=state.get("nextRunAtMs"))
            )

    async def delete_job(self, job_id: str) -> bool:
        """Delete the job and its run log (so removed jobs leave nothing that grows)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(cron_jobs_table).where(cron_jobs_table.c.id == job_id))
            await conn.execute(delete(cron_runs_table).where(cron_runs_table.c.job_id == job_id))
        return bool(done.rowcount)

    async def add_run(self, entry: dict[str, Any], keep: int) -> None:
        """Append one run log entry and keep only the newest ``keep`` of its job."""
        t = cron_runs_table
        job_id = entry["jobId"]
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t).values(
                    run_id=entry.get("runId") or "",
                    job_id=job_id,
                    ts=int(entry["ts"]),
                    status=entry.get("status"),
                    entry=_json.dumps_str(entry),
                )
            )
            cutoff = (
                select(t.c.id).where(t.c.job_id == job_id).order_by(t.c.id.desc()).limit(1).offset(keep)
            ).scalar_subquery()
            await conn.execute(delete(t).where(t.c.job_id == job_id, t.c.id <= cutoff))

    async def runs(
        self,
        job_id: str | None,
        *,
        statuses: list[str] | None = None,
        run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        descending: bool = True,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of run log entries (newest first by default) and the total that matched."""
        t = cron_runs_table
        where = []
        if job_id is not None:
            where.append(t.c.job_id == job_id)
        if statuses:
            where.append(t.c.status.in_(statuses))
        if run_id is not None:
            where.append(t.c.run_id == run_id)
        order = t.c.id.desc() if descending else t.c.id.asc()
        async with self.engine.connect() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(t).where(*where)) or 0)
            page = select(t.c.entry).where(*where).order_by(order).limit(limit).offset(offset)
            rows = (await conn.execute(page)).all()
        return [_json.loads(r.entry) for r in rows], total
