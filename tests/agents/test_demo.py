from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agenthub.agents.demo import (
    ECHO_WORDS,
    LONG_ANSWER_WORDS,
    MAX_LONG_ANSWER_WORDS,
    DemoRuntime,
    _expressions,
    find_arithmetic,
)
from agenthub.agents.tools import CalculatorTool
from agenthub.core.runtime import (
    AgentEvent,
    ImagePart,
    TextDelta,
    Thinking,
    Tool,
    ToolCallResult,
    ToolCallStart,
    Turn,
)


class FrozenClock:
    name = "clock"
    description = "fixed time"
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}

    def __init__(self) -> None:
        self.calls: list[Mapping[str, Any]] = []

    async def call(self, args: Mapping[str, Any]) -> str:
        self.calls.append(args)
        return "2024-07-01T12:30:05+00:00"


def turn(message: str, tools: Sequence[Tool] = (), run_id: str = "r1") -> Turn:
    return Turn(run_id=run_id, session_key="s1", message=message, tools=tools)


async def collect(message: str, tools: Sequence[Tool] = (), delay: float = 0.0) -> list[AgentEvent]:
    return [e async for e in DemoRuntime(word_delay_s=delay).run_turn(turn(message, tools))]


def text_of(events: Sequence[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_plain_message_thinks_then_streams_words() -> None:
    events = await collect("hello there")
    assert events[:2] == [
        Thinking("Reading the message. "),
        Thinking("No tool is needed, so I will answer directly."),
    ]
    assert not any(isinstance(e, ToolCallStart | ToolCallResult) for e in events)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert events[2:] == deltas
    text = text_of(events)
    assert text.startswith('You said: "hello there". ')
    assert len(text.split()) >= 12
    # each delta is one word plus its following space (the last has none)
    assert all(d.text.count(" ") == 1 and d.text.endswith(" ") for d in deltas[:-1])
    assert " " not in deltas[-1].text
    assert [d.text.strip() for d in deltas] == text.split()


async def test_deterministic() -> None:
    a = await collect("please calculate 12 * (3+4)")
    b = await collect("please calculate 12 * (3+4)")
    assert a == b


async def test_arithmetic_uses_the_calculator() -> None:
    events = await collect("What is 12 * (3+4)?")
    assert events[1] == Thinking("It contains arithmetic, so I will evaluate it with the calculator first.")
    kinds = [type(e).__name__ for e in events]
    assert kinds[:4] == ["Thinking", "Thinking", "ToolCallStart", "ToolCallResult"]
    assert set(kinds[4:]) == {"TextDelta"}
    assert events[2] == ToolCallStart("demo-r1-1", "calculator", {"expression": "12 * (3+4)"})
    assert events[3] == ToolCallResult("demo-r1-1", "calculator", 84)
    assert "The calculator says 12 * (3+4) = 84." in text_of(events)


@pytest.mark.parametrize(
    ("message", "expression"),
    [
        ("2+2", "2+2"),
        ("what is 7 times 6", "7 * 6"),
        ("calculate 2 to the power of 10 minus 1", "2 ** 10 - 1"),
        ("(1+2)*3 please", "(1+2)*3"),
        ("what's 10 / 4?", "10 / 4"),
        ("on 2024-01-15 what is 2+2", "2+2"),
        ("I have 3 apples", None),
        ("no numbers here", None),
    ],
)
def test_find_arithmetic(message: str, expression: str | None) -> None:
    assert find_arithmetic(message) == expression


async def test_calculator_error_is_reported_not_raised() -> None:
    events = await collect("what is 1/0")
    result = next(e for e in events if isinstance(e, ToolCallResult))
    assert result.is_error and result.result == "division by zero"
    assert "could not evaluate 1/0: division by zero." in text_of(events)


async def test_prefers_the_turns_own_tools() -> None:
    clock = FrozenClock()
    events = await collect("What time is it in Europe/Paris?", tools=[CalculatorTool(), clock])
    assert clock.calls == [{"timezone": "Europe/Paris"}]
    assert events[2] == ToolCallStart("demo-r1-1", "clock", {"timezone": "Europe/Paris"})
    assert events[3] == ToolCallResult("demo-r1-1", "clock", "2024-07-01T12:30:05+00:00")
    assert "The clock says it is now 2024-07-01T12:30:05+00:00 in Europe/Paris." in text_of(events)


async def test_time_uses_its_own_clock_without_tools() -> None:
    events = await collect("what's the date today?")
    start = next(e for e in events if isinstance(e, ToolCallStart))
    result = next(e for e in events if isinstance(e, ToolCallResult))
    assert (start.name, start.args) == ("clock", {})
    assert not result.is_error
    assert datetime.fromisoformat(result.result).tzinfo is not None


async def test_arithmetic_and_time_in_one_message() -> None:
    clock = FrozenClock()
    events = await collect("what is 6*7 and what time is it", tools=[clock])
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.tool_call_id, s.name) for s in starts] == [("demo-r1-1", "calculator"), ("demo-r1-2", "clock")]
    assert "6*7 = 42." in text_of(events)


async def test_long_answer_is_200_words() -> None:
    events = await collect("[long] story please")
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == LONG_ANSWER_WORDS == 200
    assert len(text_of(events).split()) == 200


async def test_fail_raises_after_thinking() -> None:
    seen: list[AgentEvent] = []
    with pytest.raises(RuntimeError, match="demo failure requested"):
        async for event in DemoRuntime(word_delay_s=0).run_turn(turn("[fail] 2+2")):
            seen.append(event)
    assert seen and all(isinstance(e, Thinking) for e in seen)


async def test_words_are_paced() -> None:
    started = time.perf_counter()
    events = await collect("hello", delay=0.01)
    words = sum(isinstance(e, TextDelta) for e in events)
    assert time.perf_counter() - started >= 0.01 * (words - 1) * 0.9


async def test_cancel_long_run_promptly() -> None:
    runtime = DemoRuntime(word_delay_s=0.02)
    received: list[AgentEvent] = []
    three_words = asyncio.Event()

    async def consume() -> None:
        async for event in runtime.run_turn(turn("[long]")):
            received.append(event)
            if sum(isinstance(e, TextDelta) for e in received) == 3:
                three_words.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(three_words.wait(), timeout=5)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.2
    assert sum(isinstance(e, TextDelta) for e in received) < LONG_ANSWER_WORDS


def test_rejects_negative_delay() -> None:
    with pytest.raises(ValueError, match="word_delay_s"):
        DemoRuntime(word_delay_s=-1)


# The pattern find_arithmetic applied with re.finditer before it was made linear: the reference.
_REFERENCE = re.compile(r"[-+(\s]*\d+(?:\.\d+)?(?:[\s)]*(?:\*\*|//|[-+*/%])[\s(+-]*\d+(?:\.\d+)?)+[\s)]*")


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789 .+-*/%()x\t\n", max_size=40))
def test_the_linear_scan_finds_what_finditer_found(text: str) -> None:
    assert _expressions(text) == [m.group() for m in _REFERENCE.finditer(text)]


@pytest.mark.timeout(20)  # quadratic, each of these took minutes; linear, milliseconds
@pytest.mark.parametrize(
    "hostile",
    [
        "a" + " " * 200_000 + "a",
        "1" * 200_000,
        "(" * 200_000 + "1+1",
        "1 " + "+ " * 100_000 + "x",
        "1" + ")" * 200_000,
        "1 1 " * 50_000,
        "((((1+1" * 30_000,
        "2 ** " * 40_000,
        "9." * 100_000,
    ],
)
def test_find_arithmetic_is_linear_on_hostile_input(hostile: str) -> None:
    find_arithmetic(hostile)


def test_unbalanced_brackets_are_trimmed_without_quadratic_slicing() -> None:
    assert find_arithmetic("(" * 50_000 + "1+1") == "1+1"
    assert find_arithmetic("((2+3)*4") == "(2+3)*4"
    assert find_arithmetic("2+3))") == "2+3"


async def test_a_long_message_is_quoted_in_part_and_still_read_whole() -> None:
    message = "what is 6*7 " + "and more " * 2_000
    events = await collect(message)
    text = text_of(events)
    quoted = text[len('You said: "') : text.index('".')]
    assert len(quoted.split()) == ECHO_WORDS + 1 and quoted.endswith(" …")
    assert "The calculator says 6*7 = 42." in text


async def test_long_answers_take_a_word_count_within_a_bound() -> None:
    words = [e.text for e in await collect("[long:1000] go") if isinstance(e, TextDelta)]
    assert len(words) == 1000
    capped = [e.text for e in await collect("[long:999999] go") if isinstance(e, TextDelta)]
    assert len(capped) == MAX_LONG_ANSWER_WORDS


async def test_images_are_acknowledged_deterministically() -> None:
    rt = DemoRuntime(word_delay_s=0)
    assert rt.accepts_images
    turn = Turn("r", "s", "look at these")
    turn.images = [ImagePart(media_type="image/png", data="iVBORw0KGgo=", size=8), ImagePart(url="https://e.x/a.jpg")]
    text = "".join(e.text for e in [e async for e in rt.run_turn(turn)] if isinstance(e, TextDelta))
    assert text.startswith(
        'You said: "look at these". I received 2 images (image/png, 8 bytes; a link to https://e.x/a.jpg) '
        "but I cannot see pictures."
    )
    alone = Turn("r2", "s", "")
    alone.images = [ImagePart(media_type="image/gif", data="R0lGODlh", size=6)]
    text = "".join(e.text for e in [e async for e in rt.run_turn(alone)] if isinstance(e, TextDelta))
    assert text.startswith("I received 1 image (image/gif, 6 bytes) but I cannot see pictures.")
