"""How a reply is cut into messages, and what the chat shows when a run ends."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agenthub.channels.streaming import final_text, split_text
from agenthub.core.runs import Run, RunStatus


def test_split_prefers_line_then_word_breaks() -> None:
    assert split_text("short", 10) == ["short"]
    assert split_text("", 10) == [""]
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split_text("aaa\nbbbb cc dd", 10) == ["aaa\nbbbb", "cc dd"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]  # no break: a hard cut


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=300), st.integers(min_value=16, max_value=64))
def test_split_is_bounded_lossless_and_stable_as_text_grows(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())  # only whitespace at a cut is dropped
    # Streaming: once a piece is followed by another, growing the text never changes it.
    longer = split_text(text + " more words here", limit)
    assert pieces[:-1] == longer[: len(pieces) - 1]


@pytest.mark.parametrize(
    ("status", "text", "error", "shown"),
    [
        (RunStatus.OK, "All done.", None, "All done."),
        (RunStatus.OK, "", None, "(no reply)"),
        (RunStatus.ABORTED, "Half", None, "Half\n\n(stopped)"),
        (RunStatus.ABORTED, "", None, "(stopped)"),
        (RunStatus.ERROR, "", "provider down", "(error: provider down)"),
    ],
)
def test_final_text(status: RunStatus, text: str, error: str | None, shown: str) -> None:
    async def build() -> Run:  # Run holds an asyncio.Event: make it inside a loop
        return Run("r1", "s", "m", "o", 0, status=status, text=text, error=error)

    assert final_text(asyncio.run(build())) == shown
