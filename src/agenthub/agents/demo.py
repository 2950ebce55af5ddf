"""An offline, deterministic agent, so the gateway can be run, demoed and tested without any model.

It exercises every event type a real provider produces (thinking, tool calls
with real tool execution, word-by-word text) with realistic pacing, and has
two switches for tests: ``[long]`` (a 200-word answer, or ``[long:N]`` for N words up
to 5,000, to test cancellation, backpressure and long replies) and ``[fail]`` (raise mid-turn, to test error handling).
A heartbeat prompt (one that asks for ``HEARTBEAT_OK``) is answered with just
``HEARTBEAT_OK``, the silent acknowledgment, unless the turn contains
``[alert]`` (in the prompt or a queued system event): then it answers as usual,
so tests can drive both a silent and a delivered heartbeat. Images sent with a
turn are acknowledged in one sentence (how many, each one's type and size or
link): the demo cannot see them, but a test can tell that they arrived.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from agenthub.agents._shared import find_tool, result_text, run_tool
from agenthub.agents.tools import CalculatorTool, ClockTool
from agenthub.core.runtime import AgentEvent, ImagePart, TextDelta, Thinking, Tool, ToolCallResult, ToolCallStart, Turn

__all__ = [
    "ECHO_WORDS",
    "LONG_ANSWER_WORDS",
    "MAX_LONG_ANSWER_WORDS",
    "DemoRuntime",
    "find_arithmetic",
    "find_timezone",
    "wants_time",
]

LONG_ANSWER_WORDS = 200
MAX_LONG_ANSWER_WORDS = 5_000  # ``[long:N]`` asks for N words, at most this many
_LONG = re.compile(r"\[long(?::(\d{1,6}))?\]")
ECHO_WORDS = 50  # the answer quotes at most this many words of the message
# Messages longer than this are read in a worker thread, so the event loop keeps serving others.
INLINE_ANALYSIS_CHARS = 2_000

_WORD_OPERATORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bto the power of\b", "**"),
        (r"\bmultiplied by\b", "*"),
        (r"\bdivided by\b", "/"),
        (r"\btimes\b", "*"),
        (r"\bplus\b", "+"),
        (r"\bminus\b", "-"),
        (r"\bmod(?:ulo)?\b", "%"),
        (r"(?<=\d)\s*[x×]\s*(?=\d)", " * "),
        (r"÷", "/"),
        (r"\^", "**"),
    )
)
_NUM = r"\d++(?:\.\d++)?"
_OP = r"(?:\*\*|//|[-+*/%])"
# Possessive quantifiers: no class here can also start what follows it, so giving
# characters back never helps a match, and a failed attempt costs what it read.
_EXPRESSION = re.compile(rf"[-+(\s]*+{_NUM}(?:[\s)]*+{_OP}[\s(+-]*+{_NUM})+[\s)]*+")
# Where an expression may begin. If an attempt at p-1 failed, one at p fails too
# when text[p-1] is a leading sign, bracket or space (the attempt at p-1 could
# have read it and gone on as from p), or both are digits (the same number); so
# only the first position of such a run is tried, which keeps the scan linear.
_START = re.compile(r"(?<![-+(\s\d])[-+(\s\d]|(?<=\d)[-+(\s]")
_DATE = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b")
_TIME_WORDS = re.compile(r"\b(?:time|clock|date)\b", re.IGNORECASE)
_TIMEZONE = re.compile(r"\b(UTC|[A-Z][A-Za-z_]+/[A-Z][A-Za-z_\-]+(?:/[A-Z][A-Za-z_\-]+)?)\b")

_CLOSING = (
    "I am the demo agent: I run offline, answer deterministically and stream one word at a "
    "time so you can watch the gateway deliver every delta."
)
_FILLER = (
    "This long answer exists so that tests and demos can watch a slow stream, interrupt it "
    "halfway and check that the gateway stops promptly, keeps every client in sync and loses "
    "no words along the way."
)


def _expressions(text: str) -> list[str]:
    """What ``_EXPRESSION.finditer`` finds, in time linear in ``len(text)``.

    ``finditer`` would try every position, and a run of n spaces or digits makes
    each try read to its end: n^2 steps (40,000 spaces stalled the gateway for
    seconds). Here a match is tried where the previous one ended and at the
    positions ``_START`` finds, which are the only ones that can succeed.
    """
    found: list[str] = []
    pos: int | None = 0
    while pos is not None and pos < len(text):
        m = _EXPRESSION.match(text, pos)
        if m is not None:
            found.append(m.group())
            pos = m.end()
            continue
        nxt = _START.search(text, pos + 1)
        pos = nxt.start() if nxt is not None else None
    return found


def find_arithmetic(message: str) -> str | None:
    """The longest arithmetic expression in the message (word operators normalised), if any.

    Linear in the message length: it runs on the event loop, on whatever a user sends.
    """
    text = _DATE.sub(" ", message)  # "2024-01-15" is a date, not 2024 - 1 - 15
    for pattern, replacement in _WORD_OPERATORS:
        text = pattern.sub(replacement, text)
    candidates = [c.strip() for c in _expressions(text)]
    if not candidates:
        return None
    expr = max(candidates, key=len)
    # The regex cannot balance parentheses; drop the unmatched ones at the edges
    # (counted once, cut by index: slicing per bracket would be quadratic again).
    opens, closes = expr.count("("), expr.count(")")
    start, end = 0, len(expr)
    while opens > closes and expr.startswith("(", start):
        opens -= 1
        start += 1
        while start < end and expr[start].isspace():
            start += 1
    while closes > opens and end > start and expr[end - 1] == ")":
        closes -= 1
        end -= 1
        while end > start and expr[end - 1].isspace():
            end -= 1
    return expr[start:end]


def wants_time(message: str) -> bool:
    return _TIME_WORDS.search(message) is not None


def find_timezone(message: str) -> str | None:
    """An IANA-looking zone ("Europe/Paris") or "UTC" mentioned in the message."""
    m = _TIMEZONE.search(message)
    return m.group(1) if m else None


def _read(message: str) -> tuple[str | None, bool, str | None, str]:
    """Everything the demo takes from a message: arithmetic, time question, zone, and the quote."""
    words = message.split()
    quote = " ".join(words[:ECHO_WORDS]) + (" …" if len(words) > ECHO_WORDS else "")
    clock = wants_time(message)
    return find_arithmetic(message), clock, find_timezone(message) if clock else None, quote


class DemoRuntime:
    """A provider that needs no network and answers the same way every time."""

    name: str = "demo"
    accepts_images: bool = True  # it cannot see them, but says what it received (deterministic)

    def __init__(self, *, word_delay_s: float = 0.02) -> None:
        if not math.isfinite(word_delay_s) or word_delay_s < 0:
            raise ValueError(f"word_delay_s must be a finite number >= 0, got {word_delay_s!r}")
        self.word_delay_s = word_delay_s
        self._own_tools: tuple[Tool, ...] = (CalculatorTool(), ClockTool())

    def _tool(self, tools: Sequence[Tool], name: str) -> Sequence[Tool]:
        """Prefer the tool the gateway passed in (it may be instrumented); fall back to ours."""
        tool = find_tool(tools, name) or find_tool(self._own_tools, name)
        return (tool,) if tool is not None else ()

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        message = turn.message
        if len(message) > INLINE_ANALYSIS_CHARS:
            expression, clock, zone, quote = await asyncio.to_thread(_read, message)
        else:
            expression, clock, zone, quote = _read(message)

        for part in self._thinking(expression is not None, clock):
            yield Thinking(part)
        if "[fail]" in message:
            raise RuntimeError("demo failure requested")
        if "HEARTBEAT_OK" in message and "[alert]" not in message:
            yield TextDelta("HEARTBEAT_OK")
            return

        sentences = [f'You said: "{quote}".'] if quote or not turn.images else []
        if turn.images:
            sentences.append(self._images_sentence(turn.images))
        calls: list[tuple[str, Mapping[str, Any]]] = []
        if expression is not None:
            calls.append(("calculator", {"expression": expression}))
        if clock:
            calls.append(("clock", {"timezone": zone} if zone else {}))

        for n, (tool_name, args) in enumerate(calls, start=1):
            call_id = f"demo-{turn.run_id}-{n}"
            yield ToolCallStart(tool_call_id=call_id, name=tool_name, args=args)
            result, is_error = await run_tool(self._tool(turn.tools, tool_name), tool_name, args)
            yield ToolCallResult(tool_call_id=call_id, name=tool_name, result=result, is_error=is_error)
            sentences.append(self._tool_sentence(tool_name, args, result, is_error))
        sentences.append(_CLOSING)

        words = " ".join(sentences).split()
        long = _LONG.search(message)
        if long is not None:
            count = min(int(long.group(1) or LONG_ANSWER_WORDS), MAX_LONG_ANSWER_WORDS)
            filler = itertools.cycle(_FILLER.split())
            words = (words + [next(filler) for _ in range(count)])[:count]
        last = len(words) - 1
        for i, word in enumerate(words):
            if i:
                await asyncio.sleep(self.word_delay_s)
            yield TextDelta(word if i == last else word + " ")

    @staticmethod
    def _images_sentence(images: Sequence[ImagePart]) -> str:
        """What the demo says of the turn's images: each one's type and size, or its link."""
        described = [
            f"a link to {image.url}" if image.url is not None else f"{image.media_type}, {image.size} bytes"
            for image in images
        ]
        noun = "image" if len(images) == 1 else "images"
        return f"I received {len(images)} {noun} ({'; '.join(described)}) but I cannot see pictures."

    @staticmethod
    def _thinking(arithmetic: bool, clock: bool) -> list[str]:
        if arithmetic and clock:
            plan = "It asks for arithmetic and for the time, so I will use the calculator and the clock first."
        elif arithmetic:
            plan = "It contains arithmetic, so I will evaluate it with the calculator first."
        elif clock:
            plan = "It asks about the time, so I will check the clock first."
        else:
            plan = "No tool is needed, so I will answer directly."
        return ["Reading the message. ", plan]

    @staticmethod
    def _tool_sentence(tool_name: str, args: Mapping[str, Any], result: Any, is_error: bool) -> str:
        text = result_text(result, False)
        if tool_name == "calculator":
            expression = args["expression"]
            if is_error:
                return f"The calculator could not evaluate {expression}: {text}."
            return f"The calculator says {expression} = {text}."
        if is_error:
            return f"The clock failed: {text}."
        zone = args.get("timezone")
        return f"The clock says it is now {text}" + (f" in {zone}." if zone else " (UTC).")
