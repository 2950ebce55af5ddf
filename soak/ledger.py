"""What the honest clients were told and what they saw, and the order rules they judge it by.

The ledger holds every message the gateway acknowledged (checked against the
stored transcripts at the end), every run a client learned of with the outcome
it saw (checked against the stored outcomes), and every ordering violation.

The views are pure: they take the frames one client received, in order, and
say what broke a rule. ``tests/soak/test_ledger.py`` feeds them duplicated,
reordered and gapped streams, so the rules are known to fail when they should.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Acked", "Ledger", "RunView", "SeqView", "TextView", "seen_outcome"]

MAX_EXAMPLES = 20  # violations and errors kept verbatim per kind (all are counted)
TERMINAL_CHAT = {"final": "ok", "aborted": "aborted", "error": "error"}


def seen_outcome(chat_state: str, error_kind: str | None = None) -> str:
    """The stored run status a terminal ``chat`` state stands for."""
    if chat_state == "error" and error_kind == "timeout":
        return "timeout"
    return TERMINAL_CHAT[chat_state]


@dataclass(frozen=True)
class Acked:
    """A message the gateway acknowledged: it must be in the session's stored transcript."""

    dialect: str
    session_key: str
    text: str
    run_id: str | None


@dataclass
class RunSeen:
    """A run a client started (or learned of), with the outcome the client saw, if any."""

    dialect: str
    run_id: str
    session_key: str
    outcome: str | None = None  # ok | aborted | error | timeout
    source: str = ""  # how the client learned the outcome: event, wait, rest


@dataclass
class Ledger:
    acked: list[Acked] = field(default_factory=list)
    runs: dict[str, RunSeen] = field(default_factory=dict)
    # Ordering: (dialect -> count) of reordered, duplicated or must-deliver-missing events, with examples.
    violations: Counter[str] = field(default_factory=Counter)
    violation_examples: list[str] = field(default_factory=list)
    gaps: Counter[str] = field(default_factory=Counter)  # skipped droppable events (backpressure), by dialect
    frames: Counter[str] = field(default_factory=Counter)  # frames judged, by dialect
    honest_errors: Counter[str] = field(default_factory=Counter)
    honest_error_examples: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # runs, aborts, reconnects, replays, ...

    def ack(self, dialect: str, session_key: str, text: str, run_id: str | None) -> None:
        self.acked.append(Acked(dialect, session_key, text, run_id))
        self.counts[f"{dialect} messages acknowledged"] += 1
        if run_id is not None:
            self.runs.setdefault(run_id, RunSeen(dialect, run_id, session_key))

    def outcome(self, run_id: str, outcome: str, source: str) -> None:
        run = self.runs.get(run_id)
        if run is not None and run.outcome is None:
            run.outcome, run.source = outcome, source

    def violation(self, dialect: str, what: str) -> None:
        self.violations[dialect] += 1
        if len(self.violation_examples) < MAX_EXAMPLES:
            self.violation_examples.append(f"{dialect}: {what}")

    def honest_error(self, dialect: str, what: str) -> None:
        """An honest request refused or failed where it should have worked."""
        self.honest_errors[dialect] += 1
        if len(self.honest_error_examples) < MAX_EXAMPLES:
            self.honest_error_examples.append(f"{dialect}: {what[:300]}")


class SeqView:
    """A stream numbered 1, 2, 3, ... within an epoch: a connection's event ``seq``, a MyAgent session's ``seq``.

    A number at or below the last one is a duplicate or a reorder; a jump is a gap,
    which ``gap_ok`` says is allowed (droppable events skipped for a slow reader)
    or a lost must-deliver event.
    """

    def __init__(self, gap_ok: bool) -> None:
        self.gap_ok = gap_ok
        self.epoch: str | None = None
        self.last = 0

    def see(self, seq: int, epoch: str | None = None) -> tuple[str | None, int]:
        """(violation or None, events skipped) for the next number."""
        if epoch != self.epoch:  # a new stream (after a restart): numbering starts over
            self.epoch, self.last = epoch, 0
        last, self.last = self.last, max(self.last, seq)
        if seq <= last:
            return f"seq {seq} after {last} (duplicate or reordered)", 0
        skipped = seq - last - 1
        if skipped and not self.gap_ok:
            return f"seq {seq} after {last}: {skipped} must-deliver event(s) missing", skipped
        return None, skipped

    def resume(self, after: int, epoch: str | None) -> None:
        """A replay continues after ``after`` of ``epoch`` (a reconnect asked for it)."""
        self.epoch, self.last = epoch, after


class RunView:
    """One run's ``agent``/``chat`` events as one native client received them (OpenClaw's numbering).

    ``agent`` events carry seq 1..n; a ``chat`` event carries the seq of the agent
    event before it, at most one per seq; the assistant text is cumulative; nothing
    follows the terminal chat event. ``joined`` views (a run started elsewhere, or
    seen again after a reconnect without replay) take the first seq they get as
    their start, so only what comes after it is judged.
    """

    def __init__(self, joined: bool = False) -> None:
        self.last_agent = 0
        self.chat_seqs: set[int] = set()
        self.text = ""
        self.ended: str | None = None
        self.joined = joined
        self.skipped = 0
        # A reconnect in progress: the replay's events come first, live ones wait here.
        self.resync_after: int | None = None
        self.buffered: list[tuple[str, dict[str, Any]]] = []

    def live(self, event: str, payload: dict[str, Any]) -> list[str]:
        if self.resync_after is not None:
            self.buffered.append((event, payload))
            return []
        return self._apply(event, payload)

    def rejoin(self) -> None:
        """Seen again on a new connection without a replay: what was missed is a gap, not a fault."""
        self.joined = True

    def begin_resync(self, after: int) -> None:
        self.resync_after = after

    def replay(self, events: list[dict[str, Any]], last_seq: int) -> list[str]:
        """Apply ``agent.replay``'s events after ``resync_after``, then the live events that waited.

        The replay may hold the chat event derived from ``after`` itself: a client that
        saw it drops it (documented). Live events the replay already covered (seq up
        to its ``lastSeq``) are expected twice and dropped; any at or before
        ``after`` were sent again by the gateway: a duplicate.
        """
        after = self.resync_after if self.resync_after is not None else self.last_agent
        out: list[str] = []
        for ev in events:
            name, payload = ev["event"], ev["payload"]
            seq = payload.get("seq", 0)
            if name == "agent" and seq <= after:
                out.append(f"replay after {after} returned agent seq {seq}")
                continue
            if name == "chat" and seq < after:
                out.append(f"replay after {after} returned chat seq {seq}")
                continue
            if name == "chat" and seq in self.chat_seqs:
                continue  # the chat event derived from `after`, already seen
            out += self._apply(name, payload)
        self.resync_after = None
        buffered, self.buffered = self.buffered, []
        for name, payload in buffered:
            seq = payload.get("seq", 0)
            if (name == "agent" and seq <= after) or (name == "chat" and seq < after):
                out.append(f"live {name} seq {seq} at or before the replay point {after}")
            elif (name == "agent" and seq <= last_seq) or (name == "chat" and seq in self.chat_seqs):
                continue  # published before the replay was read: in both, by design
            else:
                out += self._apply(name, payload)
        return out

    def _apply(self, event: str, payload: dict[str, Any]) -> list[str]:
        seq = payload.get("seq")
        if not isinstance(seq, int):
            return [f"{event} without a seq"]
        if self.ended is not None:
            return [f"{event} seq {seq} after the terminal event"]
        if event == "agent":
            return self._agent(seq, payload)
        if self.joined and seq >= self.last_agent:
            self.last_agent = seq  # (re)joined mid-run on a chat event: it stands for agent event `seq`
        elif seq != self.last_agent:
            return [f"chat seq {seq} does not follow agent seq {self.last_agent}"]
        if seq in self.chat_seqs:
            return [f"second chat event with seq {seq}"]
        self.chat_seqs.add(seq)
        state = payload.get("state")
        if state in TERMINAL_CHAT:
            self.ended = seen_outcome(str(state), payload.get("errorKind"))
        return []

    def _agent(self, seq: int, payload: dict[str, Any]) -> list[str]:
        if seq <= self.last_agent:
            return [f"agent seq {seq} after {self.last_agent} (duplicate or reordered)"]
        joined, self.joined = self.joined, False
        contiguous = seq == self.last_agent + 1
        if not contiguous and not joined:
            self.skipped += seq - self.last_agent - 1
        self.last_agent = seq
        if payload.get("stream") != "assistant":
            return []
        data = payload.get("data") or {}
        text, delta = str(data.get("text", "")), str(data.get("delta", ""))
        prev, self.text = self.text, text
        if contiguous and not joined and text != prev + delta:
            return [f"assistant text at seq {seq} is not the previous text plus its delta"]
        return []


class TextView:
    """A reply streamed as cumulative text (AgentBox ``agent.message``, LangBot ``response``).

    Each chunk must extend the text so far; a final chunk may repeat it; nothing
    follows a final chunk. With ``deltas``, each chunk also says what it added.
    """

    def __init__(self) -> None:
        self.text = ""
        self.ended = False

    def chunk(self, text: str, final: bool = False, delta: str | None = None) -> str | None:
        if self.ended:
            return "a chunk after the final one"
        prev, self.text = self.text, text
        self.ended = final
        if final:
            return None if text.startswith(prev) else "the final text does not extend the streamed text"
        if not text.startswith(prev) or text == prev:
            return "a chunk that does not extend the text so far (duplicate or reordered)"
        if delta is not None and text != prev + delta:
            # A longer jump than its delta: droppable chunks were skipped before it (a gap, not a fault).
            return None if len(text) > len(prev) + len(delta) else "chunk text is not the previous text plus its delta"
        return None

    def end(self) -> str | None:
        if self.ended:
            return "a second terminal event"
        self.ended = True
        return None
