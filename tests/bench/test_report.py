"""The bench's table and target checks, on made-up figures (no sockets, no servers)."""

from __future__ import annotations

from bench.runner import render, targets
from bench.scenarios import LOWER, Figure, Plan


def _figs() -> list[Figure]:
    s1 = "S1 fan-out"
    return [
        Figure(s1, "delivered events/s (1000 clients, peak)", "agenthub", 60_000, "ev/s", gen_cpu_pct=80),
        Figure(s1, "delivered events/s (1000 clients, peak)", "ws-broadcast", 50_000, "ev/s"),
        Figure(s1, "delivered events/s (1000 clients, peak)", "starlette-naive", 25_000, "ev/s"),
        Figure(s1, "p99 latency at half peak, 30 pub/s (ms)", "agenthub", 12.0, "ms", LOWER),
        Figure(
            "S2 idle", "RSS per idle connection (KiB)", "agenthub", 15.0, "KiB", LOWER, note="10000/10000 connected"
        ),
        Figure("S2 idle", "RSS per idle connection (KiB)", "openclaw", 100.0, "KiB", LOWER),
        Figure("S4 handshakes", "connect+hello-ok+close per second (token + signed device)", "agenthub", 900, "/s"),
        Figure("S4 handshakes", "connect+hello-ok+close per second (token + signed device)", "openclaw", 100, "/s"),
    ]


def test_targets_judge_ratios_and_skip_missing_figures() -> None:
    met = {text: ok for _, text, ok in targets(_figs(), Plan.make(False))}
    assert met[">= 80% of (a) delivered events/s"] is True
    assert met[">= 3x (b) delivered events/s"] is False
    assert met["p99 <= 20 ms at half the peak rate"] is True
    assert met["<= half of OpenClaw's RSS per connection"] is True
    assert met[">= 2,000 handshakes/s"] is False
    assert met[">= 3x OpenClaw's handshakes/s"] is True
    assert met["zero drops / reordering"] is None  # no S3 figure: not judged


def test_render_prints_every_figure_with_its_ratios() -> None:
    table = render(_figs(), Plan.make(False), ["# bench"], [])
    assert "| S1 fan-out | delivered events/s (1000 clients, peak) | 60,000 · gen 80% | 50,000 | 25,000 | – |" in table
    assert "| 1.20x | 2.40x | – |" in table
    assert "| S4 handshakes |" in table and "9.00x" in table
