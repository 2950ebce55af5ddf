"""Plumbing shared by the HTTP providers: errors, tool execution, JSON hygiene."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from agenthub.core.runtime import Tool

__all__ = [
    "ProviderError",
    "client_scope",
    "error_from_body",
    "error_from_transport",
    "find_tool",
    "jsonable",
    "parse_json_object",
    "result_text",
    "run_tool",
    "validate_base_url",
]

log = logging.getLogger("agenthub.agents")

_MAX_BODY_IN_MESSAGE = 300


class ProviderError(RuntimeError):
    """A provider call failed; ``str()`` is meant for humans and never holds the API key."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.error_type = error_type
        parts = [f"{provider} API error"]
        if status is not None:
            parts.append(f" (HTTP {status}")
            parts.append(f", {error_type})" if error_type else ")")
        elif error_type:
            parts.append(f" ({error_type})")
        super().__init__("".join(parts) + f": {message}")


def redact(text: str, secret: str | None) -> str:
    """Servers sometimes echo the key back (e.g. "Incorrect API key provided: sk-...")."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return text


def error_from_body(provider: str, status: int | None, body: bytes | str | Any, secret: str | None) -> ProviderError:
    """Build a readable error from an error response or an in-stream error payload.

    Understands OpenAI's ``{"error": {"message", "type", "code"}}``, Anthropic's
    ``{"type": "error", "error": {"type", "message"}}``, Ollama's
    ``{"error": "text"}``, and falls back to a truncated raw body (proxies
    answer with HTML).
    """
    payload: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
    message: str | None = None
    error_type: str | None = None
    if isinstance(payload, Mapping):
        err = payload.get("error", payload)
        if isinstance(err, Mapping):
            msg = err.get("message")
            message = str(msg) if msg else None
            kind = err.get("code") or err.get("type")
            error_type = str(kind) if kind and kind != "error" else None
        elif isinstance(err, str):
            message = err
    elif isinstance(payload, str) and payload.strip():
        message = " ".join(payload.split())[:_MAX_BODY_IN_MESSAGE]
    if not message:
        message = httpx.codes.get_reason_phrase(status) if status else "unknown error"
        message = message or "unknown error"
    return ProviderError(provider, redact(message, secret), status=status, error_type=error_type)


def error_from_transport(provider: str, url: str, exc: httpx.TransportError, secret: str | None) -> ProviderError:
    """Connection refused, DNS failure, timeouts: say which endpoint and what happened."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "request failed"
    detail = str(exc) or type(exc).__name__
    return ProviderError(provider, redact(f"{kind} talking to {url}: {detail}", secret))


def validate_base_url(base_url: str) -> str:
    """Reject obviously wrong URLs at construction time rather than on the first turn."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


@asynccontextmanager
async def client_scope(client: httpx.AsyncClient | None, timeout_s: float) -> AsyncIterator[httpx.AsyncClient]:
    """Use the injected (caller-owned, pooled) client, or a client scoped to one turn.

    A per-turn client is the safe default: an ``AsyncClient`` binds to the event
    loop it first ran on, and the run manager has no hook to close a shared one.
    """
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))) as owned:
        yield owned


def jsonable(value: Any) -> Any:
    """Deep-copy Mappings/Sequences into dicts/lists so ``json.dumps`` accepts any Tool schema."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return [jsonable(v) for v in value]
    return value


def parse_json_object(raw: str) -> dict[str, Any]:
    """Parse streamed tool arguments; empty means "no arguments". Raises ValueError."""
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
    return value


def find_tool(tools: Sequence[Tool], name: str) -> Tool | None:
    for tool in tools:
        if tool.name == name:
            return tool
    return None


async def run_tool(tools: Sequence[Tool], name: str, args: Mapping[str, Any]) -> tuple[Any, bool]:
    """Run a tool and return ``(result, is_error)``.

    Errors become results (the model gets to see and recover from them) rather
    than ending the run. Only ``Exception`` is caught so cancellation propagates.
    """
    tool = find_tool(tools, name)
    if tool is None:
        return f"unknown tool {name!r}", True
    try:
        return await tool.call(args), False
    except Exception as exc:
        log.info("tool %s failed: %s", name, exc)
        return str(exc) or type(exc).__name__, True


def result_text(result: Any, is_error: bool) -> str:
    """What the model sees for a tool result: text as-is, anything else as JSON."""
    if isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(jsonable(result), ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(result)
    return f"Error: {text}" if is_error else text
