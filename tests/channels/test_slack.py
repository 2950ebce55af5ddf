"""Slack end to end: signed Events API requests to the gateway, slack-bolt, and a local Web API.

The test signs each ``event_callback`` envelope the way Slack does (``v0=`` +
HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the signing secret); the fake
answers ``auth.test``, ``chat.postMessage`` and ``chat.update`` as Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ..e2e._util import Client, expected_answer
from ._fakes import FakeSlack
from .conftest import SLACK_SECRET, SLACK_TOKEN, chat_events, start_gateway

_events = itertools.count(1)


@pytest.fixture(autouse=True)
async def fresh(slack: FakeSlack) -> AsyncIterator[None]:
    await slack.reset()
    yield


def slack_section(fake: FakeSlack, **over: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "bot_token": SLACK_TOKEN,
        "signing_secret": SLACK_SECRET,
        "api_base_url": f"{fake.url}/api/",
        "edit_interval_ms": 200,
        "allow_from": ["U42"],
    }
    section.update(over)
    return section


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope, as Slack posts it."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": {"event_ts": event["ts"], **event},
        "type": "event_callback",
        "event_id": f"Ev{next(_events):08d}",
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": "T0001", "user_id": FakeSlack.BOT_USER, "is_bot": True}],
        "is_ext_shared_channel": False,
    }


async def post_event(
    url: str, body: dict[str, Any], *, secret: str = SLACK_SECRET, timestamp: int | None = None
) -> tuple[int, str]:
    raw = json.dumps(body)
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{raw}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    async with aiohttp.ClientSession() as http, http.post(f"{url}/slack/events", data=raw, headers=headers) as res:
        return res.status, await res.text()


async def connected(fake: FakeSlack) -> None:
    await fake.wait(lambda: fake.calls("auth.test"))


async def test_dm_streams_by_chat_update_and_operators_see_it(make_gateway: Any, slack: FakeSlack) -> None:
    gw = await start_gateway(make_gateway, {"slack": slack_section(slack)})
    await connected(slack)
    key = "agent:main:slack:direct:u42"
    async with Client.open_connected(gw.url) as op:
        # Slack's handshake for a new request URL.
        status, text = await post_event(gw.http, {"type": "url_verification", "challenge": "chal-123", "token": "x"})
        assert status == 200 and "chal-123" in text
        answer = await expected_answer("hello from slack")
        event = {"type": "message", "channel": "D042", "user": "U42", "text": "hello from slack", "ts": "1.000001"}
        event["channel_type"] = "im"
        body = envelope(event)
        status, _ = await post_event(gw.http, body)
        assert status == 200
        status, _ = await post_event(gw.http, body)  # Slack's retry of the same event: handled once
        assert status == 200
        await slack.wait(lambda: [t for t in slack.channel_texts("D042") if t[2] == answer], timeout=30)
        await op.until(lambda f: bool(chat_events(op, key, "final")), timeout=30)
        texts = slack.channel_texts("D042")
        assert [t[2] for t in texts] == [answer] and texts[0][1] is None  # one top-level message
        posts, updates = slack.calls("chat.postMessage", channel="D042"), slack.calls("chat.update", channel="D042")
        assert len(posts) == 1 and len(updates) >= 2
        assert all(str(u.params["ts"]) == texts[0][0] for u in updates)
        assert len(chat_events(op, key, "final")) == 1
        history = await op.ok("chat.history", {"sessionKey": key})
        assert [m["content"][0]["text"] for m in history["messages"]] == ["hello from slack", answer]

        # A signature made with another secret is refused by bolt, and starts nothing.
        forged = envelope({**event, "text": "forged", "ts": "1.000009"})
        status, _ = await post_event(gw.http, forged, secret="not-the-secret")
        assert status == 401
        stale = envelope({**event, "text": "replayed", "ts": "1.000010"})
        status, _ = await post_event(gw.http, stale, timestamp=int(time.time()) - 3600)
        assert status == 401
        await asyncio.sleep(0.5)
        assert len((await op.ok("chat.history", {"sessionKey": key}))["messages"]) == 2


async def test_mentions_answer_in_their_thread_which_keeps_its_session(make_gateway: Any, slack: FakeSlack) -> None:
    gw = await start_gateway(make_gateway, {"slack": slack_section(slack)})
    await connected(slack)
    key = "agent:main:slack:channel:c0general:thread:2.000001"
    async with Client.open_connected(gw.url) as op:
        mention = f"<@{FakeSlack.BOT_USER}> what is 2+3"
        first = {"type": "app_mention", "channel": "C0GENERAL", "user": "U42", "text": mention, "ts": "2.000001"}
        # Slack also sends the channel message event for the same post: it must not start a second run.
        echo = {**first, "type": "message", "channel_type": "channel"}
        assert (await post_event(gw.http, envelope(echo)))[0] == 200
        assert (await post_event(gw.http, envelope(first)))[0] == 200
        answer = await expected_answer("what is 2+3")
        await slack.wait(lambda: [t for t in slack.channel_texts("C0GENERAL") if t[2] == answer], timeout=30)
        texts = slack.channel_texts("C0GENERAL")
        assert [(t[1], t[2]) for t in texts] == [("2.000001", answer)]  # replied in the thread of the mention
        await op.until(lambda f: bool(chat_events(op, key, "final")), timeout=30)

        follow = {
            "type": "app_mention",
            "channel": "C0GENERAL",
            "user": "U42",
            "text": f"<@{FakeSlack.BOT_USER}> and now times 4",
            "ts": "2.000050",
            "thread_ts": "2.000001",
        }
        assert (await post_event(gw.http, envelope(follow)))[0] == 200
        await op.until(lambda f: len(chat_events(op, key, "final")) == 2, timeout=30)
        history = await op.ok("chat.history", {"sessionKey": key})
        assert [m["content"][0]["text"] for m in history["messages"]][::2] == ["what is 2+3", "and now times 4"]
        assert all(t[1] == "2.000001" for t in slack.channel_texts("C0GENERAL"))


async def test_rate_limited_updates_wait_and_lose_nothing(make_gateway: Any, slack: FakeSlack) -> None:
    gw = await start_gateway(make_gateway, {"slack": slack_section(slack)})
    await connected(slack)
    await slack.rate_limit("chat.update", 1)
    async with Client.open_connected(gw.url):
        event = {"type": "message", "channel": "D043", "user": "U42", "text": "count on me", "ts": "3.000001"}
        event["channel_type"] = "im"
        assert (await post_event(gw.http, envelope(event)))[0] == 200
        answer = await expected_answer("count on me")
        await slack.wait(lambda: [t for t in slack.channel_texts("D043") if t[2] == answer], timeout=40)
    refused = [r for r in slack.calls("chat.update", channel="D043") if r.status == 429]
    assert len(refused) == 1
    later = [r for r in slack.requests if r.at > refused[0].at and r.params.get("channel") == "D043"]
    assert later and later[0].at - refused[0].at >= 0.9


async def test_send_posts_through_slack(make_gateway: Any, slack: FakeSlack) -> None:
    gw = await start_gateway(make_gateway, {"slack": slack_section(slack)})
    await connected(slack)
    async with Client.open_connected(gw.url) as op:
        sent = await op.ok(
            "send",
            {
                "channel": "slack",
                "to": "C0OPS",
                "message": "Build is green.",
                "idempotencyKey": "sl-1",
                "sessionKey": "ops",
            },
        )
        assert sent["channel"] == "slack" and sent["channelId"] == "C0OPS" and sent["messageId"]
        assert [t[2] for t in slack.channel_texts("C0OPS")] == ["Build is green."]
        history = await op.ok("chat.history", {"sessionKey": "ops"})
        assert history["messages"][-1]["meta"]["channel"] == "slack"
