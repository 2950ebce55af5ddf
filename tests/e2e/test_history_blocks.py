"""A past turn keeps its thinking and tool calls: ``chat.history`` shows them in the answer's ``meta``."""

from __future__ import annotations

from typing import Any

from ..conftest import GatewayProc
from ._util import Client, collect_run


async def _turn(c: Client, key: str, message: str, run_id: str) -> None:
    rid = await c.request("chat.send", {"sessionKey": key, "message": message, "idempotencyKey": run_id})
    assert (await c.response(rid))["ok"]
    await collect_run(c, run_id)


async def test_history_keeps_thinking_and_tool_calls_across_a_restart(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway()
    async with Client.open_connected(gw.url) as c:
        await _turn(c, "blocks", "what is 12 times 7?", "hb-1")
    gw.restart()  # from the database, not the cache or the run's memory
    async with Client.open_connected(gw.url) as c:
        history = await c.ok("chat.history", {"sessionKey": "blocks"})
    user, answer = history["messages"]
    assert user["role"] == "user" and "meta" not in user
    assert answer["role"] == "assistant" and "84" in answer["content"][0]["text"]
    assert answer["content"] == [{"type": "text", "text": answer["content"][0]["text"]}]  # content is unchanged
    assert answer["meta"] == {
        "thinking": "Reading the message. It contains arithmetic, so I will evaluate it with the calculator first.",
        "tools": [
            {
                "id": "demo-hb-1-1",
                "name": "calculator",
                "args": {"expression": "12 * 7"},
                "result": answer["meta"]["tools"][0]["result"],
                "isError": False,
            }
        ],
    }
    assert "84" in str(answer["meta"]["tools"][0]["result"])


async def test_the_bound_is_a_setting_and_zero_keeps_nothing(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config={"limits": {"transcript_blocks_chars": 0}})
    async with Client.open_connected(gw.url) as c:
        await _turn(c, "none", "what is 2 plus 3", "hb-2")
        answer = (await c.ok("chat.history", {"sessionKey": "none"}))["messages"][-1]
        assert "5" in answer["content"][0]["text"] and "meta" not in answer
        # config.patch changes it on the running gateway
        await c.ok("config.patch", {"patch": {"limits": {"transcript_blocks_chars": 40}}})
        await _turn(c, "none", "what is 2 plus 3", "hb-3")
        meta = (await c.ok("chat.history", {"sessionKey": "none"}))["messages"][-1]["meta"]
    assert meta["thinking"].endswith("…") and meta["thinkingTruncated"] is True and len(meta["thinking"]) == 41
    assert meta["tools"][0]["name"] == "calculator"
