"""The soak's end checks (soak/checks.py) on made-up records: each passes on a clean run and fails on its fault.

``python -m soak --fault NAME`` shows the same against a live gateway (soak/README.md);
these keep the judging itself honest without starting anything.
"""

from __future__ import annotations

from pathlib import Path

from agenthub.core.store import MessageRecord, RunRecord
from agenthub.storage.sqlite import SqliteStore
from soak import checks
from soak.gateway import Incarnation
from soak.ledger import Acked, Ledger, RunSeen

MIB = 1024 * 1024


def stored(**runs: tuple[str, int | None]) -> checks.Stored:
    return checks.Stored(
        {("s", "hello"), ("s", "again")},
        {"r1": ("s", "hello"), "r2": ("s", "again")},
        {run: (status, "s", started, None) for run, (status, started) in runs.items()},
    )


async def test_stored_reads_the_real_schema(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "agenthub.db"))
    await store.open()
    try:
        await store.ensure_session("s", 1)
        await store.put_run(RunRecord("r1", "s", "ok", 1, 2, 3, None, "hi", "test", None))
        await store.append_message(MessageRecord("s", "user", "hello", 2, "r1", {}))
        await store.append_message(MessageRecord("s", "assistant", "hi", 3, "r1", {}))
    finally:
        await store.close()
    found = checks.Stored.read(tmp_path / "agenthub.db")
    assert found.user_messages == {("s", "hello")} and found.user_message_runs == {"r1": ("s", "hello")}
    assert found.runs == {"r1": ("ok", "s", 2, None)}


def test_transcripts() -> None:
    ok = checks.check_transcripts([Acked("native", "s", "hello", "r1"), Acked("langbot", "s", "again", None)], stored())
    assert ok.passed, ok
    lost = checks.check_transcripts([Acked("native", "s", "lost", "r3")], stored(r3=("error", None)))
    assert not lost.passed and "1 missing" in lost.measured and "stored as error" in lost.details[0]
    withdrawn = checks.check_transcripts([Acked("agentbox", "s", "never ran", "r4")], stored(r4=("aborted", None)))
    assert withdrawn.passed and "1 cancelled before they began" in withdrawn.measured
    assert not checks.check_transcripts([], stored()).passed  # nothing acknowledged proves nothing


def test_outcomes() -> None:
    seen = [RunSeen("native", "r1", "s", "ok", "event"), RunSeen("agentbox", "r2", "s", "error|timeout", "rest")]
    assert checks.check_outcomes(seen, stored(r1=("ok", 1), r2=("timeout", 1))).passed
    assert not checks.check_outcomes(seen, stored(r1=("ok", 1), r2=("running", 1))).passed  # no outcome
    assert not checks.check_outcomes(seen, stored(r1=("ok", 1))).passed  # r2 never stored
    mismatch = checks.check_outcomes(seen, stored(r1=("aborted", 1), r2=("error", 1)))
    assert not mismatch.passed and "client saw ok" in mismatch.details[0]


def test_order() -> None:
    ledger = Ledger()
    ledger.frames["native"] = 10
    assert checks.check_order(ledger).passed
    ledger.violation("native", "agent seq 2 after 2")
    assert not checks.check_order(ledger).passed


def test_latency() -> None:
    fast = [(float(t), "native health", 2.0) for t in range(100)]
    assert checks.check_latency(fast, [(0, 100)], 500).passed
    stalled = fast + [(50.5, "native health", 12_000.0)] * 5
    assert not checks.check_latency(stalled, [(0, 100)], 500).passed
    assert checks.check_latency(stalled, [(0, 50)], 500).passed  # outside the judged windows
    assert not checks.check_latency(fast[:10], [(0, 100)], 500).passed  # too few to judge


def test_rss() -> None:
    assert checks.check_rss(100 * MIB, 140 * MIB, 110 * MIB, 24, 0.1).passed
    assert not checks.check_rss(100 * MIB, 300 * MIB, 300 * MIB, 24, 0.1).passed


def test_logs(tmp_path: Path) -> None:
    clean = tmp_path / "gateway-1.log"
    clean.write_text("INFO ready\n")
    broken = tmp_path / "gateway-2.log"
    broken.write_text("ERROR oops\nTraceback (most recent call last):\n  File x\nKeyError: 'y'\nINFO on\n")
    assert checks.check_logs([Incarnation(1, 1, clean, 0, how="stopped", exit_code=0)]).passed
    row = checks.check_logs([Incarnation(2, 2, broken, 0, how="killed")])
    assert not row.passed and "KeyError" in row.details[0]
    assert not checks.check_logs([Incarnation(1, 1, clean, 0, how="died", exit_code=1)]).passed
    assert not checks.check_logs([Incarnation(1, 1, clean, 0, how="stopped", exit_code=3)]).passed


def test_hostile_rows() -> None:
    counts = {
        "guess native: refused": 10,
        "guess native: locked out": 5,
        "native junk: typed error INVALID_REQUEST": 3,
        "agentbox: alice's task hidden from mallory": 2,
        "flood: rounds": 1,
        "flood: most accepted at once": 64,
        "slowloris: cut by the gateway": 5,
    }
    for check in (checks.check_guessing, checks.check_hostile_answers, checks.check_isolation):
        assert check(counts, {}).passed
        assert checks.check_caps(counts, 64).passed
    assert not checks.check_guessing({**counts, "guess hooks: accepted": 1}, {}).passed
    assert not checks.check_guessing({"guess native: refused": 10}, {}).passed  # never locked out
    assert not checks.check_hostile_answers({**counts, "problem: internal error answered": 1}, {}).passed
    assert not checks.check_isolation({**counts, "problem: mallory read alice's task": 1}, {}).passed
    assert not checks.check_caps({**counts, "flood: most accepted at once": 65}, 64).passed


def test_honest_and_render() -> None:
    ledger = Ledger()
    assert checks.check_honest(ledger).passed
    ledger.honest_error("native", "chat.history: INVALID_REQUEST")
    row = checks.check_honest(ledger)
    assert not row.passed
    table = checks.render([row], ["2 kills"])
    assert "**FAIL**" in table and "chat.history" in table and "- 2 kills" in table
