"""Scheduled jobs and their run history (``core.scheduler``, the ``cron.*`` methods).

``cron_jobs`` keeps each job's definition and runtime state as JSON text, with
``enabled`` and ``next_run_ms`` as columns for inspection; ``cron_runs`` is the
run log (OpenClaw's ``CronRunLogEntry`` as JSON), trimmed per job by the store.
Numbered 6: 5 is left to work on other branches (the runner allows gaps).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Connection, Index, Integer, MetaData, String, Table, Text

__all__ = ["upgrade"]

_metadata = MetaData()

Table(
    "cron_jobs",
    _metadata,
    Column("id", String, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="{}"),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_ms", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

Table(
    "cron_runs",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, nullable=False),
    Column("job_id", String, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("status", String, nullable=True),
    Column("entry", Text, nullable=False),
    Index("ix_cron_runs_job_id_id", "job_id", "id"),
    Index("ix_cron_runs_run_id", "run_id"),
)


def upgrade(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
