"""Discord end to end: discord.py against a local gateway WebSocket and REST server.

discord.py takes its REST base from ``discord.http.Route.BASE`` and its gateway
from ``DiscordWebSocket.DEFAULT_GATEWAY``; the channel points both at the fake
(``api_base_url``, ``gateway_url``). The fake performs the gateway handshake
(HELLO op 10, IDENTIFY op 2 with the token and intents, READY dispatch,
heartbeats) and dispatches MESSAGE_CREATE; replies come back over REST
(``POST`` then ``PATCH /channels/{id}/messages``, ``POST /channels/{id}/typing``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..e2e._util import Client, expected_answer
from ._fakes import FakeDiscord
from .conftest import DISCORD_TOKEN, account_status, chat_events, start_gateway, until_status

MESSAGE_CONTENT_INTENT = 1 << 15


@pytest.fixture(autouse=True)
async def fresh(discord_fake: FakeDiscord) -> AsyncIterator[None]:
    await discord_fake.reset()
    yield


def discord_section(fake: FakeDiscord, **over: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "bot_token": DISCORD_TOKEN,
        "api_base_url": fake.api,
        "gateway_url": fake.gateway,
        "edit_interval_ms": 200,
        "allow_from": ["42"],
    }
    section.update(over)
    return section


async def test_dm_and_mention_stream_by_edits(make_gateway: Any, discord_fake: FakeDiscord) -> None:
    gw = await start_gateway(make_gateway, {"discord": discord_section(discord_fake)})
    fake = discord_fake
    await fake.wait(lambda: fake.sessions, timeout=30)
    identify = fake.sessions[-1].identify
    assert identify["token"] == DISCORD_TOKEN and identify["intents"] & MESSAGE_CONTENT_INTENT
    async with Client.open_connected(gw.url) as op:
        await until_status(op, "discord", lambda a: a["connected"], timeout=30)

        answer = await expected_answer("hello discord")
        await fake.post_message("3001", "42", "hello discord")
        await fake.wait(lambda: fake.channel_texts("3001") == [answer], timeout=30)
        key = "agent:main:discord:direct:42"
        await op.until(lambda f: bool(chat_events(op, key, "final")), timeout=30)
        posts = fake.calls("POST /channels/3001/messages")
        edits = [r for r in fake.requests if r.method.startswith("PATCH /channels/3001/messages/")]
        assert len(posts) == 1 and len(edits) >= 2
        assert fake.calls("POST /channels/3001/typing")

        # In a guild channel: only a mention is answered, in that channel's session.
        await fake.post_message("4001", "42", "just chatting", guild_id="77")
        mention = f"<@{FakeDiscord.BOT['id']}> what is 6*7"
        await fake.post_message("4001", "42", mention, guild_id="77", mention_bot=True)
        answer = await expected_answer("what is 6*7")
        await fake.wait(lambda: fake.channel_texts("4001") == [answer], timeout=30)
        history = await op.ok("chat.history", {"sessionKey": "agent:main:discord:channel:4001"})
        assert [m["content"][0]["text"] for m in history["messages"]] == ["what is 6*7", answer]

        sent = await op.ok("send", {"channel": "discord", "to": "5001", "message": "ping", "idempotencyKey": "dc-1"})
        assert sent["channelId"] == "5001" and fake.channel_texts("5001") == ["ping"]
        status = await account_status(op, "discord")
        assert status["running"] and status["bot"] == {"username": "hubbot"} and status["mode"] == "gateway"
    assert DISCORD_TOKEN not in gw.output()


async def test_bad_token_is_reported_and_retried(make_gateway: Any, discord_fake: FakeDiscord) -> None:
    gw = await start_gateway(make_gateway, {"discord": discord_section(discord_fake, bot_token="not.the.token")})
    async with Client.open_connected(gw.url) as op:
        snapshot = await until_status(op, "discord", lambda a: a["reconnectAttempts"] >= 2, timeout=30)
        assert snapshot["running"] is False and "Improper token" in snapshot["lastError"]
        assert (await op.ok("health"))["ok"] is True
    assert len(discord_fake.calls("GET /users/@me")) >= 2  # retried with backoff
