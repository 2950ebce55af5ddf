"""The bench's table and target checks, on made-up figures (no sockets, no servers)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.runner import raw_results, render, targets
from bench.scenarios import LOWER, Figure, Plan

S1 = "S1 fan-out"


def _figs(*, stall_bit: bool = True, openclaw_reached: int = 1000) -> list[Figure]:
    return [
        Figure(S1, "delivered events/s (1000 clients, peak)", "agenthub", 60_000, "ev/s", gen_cpu_pct=80),
        Figure(S1, "delivered events/s (1000 clients, peak)", "ws-broadcast", 50_000, "ev/s"),
        Figure(S1, "delivered events/s (1000 clients, peak)", "starlette-naive", 25_000, "ev/s"),
        Figure(S1, "p99 latency at half peak, 30 pub/s (ms)", "agenthub", 12.0, "ms", LOWER),
        Figure(S1, "delivered events/s, no-stall reference rounds", "agenthub", 50_000, "ev/s"),
        Figure(
            S1, "delivered events/s with 10 stalled clients", "agenthub", 48_000, "ev/s", extra={"stall_bit": stall_bit}
        ),
        Figure("S2 idle", "RSS per idle connection at 1,000 (KiB)", "agenthub", 15.0, "KiB", LOWER),
        Figure(
            "S2 idle",
            "RSS per idle connection at 1,000 (KiB)",
            "openclaw",
            100.0,
            "KiB",
            LOWER,
            at="" if openclaw_reached >= 1000 else f"at {openclaw_reached}",
            extra={"opened": openclaw_reached},
        ),
        Figure(
            "S2 idle",
            "RSS per idle connection at 10,000 (KiB)",
            "agenthub",
            17.0,
            "KiB",
            LOWER,
            extra={"opened": 10_000, "still_open": 10_000},
        ),
        Figure("S2 idle", "server CPU while 10,000 idle (% of a core)", "agenthub", 1.5, "%", LOWER),
        Figure("S4 handshakes", "connect+hello-ok+close per second (token + signed device)", "agenthub", 900, "/s"),
        Figure("S4 handshakes", "connect+hello-ok+close per second (token + signed device)", "openclaw", 100, "/s"),
    ]


def _met(figs: list[Figure]) -> dict[str, bool | None]:
    return {text: ok for _, text, ok in targets(figs, Plan.make(False))}


def test_targets_judge_ratios_and_skip_missing_figures() -> None:
    met = _met(_figs())
    assert met[">= 80% of (a) delivered events/s"] is True
    assert met[">= 3x (b) delivered events/s"] is False
    assert met["p99 <= 20 ms at half the peak rate"] is True
    assert met["<= 20 KiB RSS per idle connection"] is True
    assert met["10,000 held, idle CPU < 5% of a core"] is True
    assert met["<= half of OpenClaw's RSS per connection (at 1,000 connections each)"] is True
    assert met[">= 2,000 handshakes/s"] is False
    assert met[">= 3x OpenClaw's handshakes/s"] is True
    assert met["zero drops / reordering"] is None  # no S3 figure: not judged


STALL = "stalled clients: >= 85% of the interleaved no-stall rounds' delivered events/s (n/a unless the stall bit)"


def test_the_stall_target_is_judged_only_when_the_stall_bit() -> None:
    assert _met(_figs(stall_bit=True))[STALL] is True
    assert _met(_figs(stall_bit=False))[STALL] is None
    slow = _figs()
    slow[5].value = 30_000  # 60% of the reference rounds: no fallback rescues it
    assert _met(slow)[STALL] is False


def test_openclaw_rss_is_compared_only_at_a_count_both_reached() -> None:
    assert (
        _met(_figs(openclaw_reached=640))["<= half of OpenClaw's RSS per connection (at 1,000 connections each)"]
        is None
    )


def test_render_prints_every_figure_with_its_ratios(tmp_path: Path) -> None:
    table = render(_figs(openclaw_reached=640), Plan.make(False), ["# bench"], [])
    assert "| S1 fan-out | delivered events/s (1000 clients, peak) | 60,000 · gen 80% | 50,000 | 25,000 | – |" in table
    assert "| 1.20x | 2.40x | – |" in table
    assert "| S4 handshakes |" in table and "9.00x" in table
    assert "100.0 (at 640)" in table  # a stack that fell short says so in its cell
    raw = raw_results(_figs(), Plan.make(False), ["# bench"], [], targets(_figs(), Plan.make(False)))
    assert json.loads(json.dumps(raw))["figures"][0]["value"] == 60_000
