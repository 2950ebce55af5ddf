"""``cron.*``: scheduled jobs, with OpenClaw's names, params and result shapes (``core.scheduler`` runs them)."""

from __future__ import annotations

from typing import Any

from ...protocol.cron import (
    CronAddParams,
    CronGetParams,
    CronListParams,
    CronRunParams,
    CronRunsParams,
    CronUpdateParams,
)
from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import EmptyParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def _job_id(method: str, job_id: str | None) -> str:
    if not job_id:
        raise RpcError(ErrorCode.INVALID_REQUEST, f"invalid {method} params: missing id")
    return job_id


def register(ctx: ApiContext) -> None:
    scheduler = ctx.scheduler
    if scheduler is None:  # no scheduler, no cron methods advertised
        return

    async def cron_status(call: Call, p: EmptyParams) -> Any:
        return scheduler.status()

    async def cron_list(call: Call, p: CronListParams) -> Any:
        return scheduler.list_jobs(p.model_dump())

    async def cron_get(call: Call, p: CronGetParams) -> Any:
        return scheduler.get(_job_id("cron.get", p.job_id)).view()

    async def cron_add(call: Call, p: CronAddParams) -> Any:
        job = await scheduler.add(p.model_dump(mode="json", exclude_none=True))
        return job.view()

    async def cron_update(call: Call, p: CronUpdateParams) -> Any:
        patch = p.patch.model_dump(mode="json", exclude_none=True)
        job = await scheduler.update(_job_id("cron.update", p.job_id), patch)
        return job.view()

    async def cron_remove(call: Call, p: CronGetParams) -> Any:
        await scheduler.remove(_job_id("cron.remove", p.job_id))
        return {"ok": True, "removed": True}

    async def cron_run(call: Call, p: CronRunParams) -> Any:
        return scheduler.run_now(_job_id("cron.run", p.job_id), p.mode)

    async def cron_runs(call: Call, p: CronRunsParams) -> Any:
        scope = p.scope or ("job" if p.job_id else "all")
        if scope == "job":
            job_id = _job_id("cron.runs", p.job_id)
            page = await scheduler.runs(job_id, p.model_dump())
            if page["total"] == 0 and job_id not in scheduler.jobs:
                scheduler.get(job_id)  # raises OpenClaw's "cron job not found"
            return page
        return await scheduler.runs(None, p.model_dump())

    d = ctx.node.dispatcher
    d.register("cron.status", cron_status)
    d.register("cron.list", cron_list)
    d.register("cron.get", cron_get)
    d.register("cron.add", cron_add)
    d.register("cron.update", cron_update)
    d.register("cron.remove", cron_remove)
    d.register("cron.run", cron_run)
    d.register("cron.runs", cron_runs)
