"""What the core tells the outside about its work: RPCs, runs and bus publishes, and the log context.

The core knows no metrics or tracing library. It calls an ``Observer`` at the
start and end of each RPC and each run, and when it publishes to the bus; the
composition root plugs in Prometheus histograms (``web.metrics``) and, with the
``otel`` extra, OpenTelemetry spans (``agenthub.tracing``). The default observer
does nothing, so a core used on its own (tests, embedding) pays one attribute
read per call.

The log context (``LOG_CONTEXT``) carries the request id, run id and connection
id of the work in progress; ``agenthub.log`` adds them to every log line, so a
request id follows a run from the ``agent`` request through every line its run
logs. A run keeps the request id of the call that started it (or mints one when
a dialect, the scheduler or a channel started it), and its task runs under it.
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Protocol

__all__ = [
    "LOG_CONTEXT",
    "NULL_OBSERVER",
    "LogContext",
    "Observer",
    "Observers",
    "RpcProbe",
    "RunProbe",
    "bind_log_context",
    "new_request_id",
]


@dataclass(frozen=True, slots=True)
class LogContext:
    """Ids of the work in progress, added to each log line (empty strings are left out)."""

    request_id: str = ""
    run_id: str = ""
    conn_id: str = ""


# LogContext is frozen: sharing one default instance is safe.
LOG_CONTEXT: ContextVar[LogContext] = ContextVar("agenthub_log_context", default=LogContext())  # noqa: B039


def new_request_id() -> str:
    """A short random id for work no client request started (a dialect's message, a cron job)."""
    return secrets.token_hex(6)


def bind_log_context(**ids: str) -> LogContext:
    """Set some ids in the current task's log context; returns the new context."""
    ctx = replace(LOG_CONTEXT.get(), **ids)
    LOG_CONTEXT.set(ctx)
    return ctx


class RpcProbe(Protocol):
    """One RPC being observed; ``end`` is called exactly once."""

    def end(self, ok: bool, error_code: str | None) -> None: ...


class RunProbe(Protocol):
    """One run being observed: ``started`` when it begins executing (maybe never), ``end`` once."""

    def started(self) -> None: ...

    def end(self, status: str, error: str | None) -> None: ...


class Observer(Protocol):
    """Receives the core's RPC, run and bus observations (metrics, traces)."""

    def rpc(self, method: str, conn_id: str, request_id: str) -> RpcProbe: ...

    def run(self, run_id: str, session_key: str, origin: str, request_id: str) -> RunProbe: ...

    def bus_published(self, seconds: float) -> None: ...


class _NullProbe:
    __slots__ = ()

    def started(self) -> None:
        pass

    def end(self, *args: object) -> None:
        pass


_NULL_PROBE = _NullProbe()


class _NullObserver:
    """Observes nothing: the default until the composition root plugs something in."""

    def rpc(self, method: str, conn_id: str, request_id: str) -> RpcProbe:
        return _NULL_PROBE

    def run(self, run_id: str, session_key: str, origin: str, request_id: str) -> RunProbe:
        return _NULL_PROBE

    def bus_published(self, seconds: float) -> None:
        pass


NULL_OBSERVER: Observer = _NullObserver()


class _ManyRpc:
    __slots__ = ("_probes",)

    def __init__(self, probes: list[RpcProbe]) -> None:
        self._probes = probes

    def end(self, ok: bool, error_code: str | None) -> None:
        for probe in self._probes:
            probe.end(ok, error_code)


class _ManyRun:
    __slots__ = ("_probes",)

    def __init__(self, probes: list[RunProbe]) -> None:
        self._probes = probes

    def started(self) -> None:
        for probe in self._probes:
            probe.started()

    def end(self, status: str, error: str | None) -> None:
        for probe in self._probes:
            probe.end(status, error)


class Observers:
    """Several observers as one (metrics and traces side by side)."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def rpc(self, method: str, conn_id: str, request_id: str) -> RpcProbe:
        return _ManyRpc([o.rpc(method, conn_id, request_id) for o in self.observers])

    def run(self, run_id: str, session_key: str, origin: str, request_id: str) -> RunProbe:
        return _ManyRun([o.run(run_id, session_key, origin, request_id) for o in self.observers])

    def bus_published(self, seconds: float) -> None:
        for o in self.observers:
            o.bus_published(seconds)
