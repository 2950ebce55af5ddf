from __future__ import annotations

import contextlib
import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pytest

from agenthub.agents.tools import (
    MAX_EXPRESSION_LENGTH,
    CalculatorTool,
    ClockTool,
    default_tools,
    evaluate,
)
from agenthub.core.runtime import Tool


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2+2", 4),
        ("12 * (3+4)", 84),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-3 ** 2", -9),
        ("(-3) ** 2", 9),
        ("+5 - -5", 10),
        ("1.5 * 4", 6.0),
        ("1_000 + 1", 1001),
        ("  ((1 + 2) * (3 + 4))  ", 21),
        ("2 ** 9000 // 2 ** 8999", 2),
    ],
)
async def test_calculator_evaluates(expression: str, expected: float) -> None:
    result = await CalculatorTool().call({"expression": expression})
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x + 1", "names are not allowed"),
        ("__import__('os').system('true')", "function calls are not allowed"),
        ("abs(-1)", "function calls are not allowed"),
        ("(1).real", "attribute access is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("1j * 2", "only numbers are allowed"),
        ("[1, 2]", "List expressions are not allowed"),
        ("1 if 1 else 2", "IfExp expressions are not allowed"),
        ("1 < 2", "Compare expressions are not allowed"),
        ("1 << 3", "operator '<<' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("lambda: 1", "Lambda expressions are not allowed"),
        ("9 ** 9 ** 9", "too large"),
        ("2 ** 100000", "exponent 100000 is too large"),
        ("3 ** 10000", "result is too large"),
        ("10.0 ** 400", "too large"),
        ("1e999", "not a finite number"),
        ("(-8) ** 0.5", "complex"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("2 +", "invalid expression"),
        ("", "expression is empty"),
        ("1+" * 300 + "1", "too long"),
    ],
)
async def test_calculator_rejects(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        await CalculatorTool().call({"expression": expression})


async def test_calculator_requires_expression_string() -> None:
    with pytest.raises(ValueError, match="expression"):
        await CalculatorTool().call({})
    with pytest.raises(ValueError, match="expression"):
        await CalculatorTool().call({"expression": 42})


def test_calculator_rejections_are_fast() -> None:
    """Every DoS-shaped input must be refused in well under a second."""
    nasty = [
        "9**9**9**9",
        "(10**1000)**1000",
        "2**10000*2**10000*2**10000",
        "-" * 490 + "1",
        "(" * 100 + "1" + ")" * 100,
    ]
    started = time.perf_counter()
    for expression in nasty:
        with contextlib.suppress(ValueError):
            evaluate(expression)
    assert time.perf_counter() - started < 0.5
    assert len(nasty[3]) <= MAX_EXPRESSION_LENGTH


async def test_clock_defaults_to_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = await ClockTool().call({})
    parsed = datetime.fromisoformat(result)
    assert parsed.utcoffset() == timedelta(0)
    assert before <= parsed <= datetime.now(UTC)


async def test_clock_timezone_and_injected_now() -> None:
    frozen = datetime(2024, 7, 1, 12, 30, 5, 123456, tzinfo=UTC)

    def now(tz: tzinfo) -> datetime:
        return frozen.astimezone(tz)

    clock = ClockTool(now=now)
    assert await clock.call({"timezone": "Europe/Paris"}) == "2024-07-01T14:30:05+02:00"
    assert await clock.call({"timezone": "America/New_York"}) == "2024-07-01T08:30:05-04:00"
    assert await clock.call({"timezone": "UTC"}) == "2024-07-01T12:30:05+00:00"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", 5])
async def test_clock_rejects_bad_timezone(zone: Any) -> None:
    with pytest.raises(ValueError, match=r"time zone|timezone"):
        await ClockTool().call({"timezone": zone})


def test_default_tools_match_the_protocol() -> None:
    tools = default_tools()
    assert [t.name for t in tools] == ["calculator", "clock"]
    for tool in tools:
        assert isinstance(tool, Tool)
        assert tool.description
        assert tool.parameters["type"] == "object"
    assert default_tools()[0] is not tools[0]
