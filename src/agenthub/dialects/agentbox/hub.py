"""The one hub subscriber for every AgentBox socket, indexed by user, and the stats ticker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.bus import Publication
from ...core.node import Node
from .events import STATS_TOPIC, SYSTEM_TOPICS, prepare
from .frames import encode
from .keys import User
from .stats import snapshot

if TYPE_CHECKING:
    from .connection import AgentBoxSession

__all__ = ["AgentBoxHub"]

log = logging.getLogger(__name__)


class AgentBoxHub:
    """Routes publications to their owner's sockets and sends stats snapshots on a timer.

    Each publication is translated and encoded once (per channel), then
    offered only to the owner's sockets (every socket for alerts), so fan-out
    never scans other users. One timer serves every socket's stats: each
    period it computes one snapshot per user (per scope) and sends it to that
    user's sockets that named the ``stats`` topic; a period whose snapshots are
    still being computed is skipped, never stacked.
    """

    def __init__(self, node: Node, stats_interval_s: Callable[[], float] = lambda: 10.0) -> None:
        self.node = node
        self.stats_interval_s = stats_interval_s
        self.users: dict[str, dict[AgentBoxSession, None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._ticking: asyncio.Task[None] | None = None

    def add(self, session: AgentBoxSession, user_id: str) -> None:
        self.users.setdefault(user_id, {})[session] = None

    def remove(self, session: AgentBoxSession) -> None:
        user = session.user
        if user is None:
            return
        sessions = self.users.get(user.user_id)
        if sessions is not None:
            sessions.pop(session, None)
            if not sessions:
                del self.users[user.user_id]

    def owner_of(self, run_id: str) -> str | None:
        run = self.node.runs.get(run_id)
        return run.owner if run is not None else None

    def deliver(self, pub: Publication) -> None:
        if not self.users:
            return
        prepared = prepare(pub, self.owner_of)
        if prepared is None:
            return
        if prepared.owner is None:
            targets = [s for sessions in self.users.values() for s in sessions]
        else:
            targets = list(self.users.get(prepared.owner, ()))
        for session in targets:
            session.push(prepared, pub.droppable)

    # -- stats ----------------------------------------------------------------
    def sockets(self, user: User) -> int:
        """The AgentBox sockets in the user's stats scope: their own, or (admin) all of them."""
        if user.admin:
            return sum(len(s) for s in self.users.values())
        return len(self.users.get(user.user_id, ()))

    async def stats(self, user: User) -> dict[str, Any]:
        return await snapshot(self.node, user, self.sockets(user), self.stats_interval_s())

    @staticmethod
    def stats_frame(data: dict[str, Any]) -> bytes:
        payload = {"channel": "system", "topic": STATS_TOPIC, "event_type": SYSTEM_TOPICS[STATS_TOPIC]}
        return encode("event", {**payload, "data": data})

    def stats_wanted(self) -> None:
        """A socket named the ``stats`` topic: make sure the timer runs (it stops when nobody wants stats)."""
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        interval = self.stats_interval_s()
        self._timer = asyncio.get_running_loop().call_later(interval, self._on_timer) if interval > 0 else None

    def _on_timer(self) -> None:
        if not any(s.wants_stats for sessions in self.users.values() for s in sessions):
            self._timer = None
            return
        if self._ticking is None or self._ticking.done():
            self._ticking = asyncio.get_running_loop().create_task(self._tick(), name="agentbox-stats")
        self._schedule()

    async def _tick(self) -> None:
        """One snapshot per (user, scope) for the sockets that want stats, encoded once for all of them."""
        wanted: dict[tuple[str, bool], list[AgentBoxSession]] = {}
        users: dict[tuple[str, bool], User] = {}
        for sessions in list(self.users.values()):
            for session in sessions:
                if session.user is not None and session.wants_stats:
                    key = (session.user.user_id, session.user.admin)
                    wanted.setdefault(key, []).append(session)
                    users[key] = session.user
        for key, targets in wanted.items():
            try:
                frame = self.stats_frame(await self.stats(users[key]))
            except Exception as exc:  # the store failed (disk, database down): this period's snapshot is skipped
                log.warning("agentbox stats snapshot failed: %s", exc)
                return
            for session in targets:
                if session.wants_stats:
                    session.conn.send(frame)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ticking is not None:
            self._ticking.cancel()
