"""``wake``, ``system-event``, ``last-heartbeat``, ``set-heartbeats``: OpenClaw's ``openclaw system`` methods.

A system event waits in its session's queue until that session's next
heartbeat turn reads it (``core.heartbeat``); ``wake`` with ``mode:"now"`` (or
with an explicit ``sessionKey``, as in OpenClaw) runs that turn at once.
"""

from __future__ import annotations

from typing import Any

from ...protocol.cron import SetHeartbeatsParams, SystemEventParams, WakeParams
from ...protocol.methods import EmptyParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    scheduler = ctx.scheduler
    if scheduler is None:
        return

    async def wake(call: Call, p: WakeParams) -> Any:
        result = scheduler.wake(p.text, p.mode, p.sessionKey)
        return {"ok": result["ok"]}

    async def system_event(call: Call, p: SystemEventParams) -> Any:
        if p.wake:
            scheduler.wake(p.text, "now", p.sessionKey)
        else:  # queued for the session's next heartbeat turn
            scheduler.queue_event(p.text, p.sessionKey)
        return {"ok": True}

    async def last_heartbeat(call: Call, p: EmptyParams) -> Any:
        return scheduler.last_heartbeat

    async def set_heartbeats(call: Call, p: SetHeartbeatsParams) -> Any:
        return scheduler.set_heartbeats(p.enabled)

    d = ctx.node.dispatcher
    d.register("wake", wake)
    d.register("system-event", system_event)
    d.register("last-heartbeat", last_heartbeat)
    d.register("set-heartbeats", set_heartbeats)
