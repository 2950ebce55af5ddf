"""Agent runs: lifecycle, streaming, abort, timeouts, and one run at a time per session.

A run is a task that drives an ``AgentRuntime`` and publishes what it yields on
the bus stream ``run:<runId>``, as ``agent`` events (every step) and ``chat``
events (the assistant message so far, at most one delta per
``chat_delta_interval_ms``). Core events use the native payload shapes as the
canonical model; other dialects translate from them at the edge.

Numbering (OpenClaw's). A run's ``agent`` events carry ``seq`` 1, 2, ..., n
with no gap: the run counts them, and that count is also the position of the
event on the run's bus stream. A ``chat`` event carries the seq of the agent
event it derives from (a delta: the last ``assistant`` event; a final, aborted
or error event: the closing ``lifecycle`` event) and is *attached* to it on
the stream (see ``core.bus``): it is published after that agent event and
before the next one, because a pending chat delta is flushed before any
non-assistant agent event. So at most one chat event shares an agent seq.

Replay. ``agent.replay {afterSeq: N}`` returns every event published after
agent event N: the chat event derived from N (if any), then agent events N+1,
N+2, ... with their chat events. A client that saw agent events up to A and
chat events up to C asks with ``afterSeq = A`` and drops replayed chat events
whose seq is at most C (and agent events at most A): each event is then seen
exactly once (the SDK's ``run_agent`` and the UI do this).

Ordering. A run started or answered by a request is *launched* only after the
response to that request is written (``launch=False``, then ``launch(run)``
from ``Call.after_response``), so no event of a run overtakes its ``res``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..protocol._json import wire_safe
from ..protocol.errors import ErrorCode, RpcError
from .blocks import AnswerBlocks
from .bus import EventBus, Fold
from .cluster import Cluster, LocalCluster
from .observe import LOG_CONTEXT, NULL_OBSERVER, Observer, RunProbe, bind_log_context, new_request_id
from .runtime import (
    AgentRuntime,
    ChatMessage,
    ImagePart,
    TextDelta,
    Thinking,
    Tool,
    ToolCallResult,
    ToolCallStart,
    Turn,
)
from .sessions import canonical_session_key, event_session_fields, lifecycle_end
from .store import MessageRecord, RunRecord, Store

__all__ = ["TERMINAL", "Run", "RunManager", "RunStatus", "now_ms", "run_stream"]

log = logging.getLogger(__name__)
# Ending tasks of runs cancelled before they started: kept referenced until done.
_ENDING: set[asyncio.Task[None]] = set()

HISTORY_TURNS = 200  # transcript messages handed to the provider as context
# What a finished run costs beyond its text and error: the Run, its done Task and Event, its ids and
# log context (about 3.5 KiB, measured with tracemalloc in tests/core/test_runs.py: the byte bound is honest).
FINISHED_RUN_OVERHEAD = 4096


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _canonical_or_given(key: str) -> str:
    try:
        return canonical_session_key(key)
    except ValueError:  # a malformed key names no run
        return key


def run_stream(run_id: str) -> str:
    return f"run:{run_id}"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    ABORTED = "aborted"
    TIMEOUT = "timeout"


TERMINAL = frozenset({RunStatus.OK, RunStatus.ERROR, RunStatus.ABORTED, RunStatus.TIMEOUT})

# The cumulative texts of run events, kept by the bus as deltas (see core.bus.Fold).
ASSISTANT_TEXT = Fold("assistant", ("data", "text"), ("data", "delta"))
THINKING_TEXT = Fold("thinking", ("data", "text"), ("data", "delta"))
CHAT_TEXT = Fold("assistant", ("message", "content", 0, "text"))


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
    # The acknowledged message is not in the transcript yet: the run record carries it meanwhile.
    pending: bool = True
    images: Sequence[ImagePart] = ()  # sent with the message, to a runtime that takes images (not stored)
    # The caller's limit on the run's execution (agent ``timeout``, chat.send ``timeoutMs``), in seconds.
    timeout_s: float | None = None
    seq: int = 0  # the last agent event's seq
    blocks: AnswerBlocks | None = None  # tool calls kept for the stored answer (created on the first one)
    # The request that started the run (``<conn_id>/<frame id>``, or minted): every log line of the run has it.
    request_id: str = ""
    probe: RunProbe | None = None
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    on_done: list[Callable[[Run], None]] = field(default_factory=list)
    _chat_sent: str = ""
    _chat_at: float = 0.0
    _chat_timer: asyncio.TimerHandle | None = None
    _launch: Callable[[], None] | None = None  # what launch() does (start the task, or publish a reply)
    _kept_bytes: int = 0  # counted against RunManager.finished_runs_bytes while finished

    def result(self) -> dict[str, Any]:
        """The payload of the final ``agent`` response and of ``agent.wait``."""
        out: dict[str, Any] = {"runId": self.run_id, "status": self.status.value, "summary": self.text[:500]}
        if self.error:
            out["error"] = self.error
        if self.status is RunStatus.TIMEOUT:
            out["stopReason"] = "timeout"
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
            # Until the transcript has it, the acknowledged message lives with the run, so a
            # restart that finds the run interrupted can still store it (fail_interrupted_runs).
            message=self.message if self._holds_message else None,
            message_meta=(self.message_meta or None) if self._holds_message else None,
        )

    @property
    def _holds_message(self) -> bool:
        return self.pending and self.status not in TERMINAL


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
        max_message_chars: int = 100_000,
        cluster: Cluster | None = None,
        transcript_blocks_chars: int = 4_000,
        finished_runs: int = 1_000,
        finished_runs_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.bus = bus
        # The other gateway processes (run ownership, forwarded aborts); alone: LocalCluster.
        self.cluster: Cluster = cluster or LocalCluster()
        # Backends found unreachable by their probes (the database): name -> why. New runs wait.
        self.unavailable: dict[str, str] = {}
        self.store = store
        self.runtime = runtime
        self.tools = tools
        self.chat_delta_interval_ms = chat_delta_interval_ms
        self.run_timeout_s = run_timeout_s
        self.max_message_chars = max_message_chars
        # Thinking and tool calls stored with an answer, each up to this many characters (see core.blocks).
        self.transcript_blocks_chars = transcript_blocks_chars
        self.runs: dict[str, Run] = {}
        self.finished: dict[str, Run] = {}
        self.totals: dict[str, int] = {s.value: 0 for s in RunStatus}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        # Finished runs kept for retries, waits and replies, bounded in runs and in bytes (their
        # answers can be long): the oldest go first, and are then looked up in the store.
        self.finished_runs = finished_runs
        self.finished_runs_bytes = finished_runs_bytes
        self._finished_bytes = 0
        self.observer: Observer = NULL_OBSERVER  # run latency and spans (the composition root sets it)

    # -- public API ---------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id) or self.finished.get(run_id)

    def active(self, session_key: str | None = None) -> list[Run]:
        """Runs not yet ended, of one session (any form of its key) or of all."""
        if session_key is None:
            return list(self.runs.values())
        key = _canonical_or_given(session_key)
        return [r for r in self.runs.values() if r.session_key == key]

    def check_message(self, message: str) -> None:
        """Refuse a message longer than ``max_message_chars`` (every dialect's runs pass here).

        Raises:
            RpcError: INVALID_REQUEST with ``details.reason`` MESSAGE_TOO_LONG.
        """
        if len(message) > self.max_message_chars:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"invalid params: message: too long ({len(message)} characters, the limit is {self.max_message_chars})",
                details={"reason": "MESSAGE_TOO_LONG", "maxChars": self.max_message_chars},
            )

    def timeout_for(self, requested_s: float | None) -> float:
        """The run's limit: what the caller asked for (0 or None: no own limit), never past ``run_timeout_s``."""
        if not requested_s or requested_s <= 0:
            return self.run_timeout_s
        return min(requested_s, self.run_timeout_s)

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
        images: Sequence[ImagePart] = (),
        timeout_s: float | None = None,
        launch: bool = True,
    ) -> Run:
        """Accept a run; it starts when the session's previous run has ended.

        ``runtime`` and ``tools`` override the configured agent for this run only;
        ``owner`` is recorded with the run so per-user visibility survives a restart;
        ``timeout_s`` ends the run as timed out that long after it starts executing;
        ``images`` go with the message to the provider (the caller checks ``takes_images``).
        With ``launch=False`` nothing runs (or is published) until ``launch(run)``:
        a request handler launches after its response is written.

        Raises:
            RpcError: the message is too long (nothing is recorded).
        """
        session_key = canonical_session_key(session_key)
        self.check_message(message)
        self.check_available()
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
            images=tuple(images),
            timeout_s=self.timeout_for(timeout_s),
            request_id=LOG_CONTEXT.get().request_id or new_request_id(),
        )
        self.runs[run_id] = run
        try:
            await self.store.ensure_session(session_key, run.created_ms)
            await self.store.put_run(run.record())
            await self._own(run)
        except BaseException:
            # Not accepted (e.g. the disk is full): nothing may wait for a run that will never start.
            self.runs.pop(run_id, None)
            raise
        self.totals[RunStatus.QUEUED] += 1
        run.probe = self.observer.run(run_id, session_key, origin, run.request_id)
        log.info("run %s accepted (session=%s origin=%s)", run_id, session_key, origin)

        def create_task() -> None:
            run.task = task = asyncio.get_running_loop().create_task(self._drive(run), name=f"run:{run_id}")
            task.add_done_callback(lambda t: self._cancelled_before_start(run, t))

        run._launch = create_task
        if launch:
            self.launch(run)
        return run

    async def reply(self, run_id: str, session_key: str, text: str, origin: str, *, launch: bool = True) -> Run:
        """A run that answers without a model (slash commands, ``send``): start, text, final.

        The outcome is stored before anything is published, so a retry after a
        restart reports it; ``launch`` as in ``start``.
        """
        self.check_available()
        run = Run(run_id, canonical_session_key(session_key), "", origin, now_ms())
        run.started_ms = run.ended_ms = run.created_ms
        run.text = text
        run.status = RunStatus.OK
        await self.store.put_run(run.record())

        def publish() -> None:
            self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_ms})
            self._agent(run, "assistant", {"text": text, "delta": text}, fold=ASSISTANT_TEXT)
            self._finish(run, RunStatus.OK)

        run._launch = publish
        if launch:
            self.launch(run)
        return run

    def check_available(self) -> None:
        """Refuse new work while a shared backend is unreachable (degraded mode).

        Raises:
            RpcError: UNAVAILABLE, retryable, saying which backend is down.
        """
        why = self.cluster.unavailable() or next(iter(self.unavailable.values()), None)
        if why is not None:
            raise RpcError(
                ErrorCode.UNAVAILABLE, f"cannot start a run now: {why}", details={"reason": "DEGRADED"}, retryable=True
            )

    async def _own(self, run: Run) -> None:
        """Record this process as the run's owner, so aborts and waits sent elsewhere reach it."""
        try:
            await self.cluster.run_started(run.run_id, run.session_key)
        except RpcError:
            raise
        except Exception as exc:  # the backend went away between the check and now
            raise RpcError(
                ErrorCode.UNAVAILABLE, f"cannot start a run now: {exc}", details={"reason": "DEGRADED"}, retryable=True
            ) from None

    def launch(self, run: Run) -> None:
        """Start a run accepted with ``launch=False`` (a no-op the second time)."""
        launch, run._launch = run._launch, None
        if launch is not None:
            launch()

    async def abort(self, session_key: str, run_id: str | None = None, reason: str = "aborted by user") -> list[str]:
        """Cancel matching runs, here and (forwarded to their owners) in every other gateway process.

        Each publishes ``chat`` aborted as it unwinds. Returns the run ids aborted.
        """
        aborted = self.abort_local(session_key, run_id, reason)
        if run_id is None or not aborted:
            aborted += [r for r in await self.cluster.abort_remote(session_key, run_id, reason) if r not in aborted]
        return aborted

    def abort_local(self, session_key: str, run_id: str | None = None, reason: str = "aborted by user") -> list[str]:
        """Cancel the matching runs this process executes (what a forwarded abort does at the owner)."""
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
    def _cancelled_before_start(self, run: Run, task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never enters ``_drive``: end its run here."""
        if task.cancelled() and run.status not in TERMINAL:
            end = asyncio.get_running_loop().create_task(self._end_cancelled(run), name=f"run-end:{run.run_id}")
            _ENDING.add(end)
            end.add_done_callback(_ENDING.discard)

    async def _drive(self, run: Run) -> None:
        bind_log_context(request_id=run.request_id, run_id=run.run_id)  # this task's log lines name the run
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
        if run.probe is not None:
            run.probe.started()
        await self._store_message(run)
        await self.store.put_run(run.record())
        self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_ms})
        turn = Turn(
            run_id=run.run_id,
            session_key=run.session_key,
            message=run.message,
            history=[ChatMessage(m.role, m.text) for m in history if m.role in ("user", "assistant")],  # type: ignore[arg-type]
            tools=self.tools(run) if run.tools is None else run.tools,
            images=run.images,
        )
        events = (run.runtime or self.runtime()).run_turn(turn)
        limit = run.timeout_s or self.run_timeout_s
        deadline = asyncio.timeout(limit)
        try:
            # aclosing: an abort closes the provider's HTTP stream now, not at garbage collection.
            async with deadline, contextlib.aclosing(events):  # type: ignore[type-var]
                async for ev in events:
                    self._publish_event(run, ev)
        except TimeoutError:
            if not deadline.expired():  # the provider's own timeout: an ordinary failure
                raise
            await self._end(
                run, RunStatus.TIMEOUT, error=f"run timed out after {limit:g}s", answer_meta={"timedOut": True}
            )
            return
        await self._end(run, RunStatus.OK, answer_meta={})

    async def _store_message(self, run: Run) -> None:
        """Append the run's user message to its transcript (once)."""
        if run.pending:
            ts = run.started_ms or run.created_ms
            await self.store.append_message(
                MessageRecord(run.session_key, "user", run.message, ts, run.run_id, run.message_meta)
            )
            run.pending = False

    def _publish_event(self, run: Run, ev: object) -> None:
        if isinstance(ev, TextDelta):
            if not ev.text:
                return
            run.text += ev.text
            self._agent(run, "assistant", {"text": run.text, "delta": ev.text}, droppable=True, fold=ASSISTANT_TEXT)
            self._chat_delta_soon(run)
        elif isinstance(ev, Thinking):
            if not ev.text:
                return
            run.thinking += ev.text
            self._agent(run, "thinking", {"text": run.thinking, "delta": ev.text}, droppable=True, fold=THINKING_TEXT)
        elif isinstance(ev, ToolCallStart):
            args = wire_safe(dict(ev.args))
            self._blocks(run).tool_start(ev.tool_call_id, ev.name, args)
            self._agent(
                run,
                "tool",
                {"phase": "start", "name": ev.name, "toolCallId": ev.tool_call_id, "args": args},
            )
        elif isinstance(ev, ToolCallResult):
            result = wire_safe(ev.result)
            self._blocks(run).tool_result(ev.tool_call_id, ev.name, result, ev.is_error)
            self._agent(
                run,
                "tool",
                {
                    "phase": "result",
                    "name": ev.name,
                    "toolCallId": ev.tool_call_id,
                    "result": result,
                    "isError": ev.is_error,
                },
            )

    def _blocks(self, run: Run) -> AnswerBlocks:
        if run.blocks is None:
            run.blocks = AnswerBlocks(self.transcript_blocks_chars)
        return run.blocks

    def _answer_meta(self, run: Run, meta: dict[str, Any]) -> dict[str, Any]:
        """The stored answer's ``meta``: the outcome flags, plus the turn's thinking and tool calls."""
        blocks = run.blocks or AnswerBlocks(self.transcript_blocks_chars)
        return {**meta, **blocks.meta(run.thinking)}

    async def _end(
        self, run: Run, status: RunStatus, *, error: str | None = None, answer_meta: dict[str, Any] | None = None
    ) -> None:
        """Store the answer and the outcome first, then tell everyone.

        Recording before publishing means a client that reacts to the final
        event (``status``, ``chat.history``, a restart) already sees it stored.
        """
        try:
            if not (status is RunStatus.ABORTED and run.started_ms is None):  # not withdrawn before it began
                await self._store_message(run)  # e.g. the gateway stops while the run waits its turn
            if answer_meta is not None and run.text:
                meta = self._answer_meta(run, answer_meta)
                await self.store.append_message(
                    MessageRecord(run.session_key, "assistant", run.text, now_ms(), run.run_id, meta)
                )
            run.status = status
            run.ended_ms = now_ms()
            if error is not None:
                run.error = error
            await self.store.put_run(run.record())
        except Exception as exc:
            # The outcome cannot be stored (disk full, database gone): the run still ends for everyone
            # watching, as an error that says so; the next start marks the stored "running" row as an error.
            log.error("run %s: could not store its outcome: %s", run.run_id, exc)
            run.error = f"the run ended ({error or status.value}) but its outcome could not be stored: {exc}"
            status = RunStatus.ERROR
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
        if run._chat_timer is not None:  # the final event carries the whole text
            run._chat_timer.cancel()
            run._chat_timer = None
        run.status = status
        if run.ended_ms is None:
            run.ended_ms = now_ms()
        base = {"runId": run.run_id, **event_session_fields(run.session_key)}
        if status is RunStatus.OK:
            self._agent(run, "lifecycle", lifecycle_end(run.started_ms, run.ended_ms, aborted=False))
            self._chat(
                run,
                {**base, "state": "final", "message": _message(run.text, run.ended_ms), "stopReason": "stop"},
                fold=CHAT_TEXT,
            )
        elif status is RunStatus.ABORTED:
            self._agent(run, "lifecycle", lifecycle_end(run.started_ms, run.ended_ms, aborted=True))
            self._chat(
                run,
                {**base, "state": "aborted", "message": _message(run.text, run.ended_ms), "stopReason": "aborted"},
                fold=CHAT_TEXT,
            )
        elif status is RunStatus.TIMEOUT:
            # OpenClaw's shape: a definitive lifecycle error with stopReason "timeout", and a chat
            # error of kind "timeout" that still carries the partial answer.
            error = run.error or "run timed out"
            self._agent(
                run, "lifecycle", {"phase": "error", "endedAt": run.ended_ms, "error": error, "stopReason": "timeout"}
            )
            chat = {**base, "state": "error", "errorMessage": error, "errorKind": "timeout", "stopReason": "timeout"}
            if run.text:
                self._chat(run, {**chat, "message": _message(run.text, run.ended_ms)}, fold=CHAT_TEXT)
            else:
                self._chat(run, chat)
        else:
            self._agent(run, "lifecycle", {"phase": "error", "endedAt": run.ended_ms, "error": run.error})
            self._chat(run, {**base, "state": "error", "errorMessage": run.error or "run failed"})
        self.totals[status] += 1
        if run.probe is not None:
            probe, run.probe = run.probe, None
            probe.end(status.value, run.error)
            log.info(
                "run %s ended: %s in %d ms%s",
                run.run_id,
                status.value,
                run.ended_ms - (run.started_ms or run.created_ms),
                f" ({run.error})" if run.error else "",
                extra={"run_id": run.run_id, "request_id": run.request_id},
            )
        self.runs.pop(run.run_id, None)
        # A finished run is kept for retries, waits and replies; what only the turn needed goes.
        run.message = run.thinking = ""
        run.message_meta = {}
        run.images = ()
        run.blocks = None
        run.runtime = None
        run.tools = None
        self._keep_finished(run)
        self.cluster.run_ended(run.run_id, run.session_key)
        # Waiters (a final ``res``, agent.wait) are released once the terminal events reached
        # this process's clients: with a cluster bus they go out after a round trip.
        self.bus.when_delivered(lambda: self._release(run))

    @staticmethod
    def _finished_size(run: Run) -> int:
        """What a finished run holds, in bytes: its answer can be megabytes, so a count alone bounds nothing."""
        return FINISHED_RUN_OVERHEAD + sys.getsizeof(run.text) + (sys.getsizeof(run.error) if run.error else 0)

    def _keep_finished(self, run: Run) -> None:
        """Keep ``run`` among the finished ones; the oldest go past ``finished_runs`` or ``finished_runs_bytes``.

        The run just ended is always kept (its waiters are released after this).
        """
        old = self.finished.pop(run.run_id, None)
        if old is not None:
            self._finished_bytes -= old._kept_bytes
        run._kept_bytes = self._finished_size(run)
        self.finished[run.run_id] = run
        self._finished_bytes += run._kept_bytes
        while len(self.finished) > 1 and (
            len(self.finished) > self.finished_runs or self._finished_bytes > self.finished_runs_bytes
        ):
            oldest = self.finished.pop(next(iter(self.finished)))
            self._finished_bytes -= oldest._kept_bytes

    def finished_bytes(self) -> int:
        """The finished runs' bytes, as counted against ``finished_runs_bytes``."""
        return self._finished_bytes

    @staticmethod
    def _release(run: Run) -> None:
        run.done.set()
        callbacks, run.on_done = run.on_done, []
        for callback in callbacks:
            try:
                callback(run)
            except Exception:
                log.exception("run completion callback failed")

    async def fail_orphaned(self, run_id: str, reason: str) -> bool:
        """End a run whose gateway process died: stored as an error, and its stream told so.

        Called by whichever process noticed the death first (``Cluster``). The
        closing events continue the dead owner's numbering on the shared bus,
        so a client following the run from another process sees it end.
        Returns False when the run had already ended.
        """
        ended = now_ms()
        record = await self.store.fail_run(run_id, reason, ended)
        if record is None:
            return False
        pos = await self.bus.position(run_stream(run_id))
        seq = (pos.seq if pos is not None else 0) + 1
        fields = event_session_fields(record.session_key)
        agent = {
            "runId": run_id,
            "stream": "lifecycle",
            "ts": ended,
            "data": {"phase": "error", "endedAt": ended, "error": reason},
            **fields,
        }
        self.bus.publish(run_stream(run_id), "agent", agent, seq=seq)
        chat = {"runId": run_id, **fields, "state": "error", "errorMessage": reason}
        self.bus.publish(run_stream(run_id), "chat", chat, seq=seq)
        self.totals[RunStatus.ERROR] += 1
        return True

    # -- publishing ----------------------------------------------------------
    def _agent(
        self, run: Run, stream: str, data: dict[str, Any], *, droppable: bool = False, fold: Fold | None = None
    ) -> None:
        """Publish the run's next agent event (seq n+1); a pending chat delta goes out first."""
        if stream != "assistant" and run._chat_timer is not None:
            run._chat_timer.cancel()
            self._chat_delta(run)
        run.seq += 1
        payload = {
            "runId": run.run_id,
            "stream": stream,
            "ts": now_ms(),
            "data": data,
            **event_session_fields(run.session_key),
        }
        t0 = time.perf_counter()
        self.bus.publish(run_stream(run.run_id), "agent", payload, droppable=droppable, seq=run.seq, fold=fold)
        self.observer.bus_published(time.perf_counter() - t0)

    def _chat(self, run: Run, payload: dict[str, Any], *, droppable: bool = False, fold: Fold | None = None) -> None:
        """Publish a chat event derived from the latest agent event (it carries that event's seq)."""
        t0 = time.perf_counter()
        self.bus.publish(run_stream(run.run_id), "chat", payload, droppable=droppable, seq=run.seq, fold=fold)
        self.observer.bus_published(time.perf_counter() - t0)

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
            fold=CHAT_TEXT,
        )
