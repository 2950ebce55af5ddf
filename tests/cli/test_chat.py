"""``agenthub chat`` under a pseudo-terminal, against a real gateway."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pexpect

from ..conftest import child_env

PROMPT = "you>"


def spawn(gw: Any, tmp_path: Path, *extra: str) -> Any:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agenthub", "chat", "--url", gw.url, "--data-dir", str(tmp_path / "cli"), *extra],
        env=child_env(PYTHONUNBUFFERED="1", TERM="dumb", COLUMNS="120"),
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 120),
    )
    child.expect(PROMPT)
    return child


def test_a_message_streams_with_tool_summary_and_history(make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 20}})
    child = spawn(gw, tmp_path, "--session", "term")
    try:
        child.sendline("what is 12 times 7")
        child.expect("calculator")  # the tool call, summarised
        child.expect("84")
        # The answer arrives in several writes, word by word.
        chunks: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                chunks.append(child.read_nonblocking(4096, timeout=0.5))
            except pexpect.TIMEOUT:
                continue
            if PROMPT in chunks[-1]:
                break
        text = "".join(chunks)
        assert "demo agent" in text and PROMPT in text
        assert len([c for c in chunks if c.strip()]) >= 3
        child.sendline("/history")
        child.expect("user:.*what is 12 times 7")
        child.expect(PROMPT)
        child.sendline("/sessions")
        child.expect("term")
        child.expect(PROMPT)
        child.sendline("/reset")
        child.expect("reset")
        child.expect(PROMPT)
        child.sendline("/history")
        child.expect(r"\(empty\)")
        child.expect(PROMPT)
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_ctrl_c_aborts_the_run_and_a_second_quits(make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 60}})
    child = spawn(gw, tmp_path)
    try:
        child.sendline("tell me a story [long]")
        child.expect("demo agent")
        child.sendintr()
        child.expect("aborted")
        child.expect(PROMPT)
        # Still usable after the abort.
        child.sendline("/history")
        child.expect("assistant:")
        child.expect(PROMPT)
        child.sendline("another long one [long]")
        child.expect("demo agent")
        child.sendintr()
        child.expect("Stopping")
        child.sendintr()
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
