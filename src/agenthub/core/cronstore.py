"""Where the scheduler keeps jobs and their run log: the ``CronStore`` protocol and a memory implementation.

``storage.cron.SqlCronStore`` is the durable one (SQLite or PostgreSQL through
SQLAlchemy Core); ``MemoryCronStore`` serves a gateway embedded without a SQL
store, and the scheduler's unit tests.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["CronStore", "MemoryCronStore"]


class CronStore(Protocol):
    """Where jobs and their run log persist (``storage.cron.SqlCronStore``, or memory)."""

    async def load(self) -> list[tuple[dict[str, Any], dict[str, Any]]]: ...

    async def put_job(self, definition: dict[str, Any], state: dict[str, Any]) -> None: ...

    async def put_state(self, job_id: str, state: dict[str, Any]) -> None: ...

    async def delete_job(self, job_id: str) -> bool: ...

    async def add_run(self, entry: dict[str, Any], keep: int) -> None: ...

    async def runs(
        self,
        job_id: str | None,
        *,
        statuses: list[str] | None = None,
        run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        descending: bool = True,
    ) -> tuple[list[dict[str, Any]], int]: ...


class MemoryCronStore:
    """A ``CronStore`` that forgets on restart (a gateway embedded without a SQL store)."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.log: list[dict[str, Any]] = []

    async def load(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return list(self.jobs.values())

    async def put_job(self, definition: dict[str, Any], state: dict[str, Any]) -> None:
        self.jobs[definition["id"]] = (dict(definition), dict(state))

    async def put_state(self, job_id: str, state: dict[str, Any]) -> None:
        if job_id in self.jobs:
            self.jobs[job_id] = (self.jobs[job_id][0], dict(state))

    async def delete_job(self, job_id: str) -> bool:
        self.log = [e for e in self.log if e["jobId"] != job_id]
        return self.jobs.pop(job_id, None) is not None

    async def add_run(self, entry: dict[str, Any], keep: int) -> None:
        self.log.append(dict(entry))
        mine = [e for e in self.log if e["jobId"] == entry["jobId"]]
        for old in mine[: max(0, len(mine) - keep)]:
            self.log.remove(old)

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
        rows = [
            e
            for e in self.log
            if (job_id is None or e["jobId"] == job_id)
            and (not statuses or e.get("status") in statuses)
            and (run_id is None or e.get("runId") == run_id)
        ]
        if descending:
            rows.reverse()
        return rows[offset : offset + limit], len(rows)
