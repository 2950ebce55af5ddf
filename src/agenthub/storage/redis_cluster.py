"""``RedisCluster``: the ``core.cluster.Cluster`` of gateway processes sharing one Redis.

Keys (``<p>`` is ``redis.prefix``), beside the bus's:

- ``<p>:nodes`` a sorted set of live processes, scored by when each expires;
  every process renews its own score every third of ``redis.node_ttl_ms``, and
  the first process to remove an expired member (``ZREM`` answers 1 to one
  caller only) ends that process's runs as errors and announces its death;
- ``<p>:presence:<node>`` each process's presence list (also sent on the
  shared log when it changes, so others need not poll);
- ``<p>:run:<runId>`` the owning process; ``<p>:owned:<node>`` its runs;
  ``<p>:sess:<sessionKey>`` a session's active runs (for aborts by session);
- ``<p>:lock:<key>`` short leases (``SET NX PX``) for cross-process exclusion;
- ``<p>:auth:<ip>`` and ``<p>:authlock:<ip>`` the shared auth limiter.

Requests to another process (abort, wait) and their answers travel on the
bus's shared log as control entries addressed to one process; cache
invalidations too, so they stay in order with the events that follow them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError

from ..core.cluster import Cluster, ClusterMember
from ..core.ratelimit import AuthLimiter, AuthLockedOut, SecurityLimits
from ..protocol import _json
from .redis_bus import RedisBus

__all__ = ["RedisAuthLimiter", "RedisCluster"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Keep a role's lease if this process holds it, else take it if free: 1 when held afterwards.
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

ROLES = ("scheduler",)  # cluster-wide chores, each done by one process (core.cluster.Cluster.leads)

_FAILED = """
local now, window, maxf, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) >= maxf then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', lockout)
  return lockout
end
return 0
"""


class RedisCluster:
    """Run ownership, presence, forwarded requests and invalidations over Redis (see the module doc)."""

    def __init__(
        self,
        bus: RedisBus,
        *,
        worker: int | None = None,
        node_ttl_ms: int = 10_000,
        rpc_timeout_s: float = 5.0,
        lock_ttl_ms: int = 30_000,
    ) -> None:
        self.bus = bus
        self.redis = bus.redis
        self.prefix = bus.prefix
        self.node_id = f"{os.uname().nodename}:{os.getpid()}:{bus.origin}"
        self.worker = worker
        self.node_ttl_ms = node_ttl_ms
        self.rpc_timeout_s = rpc_timeout_s
        self.lock_ttl_ms = lock_ttl_ms
        self.member: ClusterMember | None = None
        self._presence: dict[str, list[dict[str, Any]]] = {}  # other node -> its entries
        self._own_presence: list[dict[str, Any]] = []
        self._handlers: dict[str, list[Callable[[str], None]]] = {}
        self._calls: dict[str, asyncio.Future[Any]] = {}
        self._rids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_error: str | None = None
        self.reaped = 0
        self.live_nodes = 1
        self._leading: set[str] = set()
        bus.control_handlers[b"i"] = self._on_invalidate
        bus.control_handlers[b"c"] = self._on_control

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- lifecycle -------------------------------------------------------------
    def bind(self, member: ClusterMember) -> None:
        self.member = member

    async def start(self) -> None:
        """Join: announce this process, load the others' presence, start the heartbeat."""
        await self._heartbeat()
        await self._load_presence()
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="redis-cluster")

    async def stop(self) -> None:
        """Leave cleanly: the others drop this process's presence at once, not after the TTL."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        # Bounded: a process leaving with Redis away must not hang (the others reap it after the TTL).
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(3):
                await self._leave()

    async def _leave(self) -> None:
        for role in self._leading:  # hand the chores over at once, not after the lease runs out
            await self.redis.eval(_RELEASE, 1, self._k("leader", role), self.node_id)
        self._leading.clear()
        await self.redis.delete(self._k("presence", self.node_id))
        owned = await self.redis.scard(self._k("owned", self.node_id))
        if not owned:  # runs still owned are ended by whoever reaps this process
            await self.redis.zrem(self._k("nodes"), self.node_id)
        await self._send_control({"t": "left", "node": self.node_id})

    def _spawn(self, coro: Awaitable[T]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, RedisError | OSError):
                log.warning("cluster: %s", exc)
            else:
                log.error("cluster task failed", exc_info=exc)

    # -- liveness --------------------------------------------------------------------
    async def _loop(self) -> None:
        period = self.node_ttl_ms / 3000
        while True:
            await asyncio.sleep(period)
            try:
                await self._heartbeat()
                await self._reap()
            except (RedisError, OSError) as exc:
                if self._heartbeat_error is None:
                    self._heartbeat_error = f"redis unreachable: {exc}"
                    self.bus.mark_down(exc)
                continue
            if self._heartbeat_error is not None:
                self._heartbeat_error = None
                self.bus.mark_up()

    async def _heartbeat(self) -> None:
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._k("nodes"), {self.node_id: now + self.node_ttl_ms})
            pipe.set(self._k("presence", self.node_id), _json.dumps(self._own_presence), px=self.node_ttl_ms)
            for role in ROLES:
                pipe.eval(_LEAD, 1, self._k("leader", role), self.node_id, self.node_ttl_ms)
            replies = await pipe.execute()
        self._leading = {role for role, held in zip(ROLES, replies[2:], strict=True) if held == 1}

    def leads(self, role: str) -> bool:
        # A process cut off from Redis cannot know whether its lease still holds: it leads nothing.
        return role in self._leading and self.unavailable() is None

    async def _reap(self) -> None:
        """End the runs of processes whose heartbeat stopped; forget their presence."""
        now = int(time.time() * 1000)
        nodes = self._k("nodes")
        dead = _strs(await self.redis.zrangebyscore(nodes, "-inf", now))
        live = set(_strs(await self.redis.zrangebyscore(nodes, now, "+inf")))
        self.live_nodes = len(live)
        for node in dead:
            if await self.redis.zrem(nodes, node) == 1:  # this process noticed first: it reaps
                await self._reap_node(node)
        gone = [n for n in self._presence if n not in live]
        for node in gone:
            del self._presence[node]
        if gone and self.member is not None:
            self.member.remote_presence_changed()

    async def _reap_node(self, node: str) -> None:
        owned = self._k("owned", node)
        run_ids = _strs(await self.redis.smembers(owned))
        reason = f"the gateway process running it ({node}) died"
        log.warning("cluster: process %s is gone: ending its %d run(s)", node, len(run_ids))
        for run_id in run_ids:
            if self.member is not None:
                try:
                    await self.member.fail_orphaned_run(run_id, reason)
                except Exception:
                    log.exception("cluster: could not end run %s of %s", run_id, node)
            await self.redis.delete(self._k("run", run_id))
        await self.redis.delete(owned, self._k("presence", node))
        self.reaped += 1
        await self._send_control({"t": "left", "node": node})

    async def others_alive(self) -> bool:
        now = int(time.time() * 1000)
        live = await self.redis.zrangebyscore(self._k("nodes"), now, "+inf")
        return any(n != self.node_id for n in _strs(live))

    def unavailable(self) -> str | None:
        return self.bus.down_reason or self._heartbeat_error

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "redis",
            "ok": self.unavailable() is None,
            "nodeId": self.node_id,
            "liveNodes": self.live_nodes,
            "reaped": self.reaped,
            "leads": sorted(self._leading),
        }

    # -- presence ----------------------------------------------------------------------
    async def _load_presence(self) -> None:
        now = int(time.time() * 1000)
        live = _strs(await self.redis.zrangebyscore(self._k("nodes"), now, "+inf"))
        others = [n for n in live if n != self.node_id]
        if not others:
            return
        values = await self.redis.mget([self._k("presence", n) for n in others])
        for node, raw in zip(others, values, strict=True):
            if raw:
                self._presence[node] = _json.loads(raw)

    def presence_changed(self, entries: list[dict[str, Any]]) -> None:
        self._own_presence = list(entries)
        self._spawn(self._announce_presence())

    async def _announce_presence(self) -> None:
        await self.redis.set(self._k("presence", self.node_id), _json.dumps(self._own_presence), px=self.node_ttl_ms)
        await self._send_control({"t": "presence", "node": self.node_id, "entries": self._own_presence})

    def remote_presence(self) -> list[dict[str, Any]]:
        if not self._presence:
            return []
        return sorted((e for entries in self._presence.values() for e in entries), key=lambda e: e.get("ts") or 0)

    # -- run ownership ---------------------------------------------------------------------
    async def run_started(self, run_id: str, session_key: str) -> None:
        day = 86_400_000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k("run", run_id), self.node_id, px=day)
            pipe.sadd(self._k("owned", self.node_id), run_id)
            pipe.sadd(self._k("sess", session_key), run_id)
            pipe.pexpire(self._k("sess", session_key), day)
            await pipe.execute()

    def run_ended(self, run_id: str, session_key: str) -> None:
        async def forget() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._k("run", run_id))
                pipe.srem(self._k("owned", self.node_id), run_id)
                pipe.srem(self._k("sess", session_key), run_id)
                await pipe.execute()

        self._spawn(forget())

    async def _owners(self, run_ids: list[str]) -> dict[str, list[str]]:
        if not run_ids:
            return {}
        owners: list[Any] = await self.redis.mget([self._k("run", r) for r in run_ids])
        out: dict[str, list[str]] = {}
        for run_id, owner in zip(run_ids, owners, strict=True):
            if owner is not None and _str(owner) != self.node_id:
                out.setdefault(_str(owner), []).append(run_id)
        return out

    async def abort_remote(self, session_key: str, run_id: str | None, reason: str) -> list[str]:
        try:
            sess = self._k("sess", session_key)
            ids = [run_id] if run_id is not None else _strs(await self.redis.smembers(sess))
            owners = await self._owners(ids)
        except (RedisError, OSError) as exc:
            log.warning("cluster: cannot forward an abort: %s", exc)
            return []
        args = {"sessionKey": session_key, "runId": run_id, "reason": reason}
        answers = await asyncio.gather(*(self._call(owner, "abort", args, self.rpc_timeout_s) for owner in owners))
        return [r for answer in answers if isinstance(answer, list) for r in answer]

    async def wait_remote(self, run_id: str, timeout_s: float) -> dict[str, Any] | None:
        try:
            owners = await self._owners([run_id])
        except (RedisError, OSError):
            return None
        if not owners:
            return None
        (owner,) = owners
        answer = await self._call(
            owner, "wait", {"runId": run_id, "timeoutS": timeout_s}, timeout_s + self.rpc_timeout_s
        )
        return answer if isinstance(answer, dict) else None

    # -- requests between processes ------------------------------------------------------------
    async def _call(self, node: str, op: str, args: dict[str, Any], timeout_s: float) -> Any:
        """Ask ``node`` to run ``op``; None when it does not answer in time (dead, or Redis away)."""
        rid = f"{self.node_id}#{next(self._rids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[rid] = fut
        try:
            await self._send_control({"t": "rpc", "to": node, "from": self.node_id, "rid": rid, "op": op, "args": args})
            async with asyncio.timeout(timeout_s):
                return await fut
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("cluster: %s at %s got no answer: %s", op, node, exc or "timed out")
            return None
        finally:
            self._calls.pop(rid, None)

    async def _send_control(self, body: dict[str, Any]) -> None:
        await self.bus.publish_control(b"c", {b"b": _json.dumps(body)})

    def _on_control(self, kind: bytes, fields: dict[bytes, bytes]) -> None:
        body = _json.loads(fields[b"b"])
        t = body.get("t")
        if t == "presence":
            self._presence[body["node"]] = body.get("entries") or []
            if self.member is not None:
                self.member.remote_presence_changed()
        elif t == "left":
            if self._presence.pop(body["node"], None) is not None and self.member is not None:
                self.member.remote_presence_changed()
        elif t == "rpc" and body.get("to") == self.node_id:
            self._spawn(self._serve(body))
        elif t == "reply" and body.get("to") == self.node_id:
            fut = self._calls.get(body.get("rid", ""))
            if fut is not None and not fut.done():
                fut.set_result(body.get("result"))

    async def _serve(self, body: dict[str, Any]) -> None:
        member = self.member
        if member is None:
            return
        args = body.get("args") or {}
        result: Any = None
        if body.get("op") == "abort":
            result = await member.serve_abort(args["sessionKey"], args.get("runId"), args.get("reason", "aborted"))
        elif body.get("op") == "wait":
            result = await member.serve_wait(args["runId"], float(args.get("timeoutS", 30)))
        await self._send_control({"t": "reply", "to": body["from"], "rid": body["rid"], "result": result})

    # -- invalidation and locks ---------------------------------------------------------------
    def invalidate(self, kind: str, key: str) -> asyncio.Future[None]:
        return self.bus.publish_control(b"i", {b"t": kind, b"x": key})

    def on_invalidate(self, kind: str, handler: Callable[[str], None]) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def _on_invalidate(self, kind: bytes, fields: dict[bytes, bytes]) -> None:
        for handler in self._handlers.get(fields[b"t"].decode(), ()):
            try:
                handler(fields[b"x"].decode())
            except Exception:
                log.exception("cluster: invalidation handler failed")

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """A lease on ``key`` across processes (waits for it); without Redis, no lock at all."""
        name = self._k("lock", key)
        token = secrets.token_hex(8)
        held = False
        try:
            deadline = time.monotonic() + self.lock_ttl_ms / 1000
            delay = 0.005
            while time.monotonic() < deadline:
                if await self.redis.set(name, token, nx=True, px=self.lock_ttl_ms):
                    held = True
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
        except (RedisError, OSError) as exc:
            log.warning("cluster: lock %s not taken (%s): going on without it", key, exc)
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.eval(_RELEASE, 1, name, token)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _strs(values: Any) -> list[str]:
    return [_str(v) for v in values]


class RedisAuthLimiter(AuthLimiter):
    """The per-IP auth limiter shared by every process: a guess on one counts on all.

    Falls back to this process's own counts while Redis is unreachable.
    """

    def __init__(self, limits: SecurityLimits, cluster: RedisCluster) -> None:
        super().__init__(limits)
        self.redis = cluster.redis
        self.prefix = cluster.prefix

    async def attempt(
        self,
        ip: str,
        now_ms: int,
        check: Callable[[], Awaitable[T]],
        is_failure: Callable[[Exception], bool],
    ) -> T:
        fail_key, lock_key = f"{self.prefix}:auth:{ip}", f"{self.prefix}:authlock:{ip}"
        try:
            wait = await self.redis.pttl(lock_key)
        except (RedisError, OSError):
            return await super().attempt(ip, now_ms, check, is_failure)
        if wait > 0:
            raise AuthLockedOut(int(wait))
        try:
            result = await check()
        except Exception as exc:
            if is_failure(exc):
                lim = self.limits
                try:
                    wait = await self.redis.eval(
                        _FAILED,
                        2,
                        fail_key,
                        lock_key,
                        now_ms,
                        lim.auth_window_ms,
                        lim.auth_max_failures,
                        lim.auth_lockout_ms,
                        f"{now_ms}-{secrets.token_hex(4)}",
                    )
                except (RedisError, OSError):
                    wait = self.failed(ip, now_ms)
                if wait:
                    raise AuthLockedOut(int(wait)) from exc
            raise
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(fail_key)
        return result


if TYPE_CHECKING:
    _check: Cluster = RedisCluster(RedisBus("redis://localhost"))
