"""The ``stats`` system topic: a snapshot of connections, tasks by state, queue depth and uptime.

An extension of seed 002, whose architecture lists "Stats" among the system
events without a payload. Each socket subscribed to ``system``/``stats`` gets
one snapshot right after subscribing, then one every
``agentbox.stats_interval_s`` (0: only on demand); ``{"type": "stats"}`` asks
for one at any time (reply ``stats.result``). The payload::

    {"scope": "user" | "gateway", "ts": <ms>, "uptime_s": 12.5, "interval_s": 10,
     "connections": {"agentbox": 2, "total": 9},
     "tasks": {"queued": 0, "running": 1, "completed": 40, "failed": 2, "cancelled": 1},
     "queue_depth": 0}

A key with the ``admin`` scope sees the gateway (``scope: "gateway"``: every
AgentBox socket, every connection of any dialect as ``total``, every run); any
other key sees only its own user (its AgentBox sockets, its tasks, its queued
turns), so no user learns another's activity. ``tasks`` counts turns (a task
with one ``append_turn`` counts twice) by their stored outcome, across
restarts; ``queue_depth`` counts turns accepted but waiting for their
session's previous turn.
"""

from __future__ import annotations

from typing import Any

from ...core.node import Node
from ...core.runs import RunStatus, now_ms
from .events import TASK_STATUS
from .keys import User

__all__ = ["TASK_STATES", "snapshot"]

TASK_STATES = ("queued", "running", "completed", "failed", "cancelled")


async def snapshot(node: Node, user: User, agentbox_sockets: int, interval_s: float) -> dict[str, Any]:
    """One stats payload for ``user`` (gateway-wide for an admin key).

    ``agentbox_sockets``: the AgentBox sockets in scope (the user's, or all).
    """
    owner = None if user.admin else user.user_id
    stored = await node.store.count_runs_by_status(owner)
    tasks = dict.fromkeys(TASK_STATES, 0)
    for status, count in stored.items():
        state = TASK_STATUS.get(status, status)
        tasks[state] = tasks.get(state, 0) + count
    queued = sum(
        1 for r in node.runs.runs.values() if r.status is RunStatus.QUEUED and (owner is None or r.owner == owner)
    )
    connections = {"agentbox": agentbox_sockets}
    if owner is None:
        connections["total"] = len(node.connections)
    now = now_ms()
    return {
        "scope": "user" if owner is not None else "gateway",
        "ts": now,
        "uptime_s": round((now - node.started_ms) / 1000, 3),
        "interval_s": interval_s,
        "connections": connections,
        "tasks": tasks,
        "queue_depth": queued,
    }
