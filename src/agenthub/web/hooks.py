"""Inbound webhooks: ``POST /hooks/<name>`` starts an agent run or wakes the agent (OpenClaw's hooks).

``/hooks/agent`` runs one agent turn (``{message, name?, sessionKey?, deliver?,
channel?, to?, timeoutSeconds?}``), ``/hooks/wake`` queues a system event
(``{text, mode?}``), and each ``hooks.mappings`` entry maps ``/hooks/<name>`` to
one of the two, with ``{{payload.field}}`` templates. Runs go through
``node.runs.start`` like any client's, so every operator sees them live.

The door, in order: POST only (405), the shared per-IP auth-failure limiter
(429 with ``Retry-After``), the hook token (401; ``Authorization: Bearer`` or
``x-openclaw-token``, never the query string; compared as SHA-256 digests in
constant time, and each failure counts against the IP like a failed
``connect``), the hook name (404), JSON only (415), the body limit
``hooks.max_body_bytes`` (413), then the payload itself (400).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.auth import hash_secret, secret_matches
from ..core.outbound import OutboundError
from ..core.runs import Run, RunStatus, now_ms
from ..protocol import _json
from .edge import Edge

__all__ = [
    "TOKEN_ENV",
    "HookAccepted",
    "HookAgentBody",
    "HookWakeBody",
    "mount",
    "render_template",
    "resolve_token_hash",
]

log = logging.getLogger(__name__)

TOKEN_ENV = "AGENTHUB_HOOKS_TOKEN"
MAX_TEXT = 200_000
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_.\[\]-]+)\s*\}\}")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def resolve_token_hash(hooks: Any, env: Mapping[str, str]) -> str | None:
    """The SHA-256 of the hook token: ``token_sha256``, ``token``, ``token_file`` or ``AGENTHUB_HOOKS_TOKEN``."""
    if hooks.token_sha256:
        return str(hooks.token_sha256)
    if hooks.token is not None:
        return hash_secret(hooks.token.get_secret_value())
    if hooks.token_file is not None:
        token = Path(hooks.token_file).expanduser().read_text().strip()
        return hash_secret(token) if token else None
    token = env.get(TOKEN_ENV, "").strip()
    return hash_secret(token) if token else None


_Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class HookAgentBody(BaseModel):
    """``POST /hooks/agent``: one agent turn (OpenClaw's fields; others are ignored)."""

    model_config = ConfigDict(extra="allow")
    message: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
    name: _Text | None = None
    sessionKey: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    idempotencyKey: _Text | None = None
    deliver: bool | None = None
    channel: _Text | None = None
    to: _Text | None = None
    timeoutSeconds: Annotated[float, Field(gt=0)] | None = None


class HookWakeBody(BaseModel):
    """``POST /hooks/wake``: queue a system event, run it now or at the next heartbeat."""

    model_config = ConfigDict(extra="allow")
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
    mode: Literal["now", "next-heartbeat"] = "now"
    sessionKey: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class HookAccepted(BaseModel):
    """A hook's answer: the run it started (``agent``), or what was queued (``wake``)."""

    model_config = ConfigDict(extra="allow")
    ok: bool
    runId: str | None = None
    sessionKey: str | None = None


def _validated(model: type[BaseModel], payload: Mapping[str, Any]) -> None:
    """The direct hooks' bodies go through their models first: one typed 400 naming the field."""
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _HookError(400, f"{where}: {first['msg']}") from None


def _lookup(root: Mapping[str, Any], expr: str) -> Any:
    value: Any = root
    for name, index in _PART.findall(expr):
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            value = value.get(name) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def render_template(template: str, scope: Mapping[str, Any]) -> str:
    """OpenClaw's hook templates: ``{{payload.a.b[0]}}`` (or ``{{a.b}}``), ``{{headers.x}}``, ``{{now}}``.

    Missing values render as empty strings, objects as JSON.
    """

    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        head = expr.split(".", 1)[0].split("[", 1)[0]
        value = _lookup(scope, expr) if head in scope else _lookup(scope.get("payload") or {}, expr)
        if value is None:
            return ""
        return value if isinstance(value, str) else _json.dumps_str(value)

    return _TEMPLATE.sub(one, template)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status, headers=headers)


class _HookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _text(payload: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise _HookError(400, f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > MAX_TEXT:
        raise _HookError(400, f"{key} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


class _Hooks:
    def __init__(self, edge: Edge, token_hash: str) -> None:
        self.edge = edge
        self.node = edge.node
        self.settings = edge.settings.hooks
        self.token_hash = token_hash
        self.mappings = {m.name: m for m in self.settings.mappings}
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _error(405, "POST only", {"Allow": "POST"})
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        name = request.match_info["name"]
        if name not in ("agent", "wake") and name not in self.mappings:
            return _error(404, f"no hook named {name!r}")
        if request.content_type != "application/json":
            return _error(415, "send JSON with Content-Type: application/json")
        try:
            payload = await self._read_json(request)
            if name == "agent":
                _validated(HookAgentBody, payload)
                return web.json_response(await self._agent(name, payload, payload))
            if name == "wake":
                _validated(HookWakeBody, payload)
                return web.json_response(self._wake(payload, payload))
            return web.json_response(await self._mapped(request, name, payload))
        except _HookError as exc:
            return _error(exc.status, str(exc))

    def _authenticate(self, request: web.Request) -> web.Response | None:
        ip = request.remote or ""
        limiter = self.node.auth.limiter
        now = now_ms()
        if limiter is not None and (wait := limiter.retry_after(ip, now)):
            return _error(429, "too many failed authentications", {"Retry-After": str(math.ceil(wait / 1000))})
        if "token" in request.query:
            return _error(400, "send the hook token in a header, not the query string")
        auth = request.headers.get("Authorization", "")
        presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        presented = presented or request.headers.get("x-openclaw-token", "").strip()
        if secret_matches(presented or None, self.token_hash):
            if limiter is not None:
                limiter.succeeded(ip)
            return None
        if limiter is not None and (lockout := limiter.failed(ip, now)):
            return _error(429, "too many failed authentications", {"Retry-After": str(math.ceil(lockout / 1000))})
        return _error(401, "hook token missing or wrong", {"WWW-Authenticate": "Bearer"})

    async def _read_json(self, request: web.Request) -> dict[str, Any]:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _HookError(413, f"body larger than {limit} bytes (hooks.max_body_bytes)")
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise _HookError(413, f"body larger than {limit} bytes (hooks.max_body_bytes)")
        try:
            payload = _json.loads(bytes(body))
        except _json.JSONDecodeError:
            raise _HookError(400, "body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _HookError(400, "body must be a JSON object")
        return payload

    def _session(self, requested: Any, fixed: str | None = None) -> str:
        if requested is not None:
            if not self.settings.allow_request_session_key:
                raise _HookError(400, "sessionKey is not allowed (hooks.allow_request_session_key is off)")
            if not isinstance(requested, str) or not 0 < len(requested) <= 512:
                raise _HookError(400, "sessionKey must be a string of 1 to 512 characters")
            return requested
        return fixed or self.settings.default_session_key or f"hook:{uuid.uuid4()}"

    async def _agent(
        self, hook: str, payload: Mapping[str, Any], fields: Mapping[str, Any], fixed_session: str | None = None
    ) -> dict[str, Any]:
        message = _text(fields, "message", required=True)
        assert message is not None
        label = _text(fields, "name") or "Hook"
        deliver = fields.get("deliver") is True
        channel, to = _text(fields, "channel"), _text(fields, "to")
        if deliver and bool(channel) != bool(to):
            raise _HookError(400, "delivery needs both channel and to")
        timeout = fields.get("timeoutSeconds")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise _HookError(400, "timeoutSeconds must be a positive number")
        idem = _text(fields, "idempotencyKey")
        store = self.node.store
        key = f"hook:{idem}" if idem else None
        if key is not None:
            stored = await store.get_idempotent(key, now_ms() - self.node.limits.idempotency_ttl_s * 1000)
            if stored is not None:
                replay: dict[str, Any] = stored[1]
                return replay
        session = self._session(payload.get("sessionKey") if fixed_session is None else None, fixed_session)
        run_id = str(uuid.uuid4())
        run = await self.node.runs.start(
            run_id,
            session,
            message,
            f"hook:{hook}",
            message_meta={"hook": label},
            timeout_s=self.node.runs.timeout_for(float(timeout)) if timeout is not None else None,
        )
        result = {"ok": True, "runId": run_id, "sessionKey": session}
        if key is not None:
            await store.put_idempotent(key, "hook", result, now_ms())
        if deliver and channel and to:
            run.on_done.append(lambda r: self._spawn(self._deliver(r, channel, to)))
        log.info("hook %s started run %s in %s", hook, run_id, session)
        return result

    def _wake(self, payload: Mapping[str, Any], fields: Mapping[str, Any], mode: str | None = None) -> dict[str, Any]:
        scheduler = self.edge.scheduler
        if scheduler is None:
            raise _HookError(503, "the scheduler is not running")
        text = _text(fields, "text", required=True)
        assert text is not None
        mode = mode or fields.get("mode") or "now"
        if mode not in ("now", "next-heartbeat"):
            raise _HookError(400, "mode must be now or next-heartbeat")
        requested = payload.get("sessionKey")
        session = self._session(requested) if requested is not None else None
        result: dict[str, Any] = scheduler.wake(text, mode, session)
        return result

    async def _mapped(self, request: web.Request, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        mapping = self.mappings[name]
        scope = {
            "payload": payload,
            "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS},
            "query": dict(request.query),
            "path": name,
            "now": datetime.now(UTC).isoformat(),
        }
        if mapping.action == "wake":
            text = render_template(mapping.text_template, scope) if mapping.text_template else payload.get("text")
            return self._wake({}, {"text": text}, mapping.wake_mode)
        message = render_template(mapping.message_template, scope) if mapping.message_template else None
        fields = {
            "message": message if message is not None else payload.get("message"),
            "name": name,
            "deliver": mapping.deliver,
            "channel": mapping.channel,
            "to": mapping.to,
        }
        return await self._agent(name, payload, fields, mapping.session_key or self._session(None))

    async def _deliver(self, run: Run, channel: str, to: str) -> None:
        if run.status is not RunStatus.OK or not run.text:
            return
        outbound = self.node.outbound
        try:
            if outbound is None or not outbound.has_channel(channel):
                raise OutboundError(f"channel not configured: {channel}")
            await outbound.deliver(channel, to, run.text)
        except OutboundError as exc:
            log.warning("hook run %s: delivery to %s failed: %s", run.run_id, channel, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_SECRET_HEADERS = frozenset({"authorization", "x-openclaw-token", "cookie"})


def mount(edge: Edge) -> None:
    """Add ``POST <hooks.path>/<name>`` to the main listener when ``hooks.enabled``."""
    settings = edge.settings.hooks
    if not settings.enabled:
        return
    token_hash = edge.options.get("hooks.token_hash")
    if not isinstance(token_hash, str):
        raise RuntimeError("hooks are enabled but the composition root passed no hook token hash")
    hooks = _Hooks(edge, token_hash)
    edge.app.router.add_route("*", settings.path.rstrip("/") + "/{name}", hooks.handle)
