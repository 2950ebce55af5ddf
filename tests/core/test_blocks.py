"""``AnswerBlocks``: what a stored answer keeps of its turn's thinking and tool calls, and the bound."""

from __future__ import annotations

from agenthub.core.blocks import AnswerBlocks


def test_calls_keep_their_order_and_a_result_finds_its_start() -> None:
    b = AnswerBlocks(1000)
    b.tool_start("1", "calc", {"e": "1+1"})
    b.tool_start("2", "clock", {})
    b.tool_result("2", "clock", "noon", False)
    b.tool_result("1", "calc", 2, False)
    b.tool_start("1", "calc", {"e": "again"})  # a repeated start changes nothing
    assert b.meta("") == {
        "tools": [
            {"id": "1", "name": "calc", "args": {"e": "1+1"}, "isError": False, "result": 2},
            {"id": "2", "name": "clock", "args": {}, "isError": False, "result": "noon"},
        ]
    }


def test_a_result_without_a_start_is_kept_on_its_own() -> None:
    b = AnswerBlocks(100)
    b.tool_result("x", "lookup", "oops", True)
    assert b.meta("why") == {
        "thinking": "why",
        "tools": [{"id": "x", "name": "lookup", "isError": True, "result": "oops"}],
    }


def test_the_budget_cuts_then_counts() -> None:
    b = AnswerBlocks(30)
    b.tool_start("a", "n", {"v": "y" * 40})  # does not fit: a cut JSON text
    b.tool_result("a", "n", 1, False)  # nothing left: marked
    b.tool_start("b", "n", {})  # past the bound: only counted
    b.tool_result("b", "n", 2, False)
    meta = b.meta("z" * 31)
    [a] = meta["tools"]
    assert a["truncated"] is True and a["args"].startswith('{"v":"yyy') and a["args"].endswith("…")
    assert a["result"] == "…" and meta["toolsOmitted"] == 1
    assert meta["thinking"] == "z" * 30 + "…" and meta["thinkingTruncated"] is True


def test_zero_keeps_nothing() -> None:
    b = AnswerBlocks(0)
    b.tool_start("a", "n", {})
    b.tool_result("a", "n", 1, False)
    assert b.meta("thoughts") == {}
