"""Built-in tools: a safe calculator and a clock.

The calculator never calls ``eval``: it walks the ``ast`` and allows only
numbers and arithmetic operators, with bounds on input length, exponents and
integer size so a model (or a user through a model) cannot burn the CPU or
memory of the gateway with ``9**9**9``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agenthub.core.runtime import Tool

__all__ = [
    "MAX_EXPONENT",
    "MAX_EXPRESSION_LENGTH",
    "MAX_INT_BITS",
    "CalculatorTool",
    "ClockTool",
    "default_tools",
    "evaluate",
]

MAX_EXPRESSION_LENGTH = 500
MAX_EXPONENT = 10_000
# ~3000 decimal digits: far below int->str's 4300-digit guard, and cheap to multiply.
MAX_INT_BITS = 10_000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_SYMBOL: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
}


def _checked(value: Any) -> Number:
    """Enforce the result rules after every step, so no intermediate value can grow huge."""
    if isinstance(value, complex):
        raise ValueError("result is a complex number, which is not supported")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"unsupported value of type {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("result is too large (not a finite number)")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError(f"result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent} is too large (limit is {MAX_EXPONENT})")
    # Predict the size before computing (a lower bound; _checked enforces the exact limit).
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and max(abs(base).bit_length() - 1, 0) * exponent > MAX_INT_BITS
    ):
        raise ValueError(f"result is too large (more than {MAX_INT_BITS} bits)")
    return _checked(base**exponent)


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ValueError(f"only numbers are allowed, not {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ValueError(f"operator {_SYMBOL.get(type(node.op), type(node.op).__name__)!r} is not allowed")
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        try:
            return _checked(op(left, right))
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
        except OverflowError:
            raise ValueError("result is too large") from None
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise ValueError(f"operator {_SYMBOL.get(type(node.op), type(node.op).__name__)!r} is not allowed")
        return _checked(unary(_eval(node.operand)))
    if isinstance(node, ast.Name):
        raise ValueError(f"names are not allowed (found {node.id!r})")
    if isinstance(node, ast.Call):
        raise ValueError("function calls are not allowed")
    if isinstance(node, ast.Attribute):
        raise ValueError("attribute access is not allowed")
    raise ValueError(f"{type(node).__name__} expressions are not allowed")


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression safely; ValueError explains any rejection."""
    if not isinstance(expression, str):
        raise ValueError("expression must be a string")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression is too long ({len(expression)} > {MAX_EXPRESSION_LENGTH} characters)")
    if not expression.strip():
        raise ValueError("expression is empty")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.msg}") from None
    try:
        return _eval(tree)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("result is too large") from None
    except RecursionError:
        raise ValueError("expression is nested too deeply") from None


class CalculatorTool:
    """Arithmetic the model can trust (LLMs are bad at multiplying)."""

    name: str = "calculator"
    description: str = (
        "Evaluate an arithmetic expression exactly. Supports numbers, + - * / // % ** "
        "(power), unary minus and parentheses. Example: '12 * (3 + 4) / 2'."
    )
    parameters: Mapping[str, Any]

    def __init__(self) -> None:
        self.parameters = {
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "The arithmetic expression, e.g. '2 ** 10 - 1'.",
                    "maxLength": MAX_EXPRESSION_LENGTH,
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        }

    async def call(self, args: Mapping[str, Any]) -> Number:
        expression = args.get("expression")
        if not isinstance(expression, str):
            raise ValueError("missing required string argument 'expression'")
        return evaluate(expression)


class ClockTool:
    """The current time, so the model does not guess from its training cutoff."""

    name: str = "clock"
    description: str = (
        "Get the current date and time as an ISO 8601 string. Optionally pass an IANA "
        "time zone such as 'Europe/Paris' or 'America/New_York' (default UTC)."
    )
    parameters: Mapping[str, Any]

    def __init__(self, now: Callable[[tzinfo], datetime] | None = None) -> None:
        """``now`` is injectable so tests can freeze time."""
        self._now: Callable[[tzinfo], datetime] = now or datetime.now
        self.parameters = {
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "IANA time zone name, e.g. 'Asia/Tokyo'. Defaults to UTC.",
                }
            },
            "additionalProperties": False,
        }

    async def call(self, args: Mapping[str, Any]) -> str:
        name = args.get("timezone")
        if name is None or name == "":
            tz: tzinfo = UTC
        elif not isinstance(name, str):
            raise ValueError("'timezone' must be a string such as 'Europe/Paris'")
        elif name.upper() in ("UTC", "Z", "GMT"):
            tz = UTC
        else:
            try:
                tz = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'") from None
        return self._now(tz).isoformat(timespec="seconds")


def default_tools() -> list[Tool]:
    """Fresh instances of the built-in tools."""
    return [CalculatorTool(), ClockTool()]
