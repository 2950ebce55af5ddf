"""The canvas host: a folder of agent-editable HTML on its own port, with live reload over WebSocket.

``GET /<path>`` serves the canvas folder (``index.html`` for a directory); HTML
pages get a small script that opens ``/__agenthub__/ws`` and reloads the page
when a file changes. The folder is watched with ``watchfiles`` (OS file events,
or polling with ``canvas.force_polling``); each batch of changes is pushed to
every open page as ``{"type":"reload","paths":[...]}``.

Bind and auth rules are the main port's: without a gateway secret the host
binds loopback only (the composition root refuses otherwise); with a token (or
password) every request needs it, as ``?token=`` (which also sets an HttpOnly
cookie, so the page's own requests and its live-reload socket carry it) or that
cookie. Failures count against the IP in the gateway's shared auth limiter.
WebSocket upgrades pass the same Origin check as the main port, against the
canvas port's own origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import watchfiles
from aiohttp import WSMsgType, web

from ..agents.canvas import confined_path
from ..core.auth import secret_matches
from ..core.ratelimit import AuthLimiter
from ..core.runs import now_ms
from ..protocol import _json

__all__ = ["COOKIE", "LIVE_RELOAD_PATH", "CanvasAuth", "CanvasHost"]

log = logging.getLogger(__name__)

COOKIE = "agenthub_canvas"
LIVE_RELOAD_PATH = "/__agenthub__/ws"
SCRIPT_PATH = "/__agenthub__/live-reload.js"
_SCRIPT = """(() => {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/__agenthub__/ws";
  let retry = 500;
  function connect() {
    const ws = new WebSocket(url);
    ws.onopen = () => { retry = 500; };
    ws.onmessage = (e) => { try { if (JSON.parse(e.data).type === "reload") location.reload(); } catch (_) {} };
    ws.onclose = () => { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); };
  }
  connect();
})();
"""
_TAG = f'<script src="{SCRIPT_PATH}"></script>'.encode()
_HTML = (".html", ".htm")


@dataclass(slots=True)
class CanvasAuth:
    """The main port's credential: a token or password hash, a trusted proxy's identity, or none (loopback)."""

    secret_hash: str | None = None
    identify: Callable[[web.Request], str | None] | None = None
    limiter: AuthLimiter | None = None

    def cookie_value(self) -> str:
        """Derived from the secret's hash, so the cookie is not the gateway secret itself."""
        assert self.secret_hash is not None
        return hmac.new(self.secret_hash.encode(), b"agenthub-canvas-cookie", hashlib.sha256).hexdigest()


class CanvasHost:
    def __init__(
        self,
        root: Path,
        auth: CanvasAuth,
        *,
        max_file_bytes: int,
        max_live_clients: int,
        force_polling: bool = False,
        poll_delay_ms: int = 300,
    ) -> None:
        self.root = root
        self.auth = auth
        self.max_file_bytes = max_file_bytes
        self.max_live_clients = max_live_clients
        self.force_polling = force_polling
        self.poll_delay_ms = poll_delay_ms
        self.clients: dict[web.WebSocketResponse, asyncio.Task[None] | None] = {}
        self.pushed = 0
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------
    def application(self, middlewares: list[object]) -> web.Application:
        app = web.Application(middlewares=middlewares)  # type: ignore[arg-type]
        app.router.add_get(SCRIPT_PATH, self._script)
        app.router.add_get(LIVE_RELOAD_PATH, self._live)
        app.router.add_get("/{path:.*}", self._file)
        return app

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="canvas-watch")

    async def stop(self) -> None:
        self._stop.set()
        for ws in list(self.clients):
            await ws.close()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)

    # -- auth ------------------------------------------------------------------
    def _refuse(self, request: web.Request) -> web.Response | None:
        auth = self.auth
        if auth.identify is not None:
            return None if auth.identify(request) else web.Response(status=401, text="proxy identity missing\n")
        if auth.secret_hash is None:
            return None
        ip = request.remote or ""
        now = now_ms()
        limiter = auth.limiter
        if limiter is not None and (wait := limiter.retry_after(ip, now)):
            return web.Response(status=429, text="too many failed attempts\n", headers=_retry(wait))
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), auth.cookie_value().encode()):
            return None
        if secret_matches(request.query.get("token") or None, auth.secret_hash):
            if limiter is not None:
                limiter.succeeded(ip)
            return None
        if limiter is not None and (lockout := limiter.failed(ip, now)):
            return web.Response(status=429, text="too many failed attempts\n", headers=_retry(lockout))
        return web.Response(status=401, text="canvas: token required (?token=)\n")

    def _remember(self, request: web.Request, response: web.StreamResponse) -> None:
        """A request that came in with ``?token=`` gets the cookie for the page's later requests."""
        if self.auth.secret_hash is not None and "token" in request.query:
            response.set_cookie(COOKIE, self.auth.cookie_value(), httponly=True, samesite="Strict", path="/")

    # -- routes ----------------------------------------------------------------
    async def _script(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        return web.Response(text=_SCRIPT, content_type="application/javascript", headers={"Cache-Control": "no-cache"})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        target = confined_path(self.root, unquote(request.match_info["path"]))
        if target is not None and target.is_dir():
            target = target / "index.html"
        if target is None or not target.is_file():
            return web.Response(status=404, text="not found\n")
        size = target.stat().st_size
        if size > self.max_file_bytes:
            return web.Response(status=413, text="file larger than canvas.max_file_bytes\n")
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        response: web.StreamResponse
        if target.suffix.lower() in _HTML:
            body = await asyncio.to_thread(target.read_bytes)
            response = web.Response(body=_inject(body), content_type="text/html", charset="utf-8", headers=headers)
        else:
            response = web.FileResponse(target, headers=headers)
        self._remember(request, response)
        return response

    async def _live(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        if len(self.clients) >= self.max_live_clients:
            return web.Response(status=503, text="too many live-reload sockets (canvas.max_live_clients)\n")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        await ws.prepare(request)
        self.clients[ws] = None
        try:
            await ws.send_str(_json.dumps_str({"type": "hello"}))
            async for msg in ws:  # the page sends nothing; read until it closes
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.clients.pop(ws, None)
        return ws

    # -- watching --------------------------------------------------------------
    async def _watch(self) -> None:
        root = self.root.resolve()
        try:
            async for changes in watchfiles.awatch(
                root,
                watch_filter=_visible,
                debounce=100,
                step=50,
                stop_event=self._stop,
                force_polling=self.force_polling,
                poll_delay_ms=self.poll_delay_ms,
            ):
                paths = sorted({_rel(root, p) for _, p in changes})
                self.push({"type": "reload", "paths": paths[:100]})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("canvas watcher stopped")

    def push(self, message: dict[str, object]) -> None:
        """Send to every open page without awaiting any; a page still busy with the last push skips this one."""
        text = _json.dumps_str(message)
        loop = asyncio.get_running_loop()
        for ws, busy in list(self.clients.items()):
            if ws.closed or (busy is not None and not busy.done()):
                continue
            self.clients[ws] = loop.create_task(ws.send_str(text))
        self.pushed += 1


def _visible(change: watchfiles.Change, path: str) -> bool:
    return not Path(path).name.startswith(".")


def _rel(root: Path, path: str) -> str:
    try:
        return "/" + Path(path).relative_to(root).as_posix()
    except ValueError:
        return "/" + Path(path).name


def _inject(html: bytes) -> bytes:
    at = html.lower().rfind(b"</body>")
    return html + _TAG if at < 0 else html[:at] + _TAG + html[at:]


def _retry(ms: int) -> dict[str, str]:
    return {"Retry-After": str(math.ceil(ms / 1000))}
