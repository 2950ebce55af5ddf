"""What the core needs from the other gateway processes: the ``Cluster`` protocol, and ``LocalCluster``.

One gateway process alone is its own cluster (``LocalCluster``: every answer is
local, nothing to tell anyone). Several processes sharing Redis
(``storage.redis_cluster.RedisCluster``) must agree on more than the event
order the bus gives them:

- **run ownership**: a run executes in the process that accepted it; an abort
  or ``agent.wait`` arriving at any other process is forwarded to that owner
  (``abort_remote``, ``wait_remote``), and a run whose owner died is ended as
  an error by whichever process notices first;
- **presence**: each process announces its own connections; ``presence()``
  lists everyone's, and a dead process's entries expire;
- **shared caches**: a write that makes another process's cached copy wrong
  (a device token revoked, a transcript appended) is announced with
  ``invalidate``; every other process drops that entry before it next reads it;
- **mutual exclusion**: ``lock(key)`` serialises work on one key (an
  idempotency key) across processes, and ``leads(role)`` names the one process
  that does a cluster-wide chore (the scheduler fires cron jobs and heartbeats
  in one process only);
- **availability**: ``unavailable()`` says why new work must be refused now
  (Redis unreachable), so runs are refused with a retryable ``UNAVAILABLE``
  instead of half-starting.

The core calls these; it never knows which backend answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["Cluster", "ClusterMember", "LocalCluster"]


class ClusterMember(Protocol):
    """What a cluster calls back into (the node): serve forwarded requests, show presence changes."""

    async def serve_abort(self, session_key: str, run_id: str | None, reason: str) -> list[str]: ...

    async def serve_wait(self, run_id: str, timeout_s: float) -> dict[str, Any] | None: ...

    def remote_presence_changed(self) -> None: ...

    async def fail_orphaned_run(self, run_id: str, reason: str) -> bool: ...


class Cluster(Protocol):
    """The processes of one gateway, as the core sees them (see the module doc)."""

    node_id: str  # this process, unique in the cluster (host, pid, random)
    worker: int | None  # this process's index among ``--workers N`` (None: started alone)

    def unavailable(self) -> str | None:
        """Why new work cannot start now, or None."""
        ...

    def describe(self) -> dict[str, Any]:
        """The backend as ``health``/``status``/``/metrics`` show it."""
        ...

    def bind(self, member: ClusterMember) -> None: ...

    async def run_started(self, run_id: str, session_key: str) -> None:
        """Record this process as the run's owner (before the run is acknowledged)."""
        ...

    def run_ended(self, run_id: str, session_key: str) -> None: ...

    async def abort_remote(self, session_key: str, run_id: str | None, reason: str) -> list[str]:
        """Abort matching runs owned by other processes; the run ids they aborted."""
        ...

    async def wait_remote(self, run_id: str, timeout_s: float) -> dict[str, Any] | None:
        """``agent.wait`` at the run's owner: its result (``status: timeout`` if still running),
        or None when no live process owns the run."""
        ...

    def presence_changed(self, entries: list[dict[str, Any]]) -> None:
        """This process's presence list changed (debounced by the node)."""
        ...

    def remote_presence(self) -> list[dict[str, Any]]: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    def leads(self, role: str) -> bool:
        """Whether this process holds the cluster-wide ``role`` now (a lease renewed by its heartbeat)."""
        ...

    def invalidate(self, kind: str, key: str) -> asyncio.Future[None]:
        """Tell every other process to drop its cached ``kind`` entry ``key``.

        Queued at once, in order with this process's publications (so an event
        that follows a write never overtakes the write's invalidation); the
        future is done when the backend took it (await it to answer only after).
        """
        ...

    def on_invalidate(self, kind: str, handler: Callable[[str], None]) -> None: ...

    async def others_alive(self) -> bool:
        """Whether another live process shares the backend (then runs marked running may be theirs)."""
        ...


class LocalCluster:
    """A gateway of one process: everything is local."""

    def __init__(self, worker: int | None = None) -> None:
        self.node_id = f"{os.uname().nodename}:{os.getpid()}"
        self.worker = worker

    def unavailable(self) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": "local"}

    def bind(self, member: ClusterMember) -> None:
        pass

    async def run_started(self, run_id: str, session_key: str) -> None:
        pass

    def run_ended(self, run_id: str, session_key: str) -> None:
        pass

    async def abort_remote(self, session_key: str, run_id: str | None, reason: str) -> list[str]:
        return []

    async def wait_remote(self, run_id: str, timeout_s: float) -> dict[str, Any] | None:
        return None

    def presence_changed(self, entries: list[dict[str, Any]]) -> None:
        pass

    def remote_presence(self) -> list[dict[str, Any]]:
        return []

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield  # one process: the caller's own in-process exclusion is enough

    def leads(self, role: str) -> bool:
        return True

    def invalidate(self, kind: str, key: str) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on_invalidate(self, kind: str, handler: Callable[[str], None]) -> None:
        pass

    async def others_alive(self) -> bool:
        return False


if TYPE_CHECKING:
    _check: Cluster = LocalCluster()
