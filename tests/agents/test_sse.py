from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agenthub.agents._sse import SSEDecoder, SSEEvent, aiter_sse


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.close()


STREAM = (
    b": keep-alive comment\n\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: first\ndata:second\ndata:  third\n\n"
    b"id: 7\nretry: 100\nunknown: x\ndata\n\n"
    b'data: {"text": "line\xe2\x80\xa8sep \xc3\xa9\x0c"}\n\n'
)
EXPECTED = [
    SSEEvent("message_start", '{"a": 1}'),
    SSEEvent("message", "first\nsecond\n third"),
    SSEEvent("message", "", id="7"),
    SSEEvent("message", '{"text": "line\u2028sep \u00e9\x0c"}', id="7"),
]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_any_line_ending_and_any_chunking(newline: bytes, size: int) -> None:
    body = b"\xef\xbb\xbf" + STREAM.replace(b"\n", newline)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert decode_all(chunks) == EXPECTED


def test_final_event_without_blank_line_is_dispatched() -> None:
    assert decode_all([b"data: [DONE]"]) == [SSEEvent("message", "[DONE]")]
    assert decode_all([b"data: [DONE]\n"]) == [SSEEvent("message", "[DONE]")]


def test_event_name_resets_after_dispatch() -> None:
    events = decode_all([b"event: ping\ndata: 1\n\ndata: 2\n\nevent: lonely\n\ndata: 3\n\n"])
    assert [e.event for e in events] == ["ping", "message", "message"]


async def test_async_wrapper() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: a\n"
        yield b"\ndata: b\n\n"

    assert [e.data async for e in aiter_sse(source())] == ["a", "b"]
