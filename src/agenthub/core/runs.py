"""Agent runs: lifecycle, streaming, abort, and one run at a time per session.

A run is a task that drives an ``AgentRuntime`` and publishes what it yields on
the bus stream ``run:<runId>``, as ``agent`` events (every step) and ``chat``
events (the assistant message so far, at most one delta per
``chat_delta_interval_ms``). Core events use the native payload shapes as the
canonical model; other dialects translate from them at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .bus import EventBus
from .runtime import (
    AgentRuntime,
    ChatMessage,
    TextDelta,
    Thinking,
    Tool,
    ToolCallResult,
    ToolCallStart,
    Turn,
)
from .sessions import canonical_session_key, event_session_fields, lifecycle_end
from .store import MessageRecord, RunRecord, Store

__all__ = ["Run", "RunManager", "RunStatus", "now_ms", "run_stream"]

log = logging.getLogger(__name__)

HISTORY_TURNS = 200  # transcript messages handed to the provider as context


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def run_stream(run_id: str) -> str:
    return f"run:{run_id}"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    ABORTED = "aborted"


TERMINAL = frozenset({RunStatus.OK, RunStatus.ERROR, RunStatus.ABORTED})


@dataclass(eq=False)
class Run:
    run_id: str
    session_key: str
    message: str
    origin: str
    created_ms: int
    status: RunStatus = RunStatus.QUEUED
    text: str = ""
    thinking: str = ""
    error: str | None = None
    started_ms: int | None = None
    ended_ms: int | None = None
    abort_reason: str | None = None
    # The user a dialect started the run for (AgentBox API keys); None for operator runs.
    owner: str | None = None
    # Per-run agent (a dialect's pipeline or tool set); None means the gateway's configured one.
    runtime: AgentRuntime | None = None
    tools: Sequence[Tool] | None = None
    message_meta: dict[str, Any] = field(default_factory=dict)  # stored with the user message
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    on_done: list[Callable[[Run], None]] = field(default_factory=list)
    _chat_sent: str = ""
    _chat_at: float = 0.0
    _chat_timer: asyncio.TimerHandle | None = None

    def result(self) -> dict[str, Any]:
        """The payload of the final ``agent`` response and of ``agent.wait``."""
        out: dict[str, Any] = {"runId": self.run_id, "status": self.status.value, "summary": self.text[:500]}
        if self.error:
            out["error"] = self.error
        if self.started_ms is not None:
            out["startedAt"] = self.started_ms
        if self.ended_ms is not None:
            out["endedAt"] = self.ended_ms
        return out

    def record(self) -> RunRecord:
        return RunRecord(
            run_id=self.run_id,
            session_key=self.session_key,
            status=self.status.value,
            created_ms=self.created_ms,
            started_ms=self.started_ms,
            ended_ms=self.ended_ms,
            error=self.error,
            summary=self.text[:500] or None,
            origin=self.origin,
            owner=self.owner,
        )


def _message(text: str, ts: int) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": ts}


class RunManager:
    """Starts, streams, aborts and awaits runs; one active run per session at a time."""

    def __init__(
        self,
        bus: EventBus,
        store: Store,
        runtime: Callable[[], AgentRuntime],
        tools: Callable[[Run], Sequence[Tool]] = lambda run: (),
        *,
        chat_delta_interval_ms: int = 150,
        run_timeout_s: float = 600,
    ) -> None:
        self.bus = bus
        self.store = store
        self.runtime = runtime
        self.tools = tools
        self.chat_delta_interval_ms = chat_delta_interval_ms
        self.run_timeout_s = run_timeout_s
        self.runs: dict[str, Run] = {}
        self.finished: dict[str, Run] = {}
        self.totals: dict[str, int] = {s.value: 0 for s in RunStatus}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._keep_finished = 1000

    # -- public API ---------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id) or self.finished.get(run_id)

    def active(self, session_key: str | None = None) -> list[Run]:
        return [r for r in self.runs.values() if session_key is None or r.session_key == session_key]

    async def start(
        self,
        run_id: str,
        session_key: str,
        message: str,
        origin: str,
        *,
        runtime: AgentRuntime | None = None,
        tools: Sequence[Tool] | None = None,
        owner: str | None = None,
        message_meta: dict[str, Any] | None = None,
    ) -> Run:
        """Accept a run; it starts when the session's previous run has ended.

        ``runtime`` and ``tools`` override the configured agent for this run only;
        ``owner`` is recorded with the run so per-user visibility survives a restart.
        """
        session_key = canonical_session_key(session_key)
        run = Run(
            run_id,
            session_key,
            message,
            origin,
            now_ms(),
            runtime=runtime,
            tools=tools,
            owner=owner,
            message_meta=message_meta or {},
        )
        self.runs[run_id] = run
        self.totals[RunStatus.QUEUED] += 1
        await self.store.ensure_session(session_key, run.created_ms)
        await self.store.put_run(run.record())
        run.task = asyncio.get_running_loop().create_task(self._drive(run), name=f"run:{run_id}")
        return run

    def reply(self, run_id: str, session_key: str, text: str, origin: str) -> Run:
        """A run that answers without a model (slash commands): start, final, end."""
        run = Run(run_id, canonical_session_key(session_key), "", origin, now_ms())
        run.started_ms = run.created_ms
        self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_ms})
        run.text = text
        self._agent(run, "assistant", {"text": text, "delta": text})
        self._finish(run, RunStatus.OK)
        return run

    def abort(self, session_key: str, run_id: str | None = None, reason: str = "aborted by user") -> list[str]:
        """Cancel matching runs now; each publishes ``chat`` aborted as it unwinds."""
        aborted = []
        for run in self.active(session_key):
            if run_id is not None and run.run_id != run_id:
                continue
            if run.task is not None and not run.task.done() and run.abort_reason is None:
                run.abort_reason = reason
                run.task.cancel()
                aborted.append(run.run_id)
        return aborted

    async def wait(self, run_id: str, timeout_s: float) -> Run | None:
        run = self.get(run_id)
        if run is None:
            return None
        if not run.done.is_set():
            try:
                async with asyncio.timeout(timeout_s):
                    await run.done.wait()
            except TimeoutError:
                pass
        return run

    async def shutdown(self) -> None:
        """Stop every run; they are recorded as errors, since nobody asked to abort them."""
        tasks = [r.task for r in self.runs.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        # A run that already published its outcome may still be storing it: let that finish,
        # or the store keeps it "running" and the next start reports it as an error.
        tasks += [r.task for r in self.finished.values() if r.task is not None and not r.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the run task --------------------------------------------------------
    async def _drive(self, run: Run) -> None:
        key = run.session_key
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                await self._execute(run)
        except asyncio.CancelledError:
            if run.status not in TERMINAL:
                await self._end_cancelled(run)
        except TimeoutError:
            await self._end_error(run, f"run timed out after {self.run_timeout_s:g}s")
        except Exception as exc:  # the provider failed: the run fails, the gateway goes on
            log.warning("run %s failed: %s", run.run_id, exc)
            await self._end_error(run, str(exc) or type(exc).__name__)
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                del self._locks[key]

    async def _execute(self, run: Run) -> None:
        history = await self.store.history(run.session_key, HISTORY_TURNS)
        run.status = RunStatus.RUNNING
        run.started_ms = now_ms()
        await self.store.append_message(
            MessageRecord(run.session_key, "user", run.message, run.started_ms, run.run_id, run.message_meta)
        )
        await self.store.put_run(run.record())
        self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_ms})
        turn = Turn(
            run_id=run.run_id,
            session_key=run.session_key,
            message=run.message,
            history=[ChatMessage(m.role, m.text) for m in history if m.role in ("user", "assistant")],  # type: ignore[arg-type]
            tools=self.tools(run) if run.tools is None else run.tools,
        )
        events = (run.runtime or self.runtime()).run_turn(turn)
        # aclosing: an abort closes the provider's HTTP stream now, not at garbage collection.
        async with asyncio.timeout(self.run_timeout_s), contextlib.aclosing(events):  # type: ignore[type-var]
            async for ev in events:
                self._publish_event(run, ev)
        await self._end(run, RunStatus.OK, answer_meta={})

    def _publish_event(self, run: Run, ev: object) -> None:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return
            run.text += ev.text
            self._agent(run, "assistant", {"text": run.text, "delta": ev.text}, droppable=True)
            self._chat_delta_soon(run)
        elif isinstance(ev, Thinking):
            run.thinking += ev.text
            self._agent(run, "thinking", {"text": run.thinking, "delta": ev.text}, droppable=True)
        elif isinstance(ev, ToolCallStart):
            self._agent(
                run,
                "tool",
                {"phase": "start", "name": ev.name, "toolCallId": ev.tool_call_id, "args": dict(ev.args)},
            )
        elif isinstance(ev, ToolCallResult):
            self._agent(
                run,
                "tool",
                {
                    "phase": "result",
                    "name": ev.name,
                    "toolCallId": ev.tool_call_id,
                    "result": ev.result,
                    "isError": ev.is_error,
                },
            )

    async def _end(
        self, run: Run, status: RunStatus, *, error: str | None = None, answer_meta: dict[str, Any] | None = None
    ) -> None:
        """Store the answer and the outcome first, then tell everyone.

        Recording before publishing means a client that reacts to the final
        event (``status``, ``chat.history``, a restart) already sees it stored.
        """
        if answer_meta is not None and run.text:
            await self.store.append_message(
                MessageRecord(run.session_key, "assistant", run.text, now_ms(), run.run_id, answer_meta)
            )
        run.status = status
        run.ended_ms = now_ms()
        if error is not None:
            run.error = error
        await self.store.put_run(run.record())
        self._finish(run, status)

    async def _end_cancelled(self, run: Run) -> None:
        if run.abort_reason is not None:
            meta = {"aborted": True} if run.started_ms is not None else None
            await self._end(run, RunStatus.ABORTED, answer_meta=meta)
        else:
            await self._end(run, RunStatus.ERROR, error="gateway stopped during the run")

    async def _end_error(self, run: Run, message: str) -> None:
        await self._end(run, RunStatus.ERROR, error=message)

    def _finish(self, run: Run, status: RunStatus) -> None:
        """Publish the terminal events, record the outcome, and release waiters."""
        if run._chat_timer is not None:
            run._chat_timer.cancel()
        run.status = status
        if run.ended_ms is None:
            run.ended_ms = now_ms()
        base = {"runId": run.run_id, **event_session_fields(run.session_key)}
        if status is RunStatus.OK:
            self._agent(run, "lifecycle", lifecycle_end(run.started_ms, run.ended_ms, aborted=False))
            self._chat(
                run, {**base, "state": "final", "message": _message(run.text, run.ended_ms), "stopReason": "stop"}
            )
        elif status is RunStatus.ABORTED:
            self._agent(run, "lifecycle", lifecycle_end(run.started_ms, run.ended_ms, aborted=True))
            self._chat(
                run, {**base, "state": "aborted", "message": _message(run.text, run.ended_ms), "stopReason": "aborted"}
            )
        else:
            self._agent(run, "lifecycle", {"phase": "error", "endedAt": run.ended_ms, "error": run.error})
            self._chat(run, {**base, "state": "error", "errorMessage": run.error or "run failed"})
        self.totals[status] += 1
        self.runs.pop(run.run_id, None)
        self.finished[run.run_id] = run
        while len(self.finished) > self._keep_finished:
            self.finished.pop(next(iter(self.finished)))
        run.done.set()
        for callback in run.on_done:
            try:
                callback(run)
            except Exception:
                log.exception("run completion callback failed")

    # -- publishing ----------------------------------------------------------
    def _agent(self, run: Run, stream: str, data: dict[str, Any], *, droppable: bool = False) -> None:
        payload = {
            "runId": run.run_id,
            "stream": stream,
            "ts": now_ms(),
            "data": data,
            **event_session_fields(run.session_key),
        }
        self.bus.publish(run_stream(run.run_id), "agent", payload, droppable=droppable)

    def _chat(self, run: Run, payload: dict[str, Any], *, droppable: bool = False) -> None:
        self.bus.publish(run_stream(run.run_id), "chat", payload, droppable=droppable)

    def _chat_delta_soon(self, run: Run) -> None:
        if run._chat_timer is not None:
            return
        wait = run._chat_at + self.chat_delta_interval_ms / 1000 - time.monotonic()
        if wait <= 0:
            self._chat_delta(run)
        else:
            run._chat_timer = asyncio.get_running_loop().call_later(wait, self._chat_delta, run)

    def _chat_delta(self, run: Run) -> None:
        run._chat_timer = None
        if run.status in TERMINAL or run.text == run._chat_sent:
            return
        delta = run.text[len(run._chat_sent) :]
        run._chat_sent = run.text
        run._chat_at = time.monotonic()
        self._chat(
            run,
            {
                "runId": run.run_id,
                **event_session_fields(run.session_key),
                "state": "delta",
                "message": _message(run.text, now_ms()),
                "deltaText": delta,
            },
            droppable=True,
        )
