"""The one place that chooses the JSON codec (orjson), so no other module imports one."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_pretty", "dumps_str", "loads", "wire_safe"]

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


def wire_safe(obj: Any) -> Any:
    """``obj``, or a copy in which what JSON cannot carry as is becomes a string.

    orjson refuses integers past 64 bits (an exact calculator result) and
    unknown types; a tool may return either. Cheap when nothing needs changing.
    """
    try:
        orjson.dumps(obj)
    except TypeError:
        return _safe(obj)
    return obj


def _safe(obj: Any) -> Any:
    if obj is None or isinstance(obj, str | bool | float):
        return obj
    if isinstance(obj, int):
        return obj if -(2**63) <= obj < 2**64 else str(obj)
    if isinstance(obj, dict):
        return {str(k): _safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_safe(v) for v in obj]
    return str(obj)
