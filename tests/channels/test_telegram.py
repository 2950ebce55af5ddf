"""Telegram end to end: a real gateway, python-telegram-bot, and a local Bot API server.

The fake speaks the Bot API's JSON (``{"ok": true, "result": ...}``, Update and
Message objects); each test checks what reached "Telegram" (messages, edits,
429 handling) and what a native operator client saw of the same run.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agenthub.channels.conversations import BUSY_MESSAGE

from ..e2e._util import Client, expected_answer
from ._fakes import FakeTelegram
from .conftest import TELEGRAM_TOKEN, account_status, chat_events, start_gateway, telegram_section, until_status

KEY_42 = "agent:main:telegram:direct:42"


@pytest.fixture(autouse=True)
async def fresh(telegram: FakeTelegram) -> AsyncIterator[None]:
    await telegram.reset()
    yield


async def polling(fake: FakeTelegram) -> None:
    """The channel is connected once it long-polls (getMe and deleteWebhook came first)."""
    await fake.wait(lambda: fake.calls("getUpdates"))


async def test_reply_streams_by_edits_and_operators_see_the_run(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram)})
    await polling(telegram)
    assert telegram.calls("deleteWebhook") and telegram.calls("getMe")
    async with Client.open_connected(gw.url) as op:
        text = "tell me about streaming replies please"
        answer = await expected_answer(text)
        await telegram.push_text(42, 42, text)
        final = await op.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"].get("sessionKey") == KEY_42
                and f["payload"]["state"] == "final"
            ),
            timeout=30,
        )
        run_id = final["payload"]["runId"]
        texts = await telegram.wait_chat(42, lambda t: answer in t, timeout=30)
        assert texts == [answer]  # one message, edited to the whole answer

        sends = telegram.calls("sendMessage", chat_id=42)
        edits = telegram.calls("editMessageText", chat_id=42)
        assert len(sends) == 1 and len(edits) >= 2, (len(sends), len(edits))
        assert str(edits[-1].params["text"]) == answer
        # Each edit is a longer prefix of the answer: the reply grew in place.
        shown = [str(r.params["text"]) for r in [*sends, *edits]]
        assert all(answer.startswith(s.rstrip()) for s in shown), shown
        assert [len(s) for s in shown] == sorted(len(s) for s in shown)
        # Throttled: no two platform writes to the chat closer than edit_interval_ms (250 ms), give or take.
        times = [r.at for r in sorted([*sends, *edits], key=lambda r: r.at)]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2
        assert telegram.calls("sendChatAction", chat_id=42, action="typing")

        agent = [f["payload"] for f in op.events if f.get("event") == "agent" and f["payload"]["runId"] == run_id]
        assert agent and {p["stream"] for p in agent} >= {"lifecycle", "assistant"}
        assert final["payload"]["message"]["content"][0]["text"] == answer
        history = await op.ok("chat.history", {"sessionKey": KEY_42})
        assert [(m["role"], m["content"][0]["text"]) for m in history["messages"]] == [
            ("user", text),
            ("assistant", answer),
        ]
        assert history["messages"][0]["meta"]["channel"] == "telegram"

        status = await account_status(op, "telegram")
        assert status["running"] and status["connected"] and status["lastError"] is None
        assert status["lastInboundAt"] and status["lastOutboundAt"]
        assert status["bot"] == {"username": FakeTelegram.BOT["username"]}
    assert TELEGRAM_TOKEN not in gw.output()


async def test_429_retry_after_is_honoured_and_nothing_is_lost(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram, allow_from=[43])})
    await polling(telegram)
    await telegram.rate_limit("editMessageText", 1, 1)
    text = "please keep every word even when throttled"
    answer = await expected_answer(text)
    async with Client.open_connected(gw.url):
        await telegram.push_text(43, 43, text)
        await telegram.wait_chat(43, lambda t: t == [answer], timeout=40)
    limited = [r for r in telegram.calls("editMessageText", chat_id=43) if r.status == 429]
    assert len(limited) == 2
    for refused in limited:
        later = [r for r in telegram.requests if r.at > refused.at and str(r.params.get("chat_id")) == "43"]
        assert later, "nothing was retried after the 429"
        assert later[0].at - refused.at >= 0.9, "a request came before retry_after had passed"
    ok_edits = [r for r in telegram.calls("editMessageText", chat_id=43) if r.status == 200]
    assert str(ok_edits[-1].params["text"]) == answer


async def test_a_long_reply_is_split_at_4096_characters(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(
        make_gateway, {"telegram": telegram_section(telegram, allow_from=[44])}, config={"demo": {"word_delay_ms": 0}}
    )
    await polling(telegram)
    text = "tell me a long story [long:900]"  # the demo agent answers with 900 words, over 5,000 characters
    answer = await expected_answer(text)
    assert len(answer) > 4096
    async with Client.open_connected(gw.url):
        await telegram.push_text(44, 44, text)
        texts = await telegram.wait_chat(
            44, lambda t: len(t) == 2 and " ".join(t).replace("\n", " ").split() == answer.split(), timeout=40
        )
    assert all(0 < len(t) <= 4096 for t in texts)
    assert answer.startswith(texts[0]) and len(texts[0]) > 4000  # cut at the last space before 4,096


async def test_allow_list_refuses_others_silently(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(
        make_gateway, {"telegram": telegram_section(telegram, allow_from=[45], dm_policy="allowlist")}
    )
    await polling(telegram)
    async with Client.open_connected(gw.url) as op:
        await telegram.push_text(46, 46, "let me in")
        await telegram.push_text(45, 45, "hello from the list")
        answer = await expected_answer("hello from the list")
        await telegram.wait_chat(45, lambda t: t == [answer], timeout=30)
        await op.until(lambda f: bool(chat_events(op, "agent:main:telegram:direct:45", "final")), timeout=30)
        assert telegram.chat_texts(46) == []  # no pairing code under allowlist, and no answer
        assert chat_events(op, "agent:main:telegram:direct:46") == []
        assert (await op.ok("chat.history", {"sessionKey": "agent:main:telegram:direct:46"}))["messages"] == []


async def test_pairing_code_then_approval_by_method_and_by_cli(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram, allow_from=[])})
    await polling(telegram)
    async with Client.open_connected(gw.url) as op:
        # An unknown sender gets a code and no run.
        await telegram.push_text(501, 501, "hi bot")
        texts = await telegram.wait_chat(501, lambda t: bool(t), timeout=20)
        code = re.search(r"Pairing code: ([A-Z2-9]{8})", texts[0])
        assert code is not None, texts
        assert "agenthub channels approve telegram" in texts[0] and "501" in texts[0]
        await telegram.push_text(501, 501, "hi again")  # a pending request gets no second code
        await telegram.push_text(502, 502, "me too")
        await telegram.wait_chat(502, lambda t: bool(t), timeout=20)
        assert len(telegram.chat_texts(501)) == 1
        assert (await op.ok("chat.history", {"sessionKey": "agent:main:telegram:direct:501"}))["messages"] == []

        listed = await op.ok("channels.pairing.list", {"channel": "telegram"})
        assert {r["senderId"] for r in listed["requests"]} == {"501", "502"}
        assert listed["limits"] == {"pendingPerAccount": 3, "ttlMs": 3_600_000}
        request = next(r for r in listed["requests"] if r["senderId"] == "501")
        assert request["channel"] == "telegram" and request["accountId"] == "default"
        assert request["createdAt"].endswith("Z") and request["metadata"]["senderName"] == "Ada"

        # OpenClaw's method, by request id, with the requester notified.
        approved = await op.ok(
            "channels.pairing.approve",
            {"channel": "telegram", "accountId": "default", "requestId": request["requestId"], "notify": True},
        )
        assert approved == {
            "requestId": request["requestId"],
            "senderId": "501",
            "notification": "sent",
            "commandOwnerBootstrap": "not-requested",
        }
        await telegram.wait_chat(501, lambda t: len(t) == 2 and "approved" in t[1])
        again = await op.call("channels.pairing.approve", {"channel": "telegram", "requestId": request["requestId"]})
        assert again["error"]["code"] == "INVALID_REQUEST"

        # The approved sender's next message starts a run.
        answer = await expected_answer("now it works")
        await telegram.push_text(501, 501, "now it works")
        await telegram.wait_chat(501, lambda t: t[-1] == answer, timeout=30)

        # The other one is approved with the code, from the shell.
        other = re.search(r"Pairing code: ([A-Z2-9]{8})", telegram.chat_texts(502)[0])
        assert other is not None
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "agenthub", "channels", "approve", "telegram", other.group(1), "--url", gw.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr + cli.stdout
        assert "502" in cli.stdout
        bad = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "agenthub", "channels", "approve", "telegram", "ZZZZ2222", "--url", gw.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 1 and "no longer exists" in bad.stdout + bad.stderr
        thanks = await expected_answer("thanks")
        await telegram.push_text(502, 502, "thanks")
        await telegram.wait_chat(502, lambda t: t[-1] == thanks, timeout=30)
        assert (await op.ok("channels.pairing.list", {"channel": "telegram"}))["requests"] == []


async def test_slash_commands_in_the_chat(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram, allow_from=[47])})
    await polling(telegram)
    key = "agent:main:telegram:direct:47"
    async with Client.open_connected(gw.url) as op:
        await telegram.push_text(47, 47, "remember this")
        await op.until(lambda f: bool(chat_events(op, key, "final")), timeout=30)
        await telegram.push_text(47, 47, "/status")
        texts = await telegram.wait_chat(47, lambda t: any("session" in x and key in x for x in t), timeout=20)
        assert any("2 message(s)" in t for t in texts)

        # /stop mid-run: the run ends aborted, its message says so, and the command answers.
        await telegram.push_text(47, 47, "[long] keep talking")
        long_run = await op.until(
            lambda f: (
                f.get("event") == "agent"
                and f["payload"].get("sessionKey") == key
                and f["payload"]["stream"] == "assistant"
                and "keep talking" in f["payload"]["data"]["text"]
            ),
            timeout=20,
        )
        await telegram.push_text(47, 47, "/stop")
        await op.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"]["runId"] == long_run["payload"]["runId"]
                and f["payload"]["state"] == "aborted"
            ),
            timeout=20,
        )
        await telegram.wait_chat(47, lambda t: any(x.endswith("(stopped)") for x in t), timeout=20)
        await telegram.wait_chat(47, lambda t: "Stopped 1 run(s)." in t, timeout=20)

        # /stop in the same batch of updates as the message: aborted before its run ever started.
        await telegram.run(telegram.hold_updates)
        await telegram.push_text(47, 47, "[long] never mind")
        await telegram.push_text(47, 47, "/stop")
        await telegram.run(telegram.release_updates)
        await telegram.wait_chat(47, lambda t: t.count("Stopped 1 run(s).") == 2, timeout=20)
        await telegram.wait_chat(47, lambda t: t.count("(stopped)") == 1, timeout=20)

        await telegram.push_text(47, 47, "/reset")
        await telegram.wait_chat(47, lambda t: "Session reset." in t, timeout=20)
        assert (await op.ok("chat.history", {"sessionKey": key}))["messages"] == []


async def test_send_delivers_and_a_stopped_channel_fails_clearly(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram)})
    await polling(telegram)
    async with Client.open_connected(gw.url) as op:
        params = {"channel": "telegram", "to": "48", "message": "Deploy finished.", "idempotencyKey": "tg-send-1"}
        sent = await op.ok("send", params)
        assert sent["channel"] == "telegram" and sent["chatId"] == "48" and sent["runId"] == "tg-send-1"
        assert telegram.chat_texts(48) == ["Deploy finished."]
        assert await op.ok("send", params) == sent  # the idempotency key: delivered once
        assert telegram.chat_texts(48) == ["Deploy finished."]

        missing = await op.call("send", {"channel": "telegram", "message": "x", "idempotencyKey": "tg-send-2"})
        assert missing["error"]["code"] == "INVALID_REQUEST"
        unknown = await op.call("send", {"channel": "signal", "to": "1", "message": "x", "idempotencyKey": "tg-s3"})
        assert unknown["error"]["code"] == "INVALID_REQUEST" and "unknown channel" in unknown["error"]["message"]

        stopped = await op.ok("channels.stop", {"channel": "telegram"})
        assert stopped == {"channel": "telegram", "accountId": "default", "stopped": True}
        refused = await op.call("send", {**params, "idempotencyKey": "tg-send-4"})
        assert refused["error"]["code"] == "UNAVAILABLE" and "not running" in refused["error"]["message"]
        assert refused["error"]["details"]["reason"] == "CHANNEL_UNAVAILABLE"

        started = await op.ok("channels.start", {"channel": "telegram"})
        assert started["channel"] == "telegram" and started["outcome"] == {"status": "handed-off"}
        await until_status(op, "telegram", lambda a: a["running"])
        assert (await op.ok("send", {**params, "idempotencyKey": "tg-send-5"}))["chatId"] == "48"

        logout = await op.ok("channels.logout", {"channel": "telegram"})
        assert logout == {"channel": "telegram", "accountId": "default", "cleared": False, "loggedOut": True}
        after = await account_status(op, "telegram")
        assert not after["running"] and after["stateReason"] == "logged-out"
        webchat = await op.call("channels.logout", {"channel": "webchat"})
        assert (
            webchat["error"]["code"] == "INVALID_REQUEST" and "does not support logout" in webchat["error"]["message"]
        )


async def test_bad_token_shows_in_status_and_the_gateway_keeps_serving(
    make_gateway: Any, telegram: FakeTelegram
) -> None:
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram, bot_token="999:WRONG-token-xyz")})
    async with Client.open_connected(gw.url) as op:
        snapshot = await until_status(op, "telegram", lambda a: a["lastError"] and a["reconnectAttempts"] >= 2)
        assert snapshot["running"] is False and snapshot["configured"] is True
        assert "rejected" in snapshot["lastError"] and "WRONG" not in snapshot["lastError"]
        assert (await op.ok("health"))["ok"] is True
        run = await op.call("agent", {"message": "still here?", "idempotencyKey": "bad-token-1"})
        assert run["ok"]
        refused = await op.call("send", {"channel": "telegram", "to": "1", "message": "x", "idempotencyKey": "bt-1"})
        assert refused["error"]["code"] == "UNAVAILABLE" and "rejected" in refused["error"]["message"]
        probe = await op.ok("channels.status", {"channel": "telegram", "probe": True, "timeoutMs": 5000})
        account = probe["channelAccounts"]["telegram"][0]
        assert account["probe"]["ok"] is False and account["lastProbeAt"]
    assert "WRONG-token" not in gw.output()


async def test_webhook_mode_checks_the_secret(make_gateway: Any, telegram: FakeTelegram) -> None:
    section = telegram_section(
        telegram,
        allow_from=[49],
        mode="webhook",
        webhook_url="https://bot.example.org/telegram/default/webhook",
        webhook_secret="hook-secret-123",
    )
    gw = await start_gateway(make_gateway, {"telegram": section})
    await telegram.wait(lambda: telegram.webhook)
    assert telegram.webhook is not None
    assert telegram.webhook["url"] == "https://bot.example.org/telegram/default/webhook"
    assert telegram.webhook["secret_token"] == "hook-secret-123"
    update = telegram.update(49, 49, "via webhook")
    async with aiohttp.ClientSession() as http:
        url = f"{gw.http}/telegram/default/webhook"
        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as res:
            assert res.status == 401
        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret-123"}) as res:
            assert res.status == 200
    answer = await expected_answer("via webhook")
    await telegram.wait_chat(49, lambda t: t == [answer], timeout=30)


async def test_a_chat_cannot_queue_runs_without_bound(make_gateway: Any, telegram: FakeTelegram) -> None:
    gw = await start_gateway(
        make_gateway, {"telegram": telegram_section(telegram, allow_from=[50]), "max_queued_runs": 1}
    )
    await polling(telegram)
    key = "agent:main:telegram:direct:50"
    async with Client.open_connected(gw.url) as op:
        await telegram.push_text(50, 50, "[long] first")
        await op.until(
            lambda f: (
                f.get("event") == "agent"
                and f["payload"].get("sessionKey") == key
                and f["payload"]["stream"] == "assistant"
            ),
            timeout=20,
        )
        await telegram.push_text(50, 50, "second")
        await telegram.wait_chat(50, lambda t: BUSY_MESSAGE in t, timeout=20)
        await telegram.push_text(50, 50, "/stop")
        await op.until(lambda f: bool(chat_events(op, key, "aborted")), timeout=20)
    history = [m["content"][0]["text"] for m in (await op_history(gw, key))]
    assert "second" not in history


async def op_history(gw: Any, key: str) -> list[dict[str, Any]]:
    async with Client.open_connected(gw.url) as c:
        messages: list[dict[str, Any]] = (await c.ok("chat.history", {"sessionKey": key}))["messages"]
        return messages
