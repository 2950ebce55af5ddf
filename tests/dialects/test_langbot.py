"""LangBot dialect, sans-I/O: frame decoding and run-event translation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agenthub.core.runtime import ImagePart
from agenthub.core.store import MessageRecord
from agenthub.dialects import langbot as lb


def test_decode_message_keeps_the_whole_chain() -> None:
    chain = [{"type": "Plain", "text": "hi "}, {"type": "At", "target": 1}, {"type": "Plain", "text": "there"}]
    cmd = lb.decode(json.dumps({"type": "message", "message": chain}))
    assert cmd == lb.UserMessage(chain, "hi @1there")
    assert lb.decode(b'{"type": "ping"}') == lb.Ping()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("{", "invalid JSON"),
        ("3", "JSON object"),
        ('{"type": "hello"}', "unknown message type"),
        ('{"type": "message", "message": []}', "non-empty"),
        ('{"type": "message", "message": [1]}', "string 'type'"),
        ('{"type": "message", "message": [{"type": "Plain"}]}', "string 'text'"),
        ('{"type": "message", "message": [{"type": "Plain", "text": "  "}]}', "no text and no image"),
        ('{"type": "message", "message": [{"type": "At"}]}', "needs 'target'"),
        ('{"type": "message", "message": [{"type": "Quote", "origin": "x"}]}', "needs 'origin'"),
    ],
)
def test_decode_rejects_bad_frames(frame: str, error: str) -> None:
    with pytest.raises(lb.LangBotInputError, match=error):
        lb.decode(frame)


def test_translate_streams_cumulative_chunks_then_final() -> None:
    chunk = lb.translate("agent", {"stream": "assistant", "ts": 0, "data": {"text": "Hel", "delta": "l"}}, 7)
    assert chunk is not None
    data = json.loads(chunk)["data"]
    assert data["id"] == 7 and data["content"] == "Hel" and data["is_final"] is False
    final = lb.translate(
        "chat", {"state": "final", "message": {"content": [{"type": "text", "text": "Hello"}], "timestamp": 1}}, 7
    )
    assert final is not None and json.loads(final)["data"]["is_final"] is True
    error = lb.translate("chat", {"state": "error", "errorMessage": "boom"}, 7)
    assert error is not None and json.loads(error) == {"type": "error", "data": {"message": "boom"}}
    assert lb.translate("agent", {"stream": "thinking", "data": {}}, 7) is None
    assert lb.translate("chat", {"state": "delta", "message": {}}, 7) is None


def test_history_entry_echoes_the_chain_as_sent() -> None:
    chain = [{"type": "Plain", "text": "x"}, {"type": "Image", "url": "u"}]
    entry = lb.history_entry(MessageRecord("k", "user", "x", 0, None, {"message_chain": chain}, 3))
    assert entry["message_chain"] == chain and entry["id"] == 3
    plain = lb.history_entry(MessageRecord("k", "assistant", "y", 0))
    assert plain["message_chain"] == [{"type": "Plain", "text": "y"}]
    assert lb.session_key("p", "group") == "langbot:p:group"


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(24)).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(12)).decode()
WEBP = base64.b64encode(b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(4)).decode()


def _message(*chain: dict[str, Any]) -> lb.UserMessage:
    cmd = lb.decode(json.dumps({"type": "message", "message": list(chain)}), lb.ChainLimits(2, 64))
    assert isinstance(cmd, lb.UserMessage)
    return cmd


def test_mentions_and_quotes_become_text_context() -> None:
    quote = {
        "type": "Quote",
        "id": 9,
        "sender_id": "alice",
        "origin": [{"type": "Plain", "text": "lunch at "}, {"type": "At", "target": 7, "display": "Bob"},
                   {"type": "Image", "url": "https://e.x/menu.png"}, {"type": "Plain", "text": "?"}],
    }  # fmt: skip
    source = {"type": "Source", "id": 1, "time": 0}
    cmd = _message(source, quote, {"type": "AtAll"}, {"type": "Plain", "text": " yes, "}, {"type": "At", "target": 5})
    assert cmd.text == "[quoting alice: lunch at @Bob[Image]?]\n@all yes, @5"
    assert cmd.images == () and cmd.chain == [source, quote, {"type": "AtAll"}, {"type": "Plain", "text": " yes, "},
                                              {"type": "At", "target": 5}]  # fmt: skip


def test_images_become_image_parts_checked_by_their_bytes() -> None:
    cmd = _message({"type": "Plain", "text": "what is it?"}, {"type": "Image", "base64": PNG})
    assert cmd.text == "what is it?"
    assert cmd.images == (ImagePart(media_type="image/png", data=PNG, size=32),)
    assert cmd.chain[1] == {"type": "Image", "media_type": "image/png", "size": 32}  # no base64 in history
    cmd = _message({"type": "Image", "url": f"data:image/jpeg;base64,{JPEG}"}, {"type": "Image", "base64": WEBP})
    assert cmd.text == "" and [i.media_type for i in cmd.images] == ["image/jpeg", "image/webp"]
    cmd = _message({"type": "Image", "url": "https://e.x/cat.gif", "image_id": "abc"})
    assert cmd.images == (ImagePart(url="https://e.x/cat.gif"),) and cmd.chain[0]["url"] == "https://e.x/cat.gif"


@pytest.mark.parametrize(
    ("component", "error"),
    [
        ({"type": "Voice", "url": "https://e.x/v.amr"}, "cannot carry Voice components"),
        ({"type": "File", "name": "a.pdf", "size": 3}, "cannot carry File components"),
        ({"type": "Forward", "display": "x"}, "cannot carry Forward components"),
        ({"type": "Sticker"}, "cannot carry Sticker components"),
        ({"type": "Image", "path": "/etc/passwd"}, "file on the sender's machine"),
        ({"type": "Image", "image_id": "abc"}, "image_id alone"),
        ({"type": "Image", "url": "file:///etc/passwd"}, "must be http"),
        ({"type": "Image", "base64": "!!!"}, "not valid base64"),
        ({"type": "Image", "base64": base64.b64encode(b"hello world!").decode()}, "unsupported image data"),
        ({"type": "Image", "url": f"data:image/gif;base64,{PNG}"}, "unsupported image data"),
        ({"type": "Image", "base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(90)).decode()}, "too large"),
    ],
)
def test_what_cannot_be_carried_is_refused_never_dropped(component: dict[str, Any], error: str) -> None:
    with pytest.raises(lb.LangBotInputError, match=error) as refused:
        _message({"type": "Plain", "text": "hi"}, component)
    assert refused.value.code == "unsupported_component"


def test_image_count_is_bounded() -> None:
    image = {"type": "Image", "base64": PNG}
    assert len(_message(image, image).images) == 2
    with pytest.raises(lb.LangBotInputError, match="too many images: at most 2"):
        _message(image, image, image)
