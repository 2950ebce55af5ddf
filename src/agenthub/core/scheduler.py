"""The scheduler: cron jobs and heartbeat turns on one timer, started like any client starts runs.

One ``loop.call_at`` handle is armed for the earliest due item (a job's
``nextRunAtMs`` or a session's next heartbeat); when it fires, everything due
is queued and started through ``node.runs.start``, at most
``max_concurrent_runs`` at a time (the rest wait in a bounded queue). Every
scheduled run is a normal agent run: streamed on the bus, visible to every
operator, abortable with ``chat.abort``. ``cron`` events announce each job's
start and finish, ``heartbeat`` events each heartbeat's outcome.

Missed runs (the gateway was down when a job was due) follow
``missed_run_policy``: ``run-once`` runs each missed job once,
``catchup_delay_ms`` after start, then resumes its schedule (never more than one
catch-up, however many slots were missed); ``skip`` moves on to the next slot
(a missed one-shot ``at`` job is then disabled). A run cut short by a stop is
recorded as an ``error`` ("interrupted") at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..protocol.cron import CronAddParams
from ..protocol.errors import ErrorCode, RpcError
from ..protocol.frames import describe_validation_error
from .cronstore import CronStore, MemoryCronStore
from .heartbeat import SystemEventQueue, classify_reply, heartbeat_message
from .node import Node
from .outbound import OutboundError
from .runs import Run, RunStatus, now_ms
from .schedules import Job, ScheduleError, first_run_ms, next_run_ms, validate_schedule
from .sessions import canonical_session_key

__all__ = ["CronConfig", "CronStore", "HeartbeatConfig", "MemoryCronStore", "Scheduler", "job_not_found"]

log = logging.getLogger(__name__)

MAX_TIMER_S = 60.0  # re-arm at least this often, so a wall-clock jump is noticed
PREVIEW_CHARS = 200


@dataclass(slots=True)
class CronConfig:
    """The ``cron.*`` settings the scheduler applies (refreshed on config change)."""

    enabled: bool = True
    max_jobs: int = 200
    max_concurrent_runs: int = 4
    min_interval_ms: int = 1000
    missed_run_policy: str = "run-once"
    catchup_delay_ms: int = 2000
    runs_per_job: int = 200


@dataclass(slots=True)
class HeartbeatConfig:
    """The ``heartbeat.*`` settings (see ``core.heartbeat`` for the silent-reply rule)."""

    interval_s: int = 0
    sessions: list[str] = field(default_factory=lambda: ["main"])
    prompt: str = "If nothing needs attention, reply HEARTBEAT_OK."
    ack_max_chars: int = 300
    target: str | None = None
    to: str | None = None
    account_id: str | None = None
    timeout_s: int = 600
    max_pending_events: int = 20
    max_event_chars: int = 2000
    max_event_sessions: int = 1000

    def __post_init__(self) -> None:
        # Canonical keys (``main`` is ``agent:main:main``), as runs and events name sessions.
        self.sessions = [session_key(s) for s in self.sessions]

    @property
    def main_session(self) -> str:
        return self.sessions[0] if self.sessions else session_key("main")


LEADER_POLL_S = 2.0  # how often a process that does not fire schedules checks whether it should


def session_key(key: str) -> str:
    """The canonical form of a session key from settings or a request (a malformed one is kept as given)."""
    try:
        return canonical_session_key(key)
    except ValueError:
        return key


def session_key_of(key: str | None) -> str | None:
    return session_key(key) if key else None


def job_not_found(job_id: str) -> RpcError:
    """OpenClaw's wording and details, which its CLI recognises."""
    return RpcError(
        ErrorCode.INVALID_REQUEST,
        f"cron job not found: {job_id}",
        details={"code": "CRON_JOB_NOT_FOUND", "jobId": job_id},
    )


def _invalid(method: str, reason: str) -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, f"invalid {method} params: {reason}")


@dataclass(slots=True)
class _Item:
    """One queued start: a job run or a heartbeat turn."""

    kind: str  # "job" | "heartbeat"
    key: str  # job id or session key
    run_id: str
    reason: str


def _completion(job: Job, entry: dict[str, Any]) -> str:
    """OpenClaw's ``completionStatus``: the run and, unless best-effort, its requested delivery."""
    if entry["status"] != "ok":
        return "failed"
    status = entry["deliveryStatus"]
    if status in ("delivered", "not-requested") or "deliverySuppressionReason" in entry:
        return "succeeded"
    return "succeeded" if (job.delivery or {}).get("bestEffort") else "failed"


class Scheduler:
    """Cron jobs and heartbeats for one node; ``start()`` after the store is open, ``stop()`` first on exit."""

    def __init__(
        self,
        node: Node,
        store: CronStore,
        cron: CronConfig,
        heartbeat: HeartbeatConfig,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.node = node
        self.store = store
        self.cron = cron
        self.heartbeat = heartbeat
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.events = SystemEventQueue(
            heartbeat.max_pending_events, heartbeat.max_event_chars, heartbeat.max_event_sessions
        )
        self.heartbeats_enabled = True
        self.last_heartbeat: dict[str, Any] | None = None
        self.revision = 0
        self._epoch = secrets.token_hex(4)
        self._hb_next: dict[str, int] = {}
        self._queue: deque[_Item] = deque()
        self._queued: set[tuple[str, str]] = set()
        self._active: dict[tuple[str, str], str] = {}  # (kind, key) -> run id, started or starting
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # Several gateway processes share the jobs (core.cluster): one of them fires, the others
        # reload the jobs when any process changes one.
        self._leading = node.cluster.leads("scheduler")
        node.cluster.on_invalidate("cron", lambda _job_id: self._spawn(self._reload()))

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Load jobs, settle what was missed or interrupted while down, arm the timer."""
        now = self.clock()
        for definition, state in await self.store.load():
            try:
                job = Job.from_definition(definition, state)
            except (KeyError, TypeError, ValueError):
                log.error("ignoring a stored cron job that cannot be read: %r", definition.get("id"))
                continue
            self.jobs[job.id] = job
            await self._settle_after_restart(job, now)
        self._reset_heartbeats(now)
        self._arm()
        log.info("scheduler started: %d job(s), missed-run policy %s", len(self.jobs), self.cron.missed_run_policy)

    async def stop(self) -> None:
        """Stop firing; runs still going are stopped by the run manager and seen as interrupted next start."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def apply(self, cron: CronConfig, heartbeat: HeartbeatConfig) -> None:
        """New settings at run time: limits, heartbeat cadence and sessions."""
        changed = (heartbeat.interval_s, heartbeat.sessions) != (self.heartbeat.interval_s, self.heartbeat.sessions)
        self.cron = cron
        self.heartbeat = heartbeat
        self.events.max_events = heartbeat.max_pending_events
        self.events.max_chars = heartbeat.max_event_chars
        self.events.max_sessions = heartbeat.max_event_sessions
        if changed:
            self._reset_heartbeats(self.clock())
        self._pump()
        self._arm()

    async def _settle_after_restart(self, job: Job, now: int) -> None:
        state = job.state
        changed = False
        if state.pop("runningAtMs", None) is not None:
            run_id = state.pop("runningRunId", None)
            await self._record(job, self._entry(job, run_id, now, "error", "interrupted: the gateway stopped"))
            changed = True
        if job.enabled:
            due = state.get("nextRunAtMs")
            if due is None and state.get("lastRunAtMs") is None:
                state["nextRunAtMs"] = first_run_ms(job.schedule, now, job_id=job.id, anchor_ms=job.created_ms)
                changed = True
            elif isinstance(due, int) and due <= now:
                changed = True
                if self.cron.missed_run_policy == "run-once":
                    state["nextRunAtMs"] = now + self.cron.catchup_delay_ms
                    log.info("cron job %s missed its run at %d; runs once now", job.id, due)
                else:
                    nxt = next_run_ms(job.schedule, now, job_id=job.id, anchor_ms=job.created_ms)
                    state["nextRunAtMs"] = nxt
                    if nxt is None:
                        job.enabled = False
                        state["lastRunStatus"] = "skipped"
        if changed:
            await self.store.put_job(job.definition(), job.state)

    # -- jobs --------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    async def add(self, spec: dict[str, Any], caller_session: str | None = None) -> Job:
        """Create a job from ``cron.add`` params (already validated against the wire model)."""
        if len(self.jobs) >= self.cron.max_jobs:
            raise _invalid("cron.add", f"too many jobs (cron.max_jobs is {self.cron.max_jobs})")
        now = self.clock()
        self._validate(spec["schedule"], "cron.add", now)
        target = spec["sessionTarget"]
        session_key = spec.get("sessionKey") or (caller_session if target == "current" else None)
        job = Job(
            id=str(uuid.uuid4()),
            name=spec["name"],
            schedule=spec["schedule"],
            session_target=target,
            payload=spec["payload"],
            created_ms=now,
            updated_ms=now,
            enabled=spec.get("enabled", True),
            wake_mode=spec.get("wakeMode") or "now",
            delivery=spec.get("delivery"),
            description=spec.get("description"),
            display_name=spec.get("displayName"),
            delete_after_run=spec.get("deleteAfterRun"),
            session_key=session_key,
            agent_id=spec.get("agentId"),
        )
        if job.enabled:
            job.state["nextRunAtMs"] = first_run_ms(job.schedule, now, job_id=job.id, anchor_ms=job.created_ms)
        await self.store.put_job(job.definition(), job.state)
        self.jobs[job.id] = job
        self._changed(job, "added")
        return job

    async def update(self, job_id: str, patch: dict[str, Any]) -> Job:
        job = self.get(job_id)
        now = self.clock()
        if "schedule" in patch:
            self._validate(patch["schedule"], "cron.update", now)
        payload = job.payload
        if "payload" in patch:
            new = patch["payload"]
            payload = new if new.get("kind", payload["kind"]) != payload["kind"] else {**payload, **new}
        delivery = job.delivery
        if "delivery" in patch:
            delivery = {**(delivery or {}), **patch["delivery"]}
        spec = {**job.definition(), **patch, "payload": payload, "delivery": delivery}
        spec = {k: v for k, v in spec.items() if v is not None}
        try:
            checked = CronAddParams.model_validate(spec).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            message = describe_validation_error(exc, "invalid cron.update params: ")
            raise RpcError(ErrorCode.INVALID_REQUEST, message) from None
        rescheduled = "schedule" in patch or (patch.get("enabled") is True and not job.enabled)
        job.name = checked["name"]
        job.schedule = checked["schedule"]
        job.session_target = checked["sessionTarget"]
        job.wake_mode = checked.get("wakeMode", "now")
        job.payload = checked["payload"]
        job.delivery = checked.get("delivery")
        job.description = checked.get("description")
        job.display_name = checked.get("displayName")
        job.delete_after_run = checked.get("deleteAfterRun")
        job.session_key = checked.get("sessionKey")
        job.enabled = checked.get("enabled", True)
        job.updated_ms = now
        if not job.enabled:
            job.state.pop("nextRunAtMs", None)
        elif rescheduled or job.state.get("nextRunAtMs") is None:
            job.state["nextRunAtMs"] = first_run_ms(job.schedule, now, job_id=job.id, anchor_ms=now)
        await self.store.put_job(job.definition(), job.state)
        self._changed(job, "updated")
        return job

    async def remove(self, job_id: str) -> None:
        self.get(job_id)
        await self.store.delete_job(job_id)
        job = self.jobs.pop(job_id)
        self._changed(job, "removed")

    def _validate(self, schedule: dict[str, Any], method: str, now: int) -> None:
        try:
            validate_schedule(schedule, now, self.cron.min_interval_ms)
        except ScheduleError as exc:
            raise _invalid(method, str(exc)) from None

    async def _reload(self) -> None:
        """Read every job again from the store (another process changed one, or this one now fires them)."""
        loaded: dict[str, Job] = {}
        for definition, state in await self.store.load():
            try:
                job = Job.from_definition(definition, state)
            except (KeyError, TypeError, ValueError):
                continue
            loaded[job.id] = job
        self.jobs = loaded
        self.revision += 1
        self._arm()

    def _changed(self, job: Job, action: str) -> None:
        self.revision += 1
        self.node.cluster.invalidate("cron", job.id)
        payload: dict[str, Any] = {"jobId": job.id, "action": action}
        if action != "removed":
            payload["job"] = job.view()
        self.node.hub.broadcast("cron", payload, droppable=True)
        self._arm()

    def run_now(self, job_id: str, mode: str) -> dict[str, Any]:
        """``cron.run``: queue a run now (``force``), or only if due / enabled."""
        job = self.get(job_id)
        if mode == "if-enabled" and not job.enabled:
            return {"ok": True, "ran": False, "reason": "disabled"}
        if mode == "due":
            due = job.state.get("nextRunAtMs")
            if not job.enabled or not isinstance(due, int) or due > self.clock():
                return {"ok": True, "ran": False, "reason": "not-due"}
        if ("job", job.id) in self._active or ("job", job.id) in self._queued:
            return {"ok": True, "ran": False, "reason": "already-running"}
        run_id = str(uuid.uuid4())
        self._enqueue(_Item("job", job.id, run_id, "manual"))
        return {"ok": True, "enqueued": True, "runId": run_id}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """One page of ``cron.list`` with OpenClaw's paging fields."""
        jobs = list(self.jobs.values())
        enabled = params.get("enabled") or ("all" if params.get("includeDisabled") else "enabled")
        if enabled != "all":
            jobs = [j for j in jobs if j.enabled == (enabled == "enabled")]
        kind = params.get("scheduleKind")
        if kind and kind != "all":
            jobs = [j for j in jobs if j.schedule.get("kind") == kind]
        query = (params.get("query") or "").lower()
        if query:
            jobs = [j for j in jobs if query in f"{j.id} {j.name} {j.display_name or ''}".lower()]
        sort_by = params.get("sortBy", "nextRunAtMs")
        far = 1 << 62

        def sort_key(j: Job) -> Any:
            if sort_by == "name":
                return j.name.lower()
            if sort_by == "updatedAtMs":
                return j.updated_ms
            nxt = j.state.get("nextRunAtMs")
            return nxt if isinstance(nxt, int) else far

        jobs.sort(key=sort_key, reverse=params.get("sortDir") == "desc")
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 200))
        page = jobs[offset : offset + limit]
        end = offset + len(page)
        return {
            "jobs": [{**j.view(), "effectiveAgentId": j.agent_id or "main"} for j in page],
            "total": len(jobs),
            "offset": offset,
            "limit": limit,
            "hasMore": end < len(jobs),
            "nextOffset": end if end < len(jobs) else None,
            "snapshotRevision": f"{self._epoch}-{self.revision}",
        }

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.cron.enabled,
            "triggersEnabled": False,
            "storage": "sql",
            "jobs": len(self.jobs),
            "nextWakeAtMs": self._next_job_ms() if self.cron.enabled else None,
            "activeRuns": len(self._active),
            "queuedRuns": len(self._queue),
            "maxConcurrentRuns": self.cron.max_concurrent_runs,
            "missedRunPolicy": self.cron.missed_run_policy,
            "heartbeat": {
                "enabled": self.heartbeats_enabled,
                "intervalSeconds": self.heartbeat.interval_s,
                "sessions": list(self.heartbeat.sessions),
            },
        }

    # -- system events and heartbeats ----------------------------------------------
    def queue_event(self, text: str, session_key: str | None = None) -> str:
        """Queue ``text`` for a session's next heartbeat turn; returns ``queued`` or ``coalesced``."""
        return self.events.push(session_key_of(session_key) or self.heartbeat.main_session, text)

    def wake(self, text: str, mode: str, session_key: str | None = None) -> dict[str, Any]:
        """Queue ``text``; ``now`` (or an explicit session, as in OpenClaw) runs the heartbeat turn at once."""
        session = session_key_of(session_key) or self.heartbeat.main_session
        outcome = self.events.push(session, text)
        if mode == "now" or session_key is not None:
            self.request_heartbeat(session, "wake")
        return {"ok": True, "mode": mode, "eventOutcome": outcome}

    def request_heartbeat(self, session: str, reason: str) -> None:
        session = session_key(session)
        if ("heartbeat", session) in self._active or ("heartbeat", session) in self._queued:
            return
        self._enqueue(_Item("heartbeat", session, f"heartbeat-{uuid.uuid4()}", reason))

    def set_heartbeats(self, enabled: bool) -> dict[str, Any]:
        self.heartbeats_enabled = enabled
        if enabled:
            self._reset_heartbeats(self.clock())
            self._arm()
        return {"ok": True, "enabled": enabled}

    def _reset_heartbeats(self, now: int) -> None:
        every = self.heartbeat.interval_s * 1000
        self._hb_next = {s: now + every for s in self.heartbeat.sessions} if every > 0 else {}

    # -- the timer -------------------------------------------------------------------
    def _next_job_ms(self) -> int | None:
        times = [
            j.state["nextRunAtMs"]
            for j in self.jobs.values()
            if j.enabled and isinstance(j.state.get("nextRunAtMs"), int) and ("job", j.id) not in self._active
        ]
        return min(times) if times else None

    def _arm(self) -> None:
        if self._stopping:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        candidates = list(self._hb_next.values()) if self.heartbeats_enabled else []
        if self.cron.enabled and (nxt := self._next_job_ms()) is not None:
            candidates.append(nxt)
        if not candidates:
            return
        delay = min(MAX_TIMER_S, max(0.0, (min(candidates) - self.clock()) / 1000))
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.node.cluster.leads("scheduler"):
            # Another gateway process fires schedules; look again later (it may die, or Redis return).
            self._leading = False
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(LEADER_POLL_S, self._on_timer)
            return
        if not self._leading:  # just became the one that fires: start from the jobs as stored now
            self._leading = True
            self._spawn(self._reload())
            return
        now = self.clock()
        if self.cron.enabled:
            due = [
                j
                for j in self.jobs.values()
                if j.enabled and isinstance(j.state.get("nextRunAtMs"), int) and j.state["nextRunAtMs"] <= now
            ]
            for job in sorted(due, key=lambda j: j.state["nextRunAtMs"]):
                self._fire(job, now)
        if self.heartbeats_enabled:
            every = self.heartbeat.interval_s * 1000
            for session, at in list(self._hb_next.items()):
                if at <= now:
                    self._hb_next[session] = now + every
                    self.request_heartbeat(session, "interval")
        self._arm()

    def _fire(self, job: Job, now: int) -> None:
        """A job is due: schedule its next slot first, then queue this run (unless one is still going)."""
        job.state["nextRunAtMs"] = next_run_ms(job.schedule, now, job_id=job.id, anchor_ms=job.created_ms)
        if ("job", job.id) in self._active or ("job", job.id) in self._queued:
            job.state["consecutiveSkipped"] = int(job.state.get("consecutiveSkipped", 0)) + 1
            log.info("cron job %s is still running; this slot is skipped", job.id)
            self._spawn(self.store.put_state(job.id, job.state))
            return
        self._enqueue(_Item("job", job.id, str(uuid.uuid4()), "scheduled"))

    def _enqueue(self, item: _Item) -> None:
        self._queued.add((item.kind, item.key))
        self._queue.append(item)
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._active) < self.cron.max_concurrent_runs and not self._stopping:
            item = self._queue.popleft()
            slot = (item.kind, item.key)
            self._queued.discard(slot)
            self._active[slot] = item.run_id
            start = self._start_job(item) if item.kind == "job" else self._start_heartbeat(item)
            self._spawn(start)

    def _release(self, kind: str, key: str) -> None:
        self._active.pop((kind, key), None)
        self._pump()
        self._arm()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler task failed", exc_info=task.exception())

    # -- running a job ------------------------------------------------------------------
    def session_for(self, job: Job) -> str:
        target = job.session_target
        if target == "isolated":
            return f"cron:{job.id}"
        if target.startswith("session:"):
            return session_key(target[len("session:") :])
        if target == "current" and job.session_key:
            return session_key(job.session_key)
        return self.heartbeat.main_session

    async def _start_job(self, item: _Item) -> None:
        job = self.jobs.get(item.key)
        if job is None:
            self._release("job", item.key)
            return
        session = self.session_for(job)
        started = self.clock()
        try:
            if job.payload["kind"] == "systemEvent":
                outcome = self.events.push(session, str(job.payload["text"]))
                self._publish_started(job, item.run_id, session, started)
                if job.wake_mode == "now":
                    self.request_heartbeat(session, f"cron:{job.id}")
                entry = self._entry(job, item.run_id, started, "ok", None, session=session)
                entry["summary"] = f"system event {outcome} for {session}"
                await self._finish_job(job, entry)
                return
            if job.session_target == "isolated":
                await self.node.store.reset_session(session, started)
            timeout = job.payload.get("timeoutSeconds")
            run = await self.node.runs.start(
                item.run_id,
                session,
                str(job.payload["message"]),
                f"cron:{job.id}",
                timeout_s=self.node.runs.timeout_for(float(timeout)) if timeout else None,
            )
        except Exception as exc:
            log.warning("cron job %s could not start: %s", job.id, exc)
            await self._finish_job(job, self._entry(job, item.run_id, started, "error", str(exc), session=session))
            return
        # Hooked up before anything else can fail, so the slot is always released when the run ends.
        run.on_done.append(lambda r: self._spawn(self._job_run_done(job, r, started)))
        job.state["runningAtMs"] = started
        job.state["runningRunId"] = item.run_id
        self._publish_started(job, item.run_id, session, started)
        try:
            await self.store.put_state(job.id, job.state)
        except Exception:
            log.exception("cron job %s: could not record the run start", job.id)

    def _publish_started(self, job: Job, run_id: str, session: str, at: int) -> None:
        self.node.hub.broadcast(
            "cron",
            {"jobId": job.id, "action": "started", "runId": run_id, "sessionKey": session, "runAtMs": at},
        )

    async def _job_run_done(self, job: Job, run: Run, started: int) -> None:
        if self._stopping:
            return
        status = "ok" if run.status is RunStatus.OK else "error"
        error = None if status == "ok" else (run.abort_reason or run.error or run.status.value)
        entry = self._entry(job, run.run_id, started, status, error, session=run.session_key)
        if run.text:
            entry["summary"] = run.text[:500]
        if status == "ok":
            await self._deliver(job, run.text, entry)
        await self._finish_job(job, entry)

    async def _deliver(self, job: Job, text: str, entry: dict[str, Any]) -> None:
        delivery = job.delivery or {}
        if delivery.get("mode") != "announce":
            entry.update(delivered=False, deliveryStatus="not-requested")
            return
        reply = classify_reply(text, self.heartbeat.ack_max_chars)
        if reply.status != "alert":
            entry.update(delivered=False, deliveryStatus="not-delivered", deliverySuppressionReason="silent")
            return
        channel, to = delivery.get("channel"), delivery.get("to")
        try:
            if not channel or not to or channel == "last":
                raise OutboundError("no delivery route: set delivery.channel and delivery.to")
            outbound = self.node.outbound
            if outbound is None or not outbound.has_channel(channel):
                raise OutboundError(f"channel not configured: {channel}")
            await outbound.deliver(channel, str(to), reply.text, account=delivery.get("accountId"))
        except Exception as exc:  # OutboundError, or a channel's own failure: never lose the slot
            entry.update(delivered=False, deliveryStatus="not-delivered", deliveryError=str(exc))
            return
        entry.update(delivered=True, deliveryStatus="delivered")

    def _entry(
        self, job: Job, run_id: str | None, started: int, status: str, error: str | None, *, session: str = ""
    ) -> dict[str, Any]:
        now = self.clock()
        entry: dict[str, Any] = {
            "ts": now,
            "jobId": job.id,
            "action": "finished",
            "status": status,
            "runAtMs": started,
            "durationMs": max(0, now - started),
            "jobName": job.name,
        }
        if run_id:
            entry["runId"] = run_id
        if session:
            entry["sessionKey"] = session
        if error:
            entry["error"] = error[:2000]
        return entry

    async def _finish_job(self, job: Job, entry: dict[str, Any]) -> None:
        """Record the outcome in the job's state and run log, announce it, free the slot."""
        try:
            entry.setdefault("deliveryStatus", "not-requested")
            entry.setdefault("delivered", False)
            entry["completionStatus"] = _completion(job, entry)
            state = job.state
            state.pop("runningAtMs", None)
            state.pop("runningRunId", None)
            state["lastRunAtMs"] = entry["runAtMs"]
            state["lastRunStatus"] = entry["status"]
            state["lastDurationMs"] = entry["durationMs"]
            state["consecutiveSkipped"] = 0
            if entry["status"] == "error":
                state["lastError"] = entry.get("error", "")
                state["consecutiveErrors"] = int(state.get("consecutiveErrors", 0)) + 1
            else:
                state.pop("lastError", None)
                state["consecutiveErrors"] = 0
            for wire, key in (("lastDelivered", "delivered"), ("lastDeliveryStatus", "deliveryStatus")):
                if key in entry:
                    state[wire] = entry[key]
            if "deliveryError" in entry:
                state["lastDeliveryError"] = entry["deliveryError"]
            else:
                state.pop("lastDeliveryError", None)
            if state.get("nextRunAtMs") is not None:
                entry["nextRunAtMs"] = state["nextRunAtMs"]
            one_shot = job.schedule.get("kind") == "at"
            if one_shot:
                job.enabled = False
                state.pop("nextRunAtMs", None)
            if job.id in self.jobs:
                await self._record(job, entry)
                if one_shot and entry["completionStatus"] == "succeeded" and job.delete_after_run is not False:
                    await self.remove(job.id)
                else:
                    await self.store.put_job(job.definition(), state)
            self.node.hub.broadcast("cron", entry)
        finally:
            self._release("job", job.id)

    async def _record(self, job: Job, entry: dict[str, Any]) -> None:
        await self.store.add_run(entry, self.cron.runs_per_job)

    # -- running a heartbeat ----------------------------------------------------------
    async def _start_heartbeat(self, item: _Item) -> None:
        session = item.key
        started = self.clock()
        if not self.heartbeats_enabled:
            self._heartbeat_event({"status": "skipped", "reason": "disabled"}, started)
            self._release("heartbeat", session)
            return
        if self.node.runs.active(session):
            self._heartbeat_event({"status": "skipped", "reason": "requests-in-flight"}, started)
            self._release("heartbeat", session)
            return
        events = self.events.peek(session)
        message = heartbeat_message(self.heartbeat.prompt, events)
        try:
            run = await self.node.runs.start(
                item.run_id,
                session,
                message,
                f"heartbeat:{item.reason}",
                timeout_s=self.node.runs.timeout_for(float(self.heartbeat.timeout_s)),
            )
        except Exception as exc:
            self._heartbeat_event({"status": "failed", "reason": str(exc)}, started)
            self._release("heartbeat", session)
            return
        run.on_done.append(lambda r: self._spawn(self._heartbeat_done(r, events, started)))

    async def _heartbeat_done(self, run: Run, events: list[str], started: int) -> None:
        session = run.session_key
        try:
            if self._stopping:
                return
            self.events.take(session, events)
            base: dict[str, Any] = {"runId": run.run_id, "sessionKey": session}
            if run.status is not RunStatus.OK:
                reason = run.abort_reason or run.error or run.status.value
                self._heartbeat_event({**base, "status": "failed", "reason": reason, "indicatorType": "error"}, started)
                return
            reply = classify_reply(run.text, self.heartbeat.ack_max_chars)
            if reply.status != "alert":
                event = {**base, "status": reply.status, "silent": True, "indicatorType": "ok"}
                self._heartbeat_event(event, started)
                return
            hb = self.heartbeat
            preview = reply.text[:PREVIEW_CHARS]
            if not hb.target or not hb.to:
                event = {**base, "status": "skipped", "reason": "no-route", "preview": preview}
                event["message"] = "Heartbeat has no delivery route: set heartbeat.target and heartbeat.to."
                self._heartbeat_event(event, started)
                return
            route = {"channel": hb.target, "to": hb.to, **({"accountId": hb.account_id} if hb.account_id else {})}
            try:
                outbound = self.node.outbound
                if outbound is None or not outbound.has_channel(hb.target):
                    raise OutboundError(f"channel not configured: {hb.target}")
                await outbound.deliver(hb.target, hb.to, reply.text, account=hb.account_id)
            except Exception as exc:  # OutboundError, or a channel's own failure: never lose the slot
                failed = {**base, **route, "status": "failed", "reason": str(exc), "indicatorType": "error"}
                self._heartbeat_event(failed, started)
                return
            sent = {**base, **route, "status": "sent", "preview": preview, "silent": False, "indicatorType": "alert"}
            self._heartbeat_event(sent, started)
        finally:
            self._release("heartbeat", session)

    def _heartbeat_event(self, event: dict[str, Any], started: int) -> None:
        now = self.clock()
        payload = {"ts": now, **event, "durationMs": max(0, now - started)}
        self.last_heartbeat = payload
        self.node.hub.broadcast("heartbeat", payload)

    # -- run log ---------------------------------------------------------------------
    async def runs(self, job_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """One page of the run log, OpenClaw's ``cron.runs`` shape."""
        statuses = params.get("statuses")
        status = params.get("status")
        if not statuses and status and status != "all":
            statuses = [status]
        limit, offset = int(params.get("limit", 50)), int(params.get("offset", 0))
        entries, total = await self.store.runs(
            job_id,
            statuses=statuses,
            run_id=params.get("runId"),
            limit=limit,
            offset=offset,
            descending=params.get("sortDir", "desc") != "asc",
        )
        end = min(total, offset) + len(entries)
        return {
            "entries": entries,
            "total": total,
            "offset": min(total, offset),
            "limit": limit,
            "hasMore": end < total,
            "nextOffset": end if end < total else None,
        }
