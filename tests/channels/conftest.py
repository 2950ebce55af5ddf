"""Fixtures for the channel tests: the platform fakes, and gateways configured against them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import GatewayProc
from ..e2e._util import Client
from ._fakes import FakeDiscord, FakeSlack, FakeTelegram

TELEGRAM_TOKEN = "123456:TEST-telegram-token-abcdef"
SLACK_TOKEN = "xoxb-test-slack-token-0001"
SLACK_SECRET = "slack-signing-secret-0001"
DISCORD_TOKEN = "discord.test.token.0001"


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(TELEGRAM_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(SLACK_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def discord_fake() -> Iterator[FakeDiscord]:
    fake = FakeDiscord(DISCORD_TOKEN)
    fake.start()
    yield fake
    fake.stop()


def telegram_section(fake: FakeTelegram, **over: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "bot_token": TELEGRAM_TOKEN,
        "api_base_url": fake.url,
        "poll_timeout_s": 2,
        "edit_interval_ms": 250,
        "typing_interval_ms": 1000,
        "allow_from": [42],
    }
    section.update(over)
    return section


async def start_gateway(make_gateway: Any, channels: dict[str, Any], *args: str, **kw: Any) -> GatewayProc:
    """A gateway with this ``channels`` section (started off the event loop: the fakes keep serving)."""
    config = {"demo": {"word_delay_ms": 30}, "channels": {"retry_initial_s": 0.2, "retry_max_s": 2, **channels}}
    config.update(kw.pop("config", {}))
    gw: GatewayProc = await asyncio.to_thread(make_gateway, *args, config=config, **kw)
    return gw


async def account_status(c: Client, channel: str, account: str = "default") -> dict[str, Any]:
    status = await c.ok("channels.status", {"channel": channel})
    accounts = {a["accountId"]: a for a in status["channelAccounts"][channel]}
    return accounts[account]


async def until_status(
    c: Client, channel: str, pred: Any, timeout: float = 20, account: str = "default"
) -> dict[str, Any]:
    """Poll ``channels.status`` until the account's snapshot satisfies ``pred`` (the state has no event)."""
    async with asyncio.timeout(timeout):
        while True:
            snapshot = await account_status(c, channel, account)
            if pred(snapshot):
                return snapshot
            await asyncio.sleep(0.1)


def chat_events(c: Client, session_key: str, state: str | None = None) -> list[dict[str, Any]]:
    return [
        f["payload"]
        for f in c.events
        if f.get("event") == "chat"
        and f["payload"].get("sessionKey") == session_key
        and (state is None or f["payload"].get("state") == state)
    ]
