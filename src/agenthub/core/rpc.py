"""Method dispatch: one handler shape, wrapped by a pipeline built once at startup.

Every handler is ``async (call, params) -> payload``. The pipeline, outermost
first: unknown method, role, scope, params validation, idempotency, handler.
Handlers raise ``RpcError``; only ``Dispatcher.dispatch`` turns exceptions into
error shapes, and an unexpected exception reaches the client as UNAVAILABLE
with no detail (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ..protocol.errors import ErrorCode, RpcError
from ..protocol.frames import describe_validation_error
from ..protocol.methods import METHODS, MethodSpec
from .connection import Connection
from .observe import LOG_CONTEXT, NULL_OBSERVER, LogContext, Observer

__all__ = ["Call", "Dispatcher", "Handler"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Call:
    """One request in flight: who asked, and how to answer again later."""

    conn: Connection
    request_id: str
    method: str
    late_reply: Callable[[Any], None] = field(default=lambda payload: None)
    late_error: Callable[[RpcError], None] = field(default=lambda err: None)
    _after: list[Callable[[], None]] | None = field(default=None, repr=False)

    def after_response(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this call's response has been written (or could not be).

        What a handler sets off (a run's events, a second response) must not
        overtake the response that acknowledges the request.
        """
        if self._after is None:
            self._after = []
        self._after.append(fn)

    def responded(self) -> None:
        """The transport calls this right after writing the response; runs the ``after_response`` hooks."""
        hooks, self._after = self._after, None
        for fn in hooks or ():
            try:
                fn()
            except Exception:
                log.exception("after-response hook of %s failed", self.method)


Handler = Callable[[Call, Any], Awaitable[Any]]


class Dispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self.idempotency: Callable[[Call, Any, Handler], Awaitable[Any]] | None = None
        self.observer: Observer = NULL_OBSERVER  # RPC latency and spans (the composition root sets it)

    def register(self, method: str, handler: Handler) -> None:
        if method not in METHODS:
            raise AssertionError(f"{method} is not in protocol.methods.METHODS")
        self._handlers[method] = handler

    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def authorize(self, conn: Connection, method: str) -> MethodSpec:
        """Refuse ``method`` for this connection as a call of it would be refused (role, then scope).

        Handlers that act for another method (``chat.send "/reset"`` is ``sessions.reset``)
        call it with that method's name, so the one table in ``protocol.methods`` decides.
        """
        spec = METHODS.get(method)
        if spec is None or method not in self._handlers:
            raise RpcError(ErrorCode.INVALID_REQUEST, f"unknown method: {method}")
        principal = conn.principal
        role = principal.role if principal else ""
        if role != spec.role:
            raise RpcError(
                ErrorCode.FORBIDDEN,
                f"{method} is not allowed for role {role or 'unknown'}",
                details={"requiredRole": spec.role},
            )
        if not conn.has_scope(spec.scope):
            raise RpcError(
                ErrorCode.FORBIDDEN,
                f"missing scope: {spec.scope}",
                details={"code": "MISSING_SCOPE", "missingScope": spec.scope, "requiredScopes": [spec.scope]},
            )
        return spec

    def check(self, call: Call, params: Any) -> tuple[MethodSpec, BaseModel, Handler]:
        """Authorize and validate a call without running it."""
        spec = self.authorize(call.conn, call.method)
        handler = self._handlers[call.method]
        try:
            model = spec.params.model_validate(params if params is not None else {})
        except ValidationError as exc:
            raise RpcError(ErrorCode.INVALID_REQUEST, describe_validation_error(exc, "invalid params: ")) from None
        return spec, model, handler

    async def dispatch(self, call: Call, params: Any) -> tuple[bool, Any]:
        """Run one call; returns ``(ok, payload)`` or ``(False, error shape)``.

        The call runs under its request id (``<conn_id>/<frame id>``) in the log context, so
        every line it logs, and the run it starts, carries that id.
        """
        conn_id = call.conn.conn_id
        request_id = f"{conn_id}/{call.request_id[:64]}"
        token = LOG_CONTEXT.set(LogContext(request_id=request_id, conn_id=conn_id))
        probe = self.observer.rpc(call.method, conn_id, request_id)
        ok, code = False, None
        try:
            _, model, handler = self.check(call, params)
            if self.idempotency is not None and hasattr(model, "idempotencyKey"):
                result = await self.idempotency(call, model, handler)
            else:
                result = await handler(call, model)
            ok = True
            return True, result
        except RpcError as exc:
            code = exc.code.value
            return False, exc.to_shape()
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:
            log.exception("method %s failed", call.method)
            code = ErrorCode.UNAVAILABLE.value
            return False, RpcError(ErrorCode.UNAVAILABLE, "internal error", retryable=True).to_shape()
        finally:
            probe.end(ok, code)
            LOG_CONTEXT.reset(token)
