"""chat.history through the transcript cache, over real sockets: every write path shows at once.

The gateway runs with a tiny cache (2 sessions, 3 messages each), so reads
above the bound, eviction and reloads all happen on the way.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import GatewayProc
from ._util import Client, collect_run, expected_answer

pytestmark = pytest.mark.timeout(60)

TINY = {"limits": {"transcript_cache_sessions": 2, "transcript_cache_messages": 3}}


async def texts(c: Client, session: str, limit: int = 200) -> list[tuple[str, str]]:
    history = await c.ok("chat.history", {"sessionKey": session, "limit": limit})
    assert history["sessionKey"] == f"agent:main:{session}"  # bare names are the main agent's
    return [(m["role"], m["content"][0]["text"]) for m in history["messages"]]


async def send(c: Client, session: str, text: str, key: str) -> None:
    await c.ok("send", {"sessionKey": session, "message": text, "idempotencyKey": key})


async def test_every_write_path_is_seen_by_the_next_read(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config=TINY)
    async with Client.open_connected(gw.url) as c:
        assert await texts(c, "h") == []  # cached as an empty transcript
        await send(c, "h", "one", "h-1")
        assert await texts(c, "h") == [("assistant", "one")]
        history = await c.ok("chat.history", {"sessionKey": "h"})
        assert history["messages"][0]["meta"] == {"source": "send"} and history["messages"][0]["runId"] == "h-1"

        # A run appends the user message, then the answer.
        await c.ok("chat.send", {"sessionKey": "h", "message": "hello there", "idempotencyKey": "h-2"})
        await collect_run(c, "h-2")
        answer = await expected_answer("hello there")
        assert await texts(c, "h") == [("assistant", "one"), ("user", "hello there"), ("assistant", answer)]

        # Past the 3 kept: small reads from memory, large ones from the store, both exact.
        await send(c, "h", "four", "h-4")
        await send(c, "h", "five", "h-5")
        full = [
            ("assistant", "one"),
            ("user", "hello there"),
            ("assistant", answer),
            ("assistant", "four"),
            ("assistant", "five"),
        ]
        assert await texts(c, "h", 2) == full[-2:]
        assert await texts(c, "h", 3) == full[-3:]
        assert await texts(c, "h", 1000) == full

        # Reset (method and slash command) and delete.
        assert (await c.ok("sessions.reset", {"key": "h"}))["ok"] is True
        assert await texts(c, "h", 2) == await texts(c, "h") == []
        await send(c, "h", "after reset", "h-6")
        assert await texts(c, "h") == [("assistant", "after reset")]
        await c.ok("chat.send", {"sessionKey": "h", "message": "/reset", "idempotencyKey": "h-7"})
        await collect_run(c, "h-7")
        assert await texts(c, "h", 2) == await texts(c, "h") == []
        await send(c, "h", "again", "h-8")
        assert await texts(c, "h", 1) == [("assistant", "again")]
        assert (await c.ok("sessions.delete", {"key": "h"}))["ok"] is True
        assert await texts(c, "h", 2) == await texts(c, "h") == []

        # Other sessions are untouched, and more sessions than the cache holds stay exact.
        for i in range(4):
            await send(c, f"s{i}", f"only s{i}", f"s{i}-1")
        for _ in range(2):
            for i in range(4):
                assert await texts(c, f"s{i}") == [("assistant", f"only s{i}")]
        before = {f"s{i}": await texts(c, f"s{i}") for i in range(4)}

    gw.restart()
    async with Client.open_connected(gw.url) as c:
        assert {f"s{i}": await texts(c, f"s{i}") for i in range(4)} == before
        assert await texts(c, "h") == []
