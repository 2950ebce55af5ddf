"""The end checks: each turns what the soak recorded into one row of the table, passed or failed.

They read the stored truth directly (the SQLite database, after the last
gateway stopped) and the gateway's own logs, and compare them with what the
clients were told (the ledger). ``tests/soak/test_checks.py`` feeds each one a
fault, so each is known to fail when it should.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gateway import Incarnation
from .ledger import Acked, Ledger, RunSeen

__all__ = [
    "Row",
    "Stored",
    "check_caps",
    "check_guessing",
    "check_honest",
    "check_hostile_answers",
    "check_isolation",
    "check_latency",
    "check_logs",
    "check_order",
    "check_outcomes",
    "check_rss",
    "check_transcripts",
    "percentile",
    "render",
]

TERMINAL = {"ok", "error", "aborted", "timeout"}
MIB = 1024 * 1024


@dataclass
class Row:
    check: str
    passed: bool
    measured: str
    details: list[str] = field(default_factory=list)


@dataclass
class Stored:
    """What the database holds at the end: user messages and run outcomes."""

    user_messages: set[tuple[str, str]]  # (session_key, text)
    user_message_runs: dict[str, tuple[str, str]]  # run_id -> (session_key, text)
    runs: dict[str, tuple[str, str, int | None, str | None]]  # run_id -> (status, session, started_ms, error)

    @classmethod
    def read(cls, db: Path) -> Stored:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            messages = con.execute("SELECT session_key, text, run_id FROM messages WHERE role = 'user'").fetchall()
            runs = con.execute("SELECT run_id, status, session_key, started_ms, error FROM runs").fetchall()
        finally:
            con.close()
        return cls(
            {(s, t) for s, t, _ in messages},
            {r: (s, t) for s, t, r in messages if r is not None},
            {r: (status, s, started, error) for r, status, s, started, error in runs},
        )


def check_transcripts(acked: Iterable[Acked], stored: Stored) -> Row:
    """Every acknowledged message is in its session's stored transcript (a run cancelled before it began excepted)."""
    total = missing = withdrawn = 0
    details: list[str] = []
    by_dialect: Counter[str] = Counter()
    for msg in acked:
        total += 1
        if msg.run_id is not None:
            found = stored.user_message_runs.get(msg.run_id) == (msg.session_key, msg.text)
        else:
            found = (msg.session_key, msg.text) in stored.user_messages
        if found:
            continue
        run = stored.runs.get(msg.run_id) if msg.run_id is not None else None
        if run is not None and run[0] == "aborted" and run[2] is None:
            withdrawn += 1  # aborted before it started: the user withdrew it
            continue
        missing += 1
        by_dialect[msg.dialect] += 1
        if len(details) < 10:
            state = f"run stored as {run[0]} ({run[3]})" if run else "no stored run"
            details.append(f"{msg.dialect} {msg.session_key} run {msg.run_id}: {msg.text[:60]!r} missing; {state}")
    measured = f"{total} acknowledged, {missing} missing" + (f" ({dict(by_dialect)})" if missing else "")
    if withdrawn:
        measured += f", {withdrawn} cancelled before they began"
    return Row("no acknowledged message lost from any transcript", total > 0 and missing == 0, measured, details)


def check_outcomes(runs: Iterable[RunSeen], stored: Stored) -> Row:
    """Every stored run is terminal; every run a client learned of is stored, with the outcome the client saw."""
    details: list[str] = []
    unfinished = [(r, v) for r, v in stored.runs.items() if v[0] not in TERMINAL]
    for run_id, (status, session, _, _) in unfinished[:5]:
        details.append(f"run {run_id} ({session}) stored as {status!r}")
    known = absent = mismatched = 0
    for seen in runs:
        known += 1
        row = stored.runs.get(seen.run_id)
        if row is None:
            absent += 1
            if len(details) < 10:
                details.append(f"{seen.dialect} run {seen.run_id} ({seen.session_key}) is not stored")
            continue
        if seen.outcome is not None and row[0] not in seen.outcome.split("|"):
            mismatched += 1
            if len(details) < 10:
                details.append(
                    f"{seen.dialect} run {seen.run_id}: client saw {seen.outcome} ({seen.source}), stored {row[0]}"
                )
    measured = (
        f"{len(stored.runs)} stored, {len(unfinished)} without an outcome; "
        f"{known} known to clients, {absent} not stored, {mismatched} stored otherwise than seen"
    )
    ok = len(stored.runs) > 0 and not unfinished and absent == 0 and mismatched == 0
    return Row("every run ended with a stored outcome", ok, measured, details)


def check_order(ledger: Ledger) -> Row:
    frames = sum(ledger.frames.values())
    bad = sum(ledger.violations.values())
    measured = f"{frames} events judged, {bad} reordered, duplicated or missing"
    if bad:
        measured += f" {dict(ledger.violations)}"
    gaps = sum(ledger.gaps.values())
    if gaps:
        measured += f"; {gaps} droppable deltas skipped (backpressure)"
    return Row(
        "no client saw a reordered or duplicated event",
        frames > 0 and bad == 0,
        measured,
        ledger.violation_examples[:10],
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def check_latency(
    samples: list[tuple[float, str, float]], windows: list[tuple[float, float]], bound_ms: float, min_samples: int = 50
) -> Row:
    """Honest round trips (probe) taken while the hostile load ran, p99 within ``bound_ms``."""
    inside = [s for s in samples if any(a <= s[0] <= b for a, b in windows)]
    values = [ms for _, _, ms in inside]
    p50, p99 = percentile(values, 50), percentile(values, 99)
    by_kind: dict[str, list[float]] = {}
    for _, kind, ms in inside:
        by_kind.setdefault(kind, []).append(ms)
    details = [
        f"{kind}: n={len(v)} p50={percentile(v, 50):.1f} ms p99={percentile(v, 99):.1f} ms max={max(v):.1f} ms"
        for kind, v in sorted(by_kind.items())
    ]
    seconds = sum(b - a for a, b in windows)
    measured = (
        f"p99 {p99:.1f} ms (bound {bound_ms:g} ms), p50 {p50:.1f} ms, max {max(values, default=0):.1f} ms; "
        f"{len(values)} round trips in {seconds:.0f} s of hostile load"
    )
    ok = len(values) >= min_samples and p99 <= bound_ms
    if len(values) < min_samples:
        details.append(f"too few samples ({len(values)} < {min_samples}) to judge")
    return Row("honest clients' p99 within the bound during the hostile load", ok, measured, details)


def check_rss(baseline: int, peak: int, after: int, slack_mib: float, slack_share: float) -> Row:
    allowed = max(slack_mib * MIB, slack_share * baseline)
    growth = after - baseline
    measured = (
        f"baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB, after {after / MIB:.1f} MiB: "
        f"{growth / MIB:+.1f} MiB (allowed {allowed / MIB:.1f} MiB)"
    )
    return Row("RSS back near its baseline after the load (leak check)", baseline > 0 and growth <= allowed, measured)


def check_logs(incarnations: list[Incarnation]) -> Row:
    details: list[str] = []
    tracebacks = 0
    for inc in incarnations:
        found = inc.tracebacks()
        tracebacks += len(found)
        details += [f"gateway-{inc.number}.log:\n{tb}" for tb in found[:3]]
    bad_exits = [
        inc for inc in incarnations if inc.how == "died" or (inc.how == "stopped" and inc.exit_code not in (0, None))
    ]
    details += [f"gateway {inc.number} {inc.how} with exit code {inc.exit_code}" for inc in bad_exits]
    ends = Counter(inc.how for inc in incarnations)
    measured = f"{tracebacks} tracebacks in {len(incarnations)} logs ({dict(ends)}); {len(bad_exits)} bad exits"
    return Row("no traceback in the log", tracebacks == 0 and not bad_exits, measured, details[:6])


def _problems(counts: dict[str, int], words: tuple[str, ...]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k.startswith("problem:") and any(w in k for w in words)}


def check_guessing(counts: dict[str, int], examples: dict[str, list[str]]) -> Row:
    guesses = {k: v for k, v in counts.items() if k.startswith("guess ")}
    total = sum(guesses.values())
    accepted = sum(v for k, v in guesses.items() if k.endswith(": accepted"))
    locked = sum(v for k, v in guesses.items() if k.endswith(": locked out"))
    routes = sorted({k.split(":")[0].removeprefix("guess ") for k in guesses})
    measured = f"{total} wrong secrets on {len(routes)} routes: {accepted} accepted, {locked} answered 'locked out'"
    details = [f"{k}: {v}" for k, v in sorted(guesses.items())]
    details += [e for k, v in examples.items() if "guessed" in k for e in v]
    return Row(
        "credential guesses refused and locked out", total > 0 and accepted == 0 and locked > 0, measured, details
    )


def check_hostile_answers(counts: dict[str, int], examples: dict[str, list[str]]) -> Row:
    """Hostile frames and bodies got their typed errors: no internal error, no 5xx, no untyped answer."""
    judged = sum(v for k, v in counts.items() if not k.startswith(("guess ", "problem:")))
    bad = _problems(counts, ("internal", "untyped", "answered 5", "without a JSON", "1011", "slowloris", "5xx"))
    measured = f"{judged} hostile exchanges, {sum(bad.values())} answered badly" + (f" {bad}" if bad else "")
    details = [e for k in bad for e in examples.get(k, [])][:10]
    return Row("hostile input answered with typed errors", judged > 0 and not bad, measured, details)


def check_isolation(counts: dict[str, int], examples: dict[str, list[str]]) -> Row:
    tries = sum(v for k, v in counts.items() if "alice's task hidden" in k or k.startswith("agentbox junk"))
    bad = _problems(counts, ("alice", "another user"))
    measured = f"{tries} tries by mallory, {sum(bad.values())} saw another user's data"
    return Row(
        "no user saw another user's data",
        tries > 0 and not bad,
        measured,
        [e for k in bad for e in examples.get(k, [])],
    )


def check_caps(counts: dict[str, int], preauth_cap: int) -> Row:
    """Per-IP caps held: anonymous sockets past ``security.max_preauth_per_ip`` refused, slowloris heads cut."""
    rounds, most = counts.get("flood: rounds", 0), counts.get("flood: most accepted at once", 0)
    cut = counts.get("slowloris: cut by the gateway", 0)
    held = counts.get("problem: slowloris connection held 60 s", 0)
    measured = (
        f"{rounds} floods of 80 anonymous sockets from one IP: at most {most} accepted (cap {preauth_cap}); "
        f"{cut} slowloris heads cut, {held} held"
    )
    return Row(
        "per-IP caps held (anonymous sockets, slow request heads)",
        rounds > 0 and most <= preauth_cap and cut > 0 and not held,
        measured,
    )


def check_honest(ledger: Ledger) -> Row:
    bad = sum(ledger.honest_errors.values())
    measured = f"{bad} honest requests refused or failed" + (f" {dict(ledger.honest_errors)}" if bad else "")
    return Row("honest clients kept working", bad == 0, measured, ledger.honest_error_examples[:10])


def render(rows: list[Row], info: list[str]) -> str:
    lines = ["| check | result | measured |", "|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.check} | {'PASS' if row.passed else '**FAIL**'} | {row.measured.replace('|', '/')} |")
    out = "\n".join(lines) + "\n"
    if info:
        out += "\n" + "\n".join(f"- {line}" for line in info) + "\n"
    failed = [r for r in rows if not r.passed and r.details]
    for row in failed:
        out += (
            f"\n### {row.check}: FAIL\n\n"
            + "\n".join(f"    {d}" for line in row.details for d in line.splitlines())
            + "\n"
        )
    return out


def summary(rows: list[Row]) -> dict[str, Any]:
    return {"passed": all(r.passed for r in rows), "rows": [r.__dict__ for r in rows]}


def median(values: list[int]) -> int:
    return int(statistics.median(values)) if values else 0
