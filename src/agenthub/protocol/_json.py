"""The one place that chooses the JSON codec (orjson), so no other module imports one."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_pretty", "dumps_str", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Encode to UTF-8 JSON bytes; non-str dict keys are an error, as on the wire."""
    return orjson.dumps(obj)


def dumps_str(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)


def dumps_pretty(obj: Any) -> str:
    """Indented, key-sorted JSON for humans (CLI output, schema files)."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
