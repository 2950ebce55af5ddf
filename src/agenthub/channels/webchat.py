"""WebChat: the gateway's own browser chat, shown in ``channels.status`` like the other channels.

Its "platform" is the gateway itself: browser clients (agenthub's Control UI
and OpenClaw's, both connect with ``client.mode: "webchat"``) chat over the
native protocol, so there is nothing to connect and it is always running. A
delivery to WebChat (cron, heartbeats) posts into a session's transcript:
``to`` is the session key.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core.api.channels import WEBCHAT, post_to_session
from ..core.connection import ConnState
from ..core.node import Node
from ..core.runs import now_ms
from .base import AccountStatus, HttpRoute, InboundHandler
from .options import AccessOptions

__all__ = ["WEBCHAT_MODE", "WebChatChannel", "WebChatConversation"]

WEBCHAT_MODE = "webchat"  # ConnectParams.client.mode of browser chat clients


class WebChatConversation:
    """A session transcript: each message is a new assistant message (there is nothing to edit)."""

    max_chars = 200_000

    def __init__(self, node: Node, session_key: str) -> None:
        self.node = node
        self.session_key = session_key

    async def send(self, text: str) -> str:
        run_id = f"webchat-{secrets.token_hex(8)}"
        message_id, _ = await post_to_session(
            self.node, self.session_key, text, run_id, "channel:webchat", {"source": "channel", "channel": WEBCHAT}
        )
        return str(message_id)

    async def edit(self, message_id: str, text: str) -> None:
        await self.send(text)

    async def typing(self) -> None:
        return None


class WebChatChannel:
    id = WEBCHAT
    label = "WebChat"
    account_id = "default"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.access = AccessOptions(dm_policy="open")
        self._status = AccountStatus(
            channel=self.id, account_id=self.account_id, configured=True, running=True, mode="gateway"
        )
        self._status.last_start_at = now_ms()

    @property
    def status(self) -> AccountStatus:
        """Counted when asked: the open browser-chat connections, and when the last one came."""
        clients = [
            c
            for c in self.node.connections.values()
            if c.state is ConnState.OPEN and c.principal is not None and c.principal.client_mode == WEBCHAT_MODE
        ]
        status = self._status
        status.connected = bool(clients)
        status.extra = {"connectedClients": len(clients)}
        if clients:
            status.last_connected_at = max(c.connected_at_ms for c in clients)
        return status

    def bind(self, handler: InboundHandler) -> None:
        return None  # browser messages arrive as chat.send, not through the router

    async def connect(self) -> None:
        return None

    async def serve(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        return {"ok": True}

    def conversation(self, to: str, thread_id: str | None = None) -> WebChatConversation:
        return WebChatConversation(self.node, to)

    def routes(self) -> list[HttpRoute]:
        return []
