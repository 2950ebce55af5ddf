"""The LangBot dialect (seed 004): pipeline WebSocket chat with streamed reply chunks.

Sans-I/O: ``decode`` turns one client frame into a command (or raises
``LangBotInputError`` with the text of the error frame to send), and the
``encode_*`` functions build server frames. Core ``agent``/``chat`` events are
translated by ``translate``; the socket edge lives in ``web/langbot.py``.

Wire shapes::

    client  {"type": "message", "message": [{"type": "Plain", "text": "hi"}, ...]}
            {"type": "ping"}
    server  {"type": "connected", "data": {"connection_id", "pipeline_uuid", "session_type"}}
            {"type": "response", "data": {"id", "role": "assistant", "content",
                                          "message_chain", "is_final", "timestamp"}}
            {"type": "pong"} | {"type": "broadcast", "data": ...}
            {"type": "error", "data": {"message": "...", "code"?: "...", "retry_after_ms"?: n}}

``code`` and ``retry_after_ms`` appear on refusals at the door
(``unauthorized``, ``rate_limited``, ``too_many_connections``), sent just
before the socket is closed; ``code`` also on a message refused for what it
carries (``unsupported_component``, the socket stays open).

Message chains (LangBot's components) map onto the agent's input:
``Plain`` is the text; ``At``/``AtAll`` become ``@name``/``@all`` in place;
each ``Quote`` becomes a context line before the text (``[quoting <sender>:
<its text>]``); ``Image`` (``base64``, a base64 ``data:`` URL, or an
``http(s)`` ``url``) goes to the provider as image content, for providers
that take images (``takes_images``: demo, openai, anthropic), checked by its
bytes (PNG, JPEG, GIF, WebP) and bounded by ``langbot.max_images`` and
``langbot.max_image_bytes``; ``Source`` is metadata, kept in history only.
Everything else (``Voice``, ``File``, ``Forward``, ``Face``, unknown types),
an Image given only as a ``path`` or ``image_id``, and an image for an agent
that takes none, is refused with an ``error`` frame naming why: nothing is
dropped silently. History keeps the chain as sent, less the base64 data.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..core.runtime import ImagePart
from ..core.store import MessageRecord
from ..protocol import _json

__all__ = [
    "IMAGE_TYPES",
    "SESSION_TYPES",
    "ChainLimits",
    "LangBotInputError",
    "Ping",
    "UserMessage",
    "decode",
    "encode_broadcast",
    "encode_connected",
    "encode_error",
    "encode_response",
    "history_entry",
    "iso",
    "session_key",
    "translate",
]

SESSION_TYPES = ("person", "group")
PONG = b'{"type":"pong"}'


class LangBotInputError(ValueError):
    """A bad client frame; ``str(exc)`` is the message for the error frame, ``code`` its optional code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class UserMessage:
    chain: list[dict[str, Any]]  # as stored in history: the chain sent, base64 image data left out
    text: str  # what the agent reads: Plain text, mentions inline, quotes as a context line first
    images: tuple[ImagePart, ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class ChainLimits:
    """``langbot.max_images`` and ``langbot.max_image_bytes``."""

    max_images: int = 4
    max_image_bytes: int = 5 * 1024 * 1024


# Image media types the providers take (OpenAI and Anthropic agree), by their first bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([\w.+/-]+);base64,", re.IGNORECASE)
# Components that carry no content of their own: kept in history, nothing for the agent.
_METADATA = frozenset({"Source"})
MAX_QUOTE_DEPTH = 4


def session_key(pipeline_uuid: str, session_type: str) -> str:
    """The core session of one pipeline and session type (shared by its connections)."""
    return f"langbot:{pipeline_uuid}:{session_type}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def decode(data: str | bytes, limits: ChainLimits | None = None) -> UserMessage | Ping:
    """Parse one client frame.

    Raises:
        LangBotInputError: not JSON, not an object, unknown ``type``, a bad
            message chain, or a component that cannot be carried (``code``
            ``unsupported_component``).
    """
    try:
        frame = _json.loads(data)
    except _json.JSONDecodeError:
        raise LangBotInputError("invalid JSON") from None
    if not isinstance(frame, dict):
        raise LangBotInputError("a frame must be a JSON object")
    kind = frame.get("type")
    if kind == "ping":
        return Ping()
    if kind != "message":
        raise LangBotInputError(f"unknown message type: {kind!r}")
    chain = frame.get("message")
    if not isinstance(chain, list) or not chain:
        raise LangBotInputError("'message' must be a non-empty message chain (list of components)")
    reader = _ChainReader(limits or ChainLimits())
    text = reader.read(chain)
    if not text and not reader.images:
        raise LangBotInputError("the message chain has no text and no image")
    return UserMessage(reader.stored, text, tuple(reader.images))


class _ChainReader:
    """Maps a message chain onto the agent's input; refuses what it cannot carry."""

    def __init__(self, limits: ChainLimits) -> None:
        self.limits = limits
        self.images: list[ImagePart] = []
        self.stored: list[dict[str, Any]] = []

    def read(self, chain: list[Any]) -> str:
        quotes: list[str] = []
        parts: list[str] = []
        for component in chain:
            kind = _kind(component)
            if kind == "Quote":
                quotes.append(self._quote(component))
            elif kind == "Image":
                self.images.append(self._image(component))
                self.stored.append(_stored_image(component, self.images[-1]))
                continue
            elif kind not in _METADATA:
                parts.append(_inline(component, kind))
            self.stored.append(component)
        text = "".join(parts).strip()
        return "\n".join([*quotes, text] if text else quotes)

    def _quote(self, component: dict[str, Any]) -> str:
        """A quoted message as one context line: who said it, and its text (nested quotes flattened)."""
        origin = component.get("origin")
        if not isinstance(origin, list):
            raise LangBotInputError("a Quote component needs 'origin': the quoted message chain")
        quoted = _flatten(origin, 1).strip()
        sender = component.get("sender_id")
        who = f" {sender}" if isinstance(sender, str | int) and str(sender) else ""
        return f"[quoting{who}: {quoted}]"

    def _image(self, component: dict[str, Any]) -> ImagePart:
        if len(self.images) >= self.limits.max_images:
            raise _unsupported(f"too many images: at most {self.limits.max_images} per message")
        b64, url = component.get("base64"), component.get("url")
        if isinstance(b64, str) and b64:
            return self._inline_image(b64)
        if isinstance(url, str) and url:
            parts = urlsplit(url)
            if parts.scheme == "data":
                return self._inline_image(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _unsupported("an Image url must be http(s) or a base64 data: URL")
            return ImagePart(url=url)
        if component.get("path"):
            raise _unsupported("an Image path is a file on the sender's machine: send the image as base64 or url")
        raise _unsupported("an Image component needs base64 or url (an image_id alone cannot be resolved here)")

    def _inline_image(self, value: str) -> ImagePart:
        declared = None
        m = _DATA_URL.match(value)
        if m is not None:
            declared, value = m.group(1).lower(), value[m.end() :]
        value = "".join(value.split())  # line-wrapped base64 is still base64
        if len(value) // 4 * 3 > self.limits.max_image_bytes + 2:
            raise _unsupported(f"image too large: at most {self.limits.max_image_bytes} bytes")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _unsupported("an Image's base64 is not valid base64") from None
        if len(raw) > self.limits.max_image_bytes:
            raise _unsupported(f"image too large: at most {self.limits.max_image_bytes} bytes")
        media_type = _sniff(raw)
        if media_type is None or (declared is not None and declared != media_type):
            raise _unsupported(f"unsupported image data: send one of {', '.join(sorted(IMAGE_TYPES))}")
        return ImagePart(media_type=media_type, data=value, size=len(raw))


def _kind(component: Any) -> str:
    if not isinstance(component, dict) or not isinstance(component.get("type"), str):
        raise LangBotInputError("each message chain component needs a string 'type'")
    return str(component["type"])


def _inline(component: dict[str, Any], kind: str) -> str:
    """Text the agent reads in place: Plain as is, mentions as ``@name``."""
    if kind == "Plain":
        text = component.get("text")
        if not isinstance(text, str):
            raise LangBotInputError("a Plain component needs a string 'text'")
        return text
    if kind == "At":
        who = component.get("display") or component.get("target")
        if not isinstance(who, str | int) or isinstance(who, bool) or not str(who):
            raise LangBotInputError("an At component needs 'target' (or 'display')")
        return f"@{who}"
    if kind == "AtAll":
        return "@all"
    raise _unsupported(
        f"cannot carry {kind} components to the agent (no provider here takes {kind.lower()} content); "
        "this gateway takes Plain, At, AtAll, Quote, Image and Source"
    )


def _flatten(chain: list[Any], depth: int) -> str:
    """The text of a quoted chain: Plain, mentions, nested quotes' text; anything else as ``[Type]``."""
    out: list[str] = []
    for component in chain:
        kind = _kind(component)
        if kind == "Quote" and depth < MAX_QUOTE_DEPTH and isinstance(component.get("origin"), list):
            out.append(_flatten(component["origin"], depth + 1))
        elif kind in ("Plain", "At", "AtAll"):
            out.append(_inline(component, kind))
        elif kind not in _METADATA:
            out.append(f"[{kind}]")
    return "".join(out)


def _sniff(raw: bytes) -> str | None:
    for magic, media_type in _MAGIC:
        if raw.startswith(magic):
            return media_type
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _stored_image(component: dict[str, Any], image: ImagePart) -> dict[str, Any]:
    """The Image as history keeps it: everything but the base64 data (bounded transcripts)."""
    kept = {k: v for k, v in component.items() if k != "base64"}
    if image.data is not None:
        kept.update({"media_type": image.media_type, "size": image.size})
        if isinstance(kept.get("url"), str) and kept["url"].startswith("data:"):
            kept.pop("url")
    return kept


def _unsupported(message: str) -> LangBotInputError:
    return LangBotInputError(message, "unsupported_component")


def _frame(kind: str, data: Any) -> bytes:
    return _json.dumps({"type": kind, "data": data})


def encode_error(message: str, code: str | None = None, retry_after_ms: int | None = None) -> bytes:
    """An ``error`` frame; ``code``/``retry_after_ms`` only when given."""
    data: dict[str, Any] = {"message": message}
    if code is not None:
        data["code"] = code
    if retry_after_ms is not None:
        data["retry_after_ms"] = retry_after_ms
    return _frame("error", data)


def encode_connected(connection_id: str, pipeline_uuid: str, session_type: str) -> bytes:
    return _frame(
        "connected",
        {"connection_id": connection_id, "pipeline_uuid": pipeline_uuid, "session_type": session_type},
    )


def encode_broadcast(message: Any, ts_ms: int) -> bytes:
    return _frame("broadcast", {"message": message, "timestamp": iso(ts_ms)})


def encode_response(msg_id: int, content: str, is_final: bool, ts_ms: int) -> bytes:
    """One reply chunk; ``content`` is the whole answer so far."""
    return _frame(
        "response",
        {
            "id": msg_id,
            "role": "assistant",
            "content": content,
            "message_chain": [{"type": "Plain", "text": content}],
            "is_final": is_final,
            "timestamp": iso(ts_ms),
        },
    )


def translate(event: str, payload: dict[str, Any], msg_id: int) -> bytes | None:
    """The LangBot frame for one core run event, or None when LangBot has no equivalent.

    Every assistant ``agent`` event becomes a chunk (its text is cumulative); the
    ``chat`` final becomes the ``is_final`` chunk, and errors an error frame.
    """
    if event == "agent":
        data = payload.get("data") or {}
        if payload.get("stream") == "assistant":
            return encode_response(msg_id, str(data.get("text", "")), False, int(payload.get("ts", 0)))
        return None
    if event == "chat":
        state = payload.get("state")
        message = payload.get("message") or {}
        ts = int(message.get("timestamp", 0))
        if state == "final" or state == "aborted":
            parts = message.get("content") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            return encode_response(msg_id, text, True, ts)
        if state == "error":
            return encode_error(str(payload.get("errorMessage") or "run failed"))
    return None


def history_entry(msg: MessageRecord) -> dict[str, Any]:
    """A transcript entry as LangBot's history endpoint shows it (chain kept as sent)."""
    chain = msg.meta.get("message_chain") if isinstance(msg.meta, dict) else None
    return {
        "id": msg.id,
        "role": msg.role,
        "content": msg.text,
        "message_chain": chain if isinstance(chain, list) else [{"type": "Plain", "text": msg.text}],
        "timestamp": iso(msg.ts_ms),
    }
