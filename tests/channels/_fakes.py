"""Local servers speaking the platforms' wire formats: Telegram's Bot API, Slack's Web API, Discord's REST and gateway.

Each runs an aiohttp app on its own thread and event loop, so a test may block
(starting a gateway subprocess) without stalling the fake, and one fake can
serve a whole module. Tests talk to a fake through ``run`` (a coroutine run on
the fake's loop) and ``wait`` (until a predicate over the fake's state holds).
The JSON shapes are those of core.telegram.org/bots/api, api.slack.com/methods
and discord.com/developers/docs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from aiohttp import WSMsgType, web

T = TypeVar("T")


@dataclass
class Request:
    """One API call a fake received."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int = 200


class ThreadedServer:
    """An aiohttp application on 127.0.0.1, served from a thread with its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.requests: list[Request] = []
        self.changed: asyncio.Condition | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self.changed = asyncio.Condition()
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:  # long polls and gateway sockets still open
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` on the fake's loop and await its result from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fn(), self.loop))

    async def wait(self, pred: Callable[[], Any], timeout: float = 30) -> Any:
        """Wait until ``pred()`` (evaluated on the fake's loop at each change) is truthy; returns it."""

        async def waiter() -> Any:
            assert self.changed is not None
            async with asyncio.timeout(timeout), self.changed:
                while not (result := pred()):
                    await self.changed.wait()
                return result

        return await self.run(waiter)

    async def notify(self) -> None:
        assert self.changed is not None
        async with self.changed:
            self.changed.notify_all()

    async def reset(self) -> None:
        """Forget what earlier tests did (the fake serves a whole module)."""

        async def clear() -> None:
            self.clear()

        await self.run(clear)

    def clear(self) -> None:
        self.requests.clear()

    def calls(self, method: str, **match: Any) -> list[Request]:
        """Recorded calls of ``method`` whose params include ``match`` (compared as text)."""
        return [
            r
            for r in list(self.requests)
            if r.method == method and all(str(r.params.get(k)) == str(v) for k, v in match.items())
        ]


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters as the Bot API and Slack accept them: query string, JSON, or a form."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        else:
            params.update(dict(await request.post()))
    return params


# -- Telegram -----------------------------------------------------------------------------------


class FakeTelegram(ThreadedServer):
    """The Bot API endpoints python-telegram-bot uses: getMe, getUpdates (long poll), deleteWebhook,
    setWebhook, sendMessage, editMessageText, sendChatAction.

    ``push_text`` queues a user's message as an Update; ``rate_limit`` makes the
    next calls of a method answer 429 with ``parameters.retry_after``.
    """

    BOT: ClassVar[dict[str, Any]] = {
        "id": 777000,
        "is_bot": True,
        "first_name": "Hub",
        "username": "hub_test_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.texts: dict[tuple[int, int], str] = {}  # (chat id, message id) -> current text
        self.webhook: dict[str, Any] | None = None
        self.held = False  # hold_updates(): getUpdates answers nothing until release_updates()
        self._limits: dict[str, list[float]] = {}
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1000)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    def clear(self) -> None:
        super().clear()
        self.updates.clear()
        self.held = False
        self.webhook = None
        self._limits.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        entry = Request(method, params, time.monotonic())
        self.requests.append(entry)
        try:
            if request.match_info["token"] != self.token:
                entry.status = 401
                return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
            limits = self._limits.get(method)
            if limits:
                retry = limits.pop(0)
                entry.status = 429
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {retry:g}",
                        "parameters": {"retry_after": retry},
                    },
                    status=429,
                )
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                entry.status = 404
                return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
            result = await handler(params)
            return web.json_response({"ok": True, "result": result})
        finally:
            await self.notify()

    # Bot API methods ------------------------------------------------------------------------
    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return self.BOT

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = p
        return True

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = float(p.get("timeout") or 0)
        assert self.changed is not None
        try:
            async with asyncio.timeout(timeout), self.changed:
                while not self.updates or self.held:
                    await self.changed.wait()
        except TimeoutError:
            pass
        return [] if self.held else list(self.updates)

    def _message(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        return {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": self.BOT, "text": text}

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id, text = int(p["chat_id"]), str(p["text"])
        assert 0 < len(text) <= 4096, f"Bot API refuses text of {len(text)} characters"
        message_id = next(self._ids)
        self.texts[(chat_id, message_id)] = text
        return self._message(chat_id, message_id, text)

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        chat_id, message_id, text = int(p["chat_id"]), int(p["message_id"]), str(p["text"])
        assert 0 < len(text) <= 4096, f"Bot API refuses text of {len(text)} characters"
        assert (chat_id, message_id) in self.texts, "editing a message that was never sent"
        self.texts[(chat_id, message_id)] = text
        return self._message(chat_id, message_id, text)

    async def _m_sendChatAction(self, p: dict[str, Any]) -> Any:
        return True

    # test controls ----------------------------------------------------------------------------
    async def push_text(
        self, chat_id: int, user_id: int, text: str, *, first_name: str = "Ada", chat_type: str = "private"
    ) -> None:
        """A person sends ``text`` to the bot (as the next Update getUpdates returns)."""

        async def push() -> None:
            chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name
            else:
                chat["title"] = "Team"
            self.updates.append(
                {
                    "update_id": next(self._update_ids),
                    "message": {
                        "message_id": next(self._ids),
                        "date": int(time.time()),
                        "chat": chat,
                        "from": {"id": user_id, "is_bot": False, "first_name": first_name, "username": "ada"},
                        "text": text,
                    },
                }
            )
            await self.notify()

        await self.run(push)

    def update(self, chat_id: int, user_id: int, text: str) -> dict[str, Any]:
        """An Update as Telegram posts it to a webhook."""
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
                "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
                "text": text,
            },
        }

    async def rate_limit(self, method: str, *retry_after: float) -> None:
        async def set_limits() -> None:
            self._limits.setdefault(method, []).extend(retry_after)

        await self.run(set_limits)

    async def hold_updates(self) -> None:
        """Queue updates without handing them out, so the next getUpdates returns them in one batch."""
        self.held = True

    async def release_updates(self) -> None:
        self.held = False
        await self.notify()

    def chat_texts(self, chat_id: int) -> list[str]:
        """The texts of the bot's messages in a chat, oldest first."""
        return [text for (chat, _), text in sorted(self.texts.items()) if chat == chat_id]

    async def wait_chat(self, chat_id: int, pred: Callable[[list[str]], bool], timeout: float = 30) -> list[str]:
        result: list[str] = await self.wait(lambda: pred(texts := self.chat_texts(chat_id)) and texts, timeout)
        return result


# -- Slack ----------------------------------------------------------------------------------------


class FakeSlack(ThreadedServer):
    """Slack's Web API methods the channel uses: auth.test, chat.postMessage, chat.update."""

    BOT_USER = "UBOT01"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.texts: dict[tuple[str, str], str] = {}  # (channel, ts) -> current text
        self.threads: dict[tuple[str, str], str | None] = {}  # (channel, ts) -> thread_ts
        self._limits: dict[str, list[float]] = {}
        self._ts = itertools.count(100)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _params(request)
        entry = Request(method, params, time.monotonic())
        self.requests.append(entry)
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return web.json_response({"ok": False, "error": "invalid_auth"})
            limits = self._limits.get(method)
            if limits:
                retry = limits.pop(0)
                entry.status = 429
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": f"{retry:g}"}
                )
            if method == "auth.test":
                return web.json_response(
                    {
                        "ok": True,
                        "url": "https://agenthub-test.slack.com/",
                        "team": "Agenthub Test",
                        "user": "hubbot",
                        "team_id": "T0001",
                        "user_id": self.BOT_USER,
                        "bot_id": "B0001",
                    }
                )
            channel, text = str(params.get("channel")), str(params.get("text"))
            if method == "chat.postMessage":
                ts = f"1700000000.{next(self._ts):06d}"
                self.texts[(channel, ts)] = text
                self.threads[(channel, ts)] = params.get("thread_ts")
                message = {"type": "message", "text": text, "user": self.BOT_USER, "bot_id": "B0001", "ts": ts}
                return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})
            if method == "chat.update":
                ts = str(params.get("ts"))
                if (channel, ts) not in self.texts:
                    return web.json_response({"ok": False, "error": "message_not_found"})
                self.texts[(channel, ts)] = text
                return web.json_response({"ok": True, "channel": channel, "ts": ts, "text": text})
            return web.json_response({"ok": False, "error": "unknown_method"})
        finally:
            await self.notify()

    async def rate_limit(self, method: str, *retry_after: float) -> None:
        async def set_limits() -> None:
            self._limits.setdefault(method, []).extend(retry_after)

        await self.run(set_limits)

    def channel_texts(self, channel: str) -> list[tuple[str, str | None, str]]:
        """(ts, thread_ts, text) of the bot's messages in a channel, oldest first."""
        return [(ts, self.threads[(c, ts)], text) for (c, ts), text in sorted(self.texts.items()) if c == channel]


# -- Discord --------------------------------------------------------------------------------------


@dataclass
class _GatewaySession:
    ws: web.WebSocketResponse
    identify: dict[str, Any] = field(default_factory=dict)
    seq: int = 1


class FakeDiscord(ThreadedServer):
    """Discord's REST (``/api/v10``: users/@me, channel messages, typing) and its gateway WebSocket
    (``/gateway``: HELLO op 10, IDENTIFY op 2, READY, heartbeats op 1/11, MESSAGE_CREATE dispatch).
    """

    BOT: ClassVar[dict[str, Any]] = {
        "id": "900000000000000001",
        "username": "hubbot",
        "discriminator": "0",
        "avatar": None,
        "bot": True,
    }

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.texts: dict[tuple[str, str], str] = {}  # (channel id, message id) -> current text
        self.sessions: list[_GatewaySession] = []
        self._ids = itertools.count(5000)

    @property
    def api(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        return app

    def _message(self, channel_id: str, message_id: str, content: str, author: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": message_id,
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": "2026-11-30T12:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        """Discord answers ``Content-Type: application/json`` exactly (discord.py compares the header)."""
        return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        params = await request.json() if request.can_read_body and request.content_type == "application/json" else {}
        entry = Request(f"{request.method} {path}", params, time.monotonic())
        self.requests.append(entry)
        try:
            if request.headers.get("Authorization") != f"Bot {self.token}":
                entry.status = 401
                return self._json({"message": "401: Unauthorized", "code": 0}, status=401)
            parts = path.strip("/").split("/")
            if request.method == "GET" and path == "/users/@me":
                return self._json(self.BOT)
            if request.method == "GET" and path == "/oauth2/applications/@me":
                owner = {"id": "42", "username": "ada", "discriminator": "0", "avatar": None}
                return self._json(
                    {
                        "id": self.BOT["id"],
                        "name": "hubbot",
                        "icon": None,
                        "description": "",
                        "rpc_origins": [],
                        "bot_public": False,
                        "bot_require_code_grant": False,
                        "owner": owner,
                        "summary": "",
                        "verify_key": "0" * 64,
                        "team": None,
                        "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
                    }
                )
            if parts[0] == "channels" and len(parts) == 3 and parts[2] == "typing" and request.method == "POST":
                return web.Response(status=204)
            if parts[0] == "channels" and len(parts) == 3 and parts[2] == "messages" and request.method == "POST":
                message_id = str(next(self._ids))
                self.texts[(parts[1], message_id)] = params["content"]
                return self._json(self._message(parts[1], message_id, params["content"], self.BOT))
            if parts[0] == "channels" and len(parts) == 4 and request.method == "PATCH":
                key = (parts[1], parts[3])
                if key not in self.texts:
                    return self._json({"message": "Unknown Message", "code": 10008}, status=404)
                self.texts[key] = params["content"]
                return self._json(self._message(parts[1], parts[3], params["content"], self.BOT))
            entry.status = 404
            return self._json({"message": "404: Not Found", "code": 0}, status=404)
        finally:
            await self.notify()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _GatewaySession(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("op") == 1:
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif frame.get("op") == 2:
                session.identify = frame["d"]
                if frame["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                ready = {
                    "v": 10,
                    "user": self.BOT,
                    "guilds": [],
                    "session_id": "fake-session",
                    "resume_gateway_url": self.gateway,
                    "application": {"id": self.BOT["id"], "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                }
                await ws.send_json({"op": 0, "t": "READY", "s": session.seq, "d": ready})
                self.sessions.append(session)
                await self.notify()
        return ws

    async def post_message(
        self, channel_id: str, author_id: str, content: str, *, guild_id: str | None = None, mention_bot: bool = False
    ) -> None:
        """A person's message, dispatched as MESSAGE_CREATE on every identified gateway session."""

        async def send() -> None:
            author = {"id": author_id, "username": "ada", "discriminator": "0", "avatar": None, "global_name": "Ada"}
            data = self._message(channel_id, str(next(self._ids)), content, author)
            if guild_id is not None:
                data["guild_id"] = guild_id
            if mention_bot:
                data["mentions"] = [self.BOT]
            for session in self.sessions:
                session.seq += 1
                await session.ws.send_json({"op": 0, "t": "MESSAGE_CREATE", "s": session.seq, "d": data})

        await self.run(send)

    def channel_texts(self, channel_id: str) -> list[str]:
        return [text for (c, _), text in sorted(self.texts.items()) if c == channel_id]
