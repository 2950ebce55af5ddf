"""The soak's order rules (soak/ledger.py), fed made-up streams: each rule must catch what it is for."""

from __future__ import annotations

from typing import Any

from soak.ledger import RunView, SeqView, TextView


def agent(seq: int, text: str | None = None, delta: str = "", stream: str = "assistant") -> tuple[str, dict[str, Any]]:
    data = {"text": text, "delta": delta} if stream == "assistant" else {"phase": "start"}
    return "agent", {"seq": seq, "stream": stream, "data": data}


def chat(seq: int, state: str = "delta") -> tuple[str, dict[str, Any]]:
    return "chat", {"seq": seq, "state": state}


RUN = [
    agent(1, stream="lifecycle"),
    agent(2, "a ", "a "),
    chat(2),
    agent(3, "a b", "b"),
    agent(4, stream="lifecycle"),
    chat(4, "final"),
]


def feed(view: RunView, events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [problem for name, payload in events for problem in view.live(name, payload)]


def test_a_clean_run_passes_and_ends_ok() -> None:
    view = RunView()
    assert feed(view, RUN) == []
    assert view.ended == "ok" and view.skipped == 0


def test_duplicates_reorders_and_late_events_are_caught() -> None:
    assert feed(RunView(), [*RUN[:3], RUN[1]]) == ["agent seq 2 after 2 (duplicate or reordered)"]
    assert feed(RunView(), [RUN[0], RUN[3], RUN[1]])[-1] == "agent seq 2 after 3 (duplicate or reordered)"
    assert feed(RunView(), [*RUN[:3], chat(2)]) == ["second chat event with seq 2"]
    assert feed(RunView(), [*RUN[:2], chat(1)]) == ["chat seq 1 does not follow agent seq 2"]
    assert feed(RunView(), [*RUN, agent(5, stream="lifecycle")]) == ["agent seq 5 after the terminal event"]


def test_assistant_text_must_grow_by_its_delta() -> None:
    broken = [RUN[0], RUN[1], agent(3, "a c", "b")]
    assert feed(RunView(), broken) == ["assistant text at seq 3 is not the previous text plus its delta"]


def test_a_skipped_droppable_delta_is_a_gap_not_a_fault() -> None:
    view = RunView()
    assert feed(view, [RUN[0], RUN[1], agent(4, "a b c", "c")]) == []
    assert view.skipped == 1


def test_a_run_joined_midway_is_judged_from_its_first_event() -> None:
    view = RunView(joined=True)
    assert feed(view, [chat(7), agent(8, "x y", "y"), agent(9, "x y z", " z")]) == []
    assert feed(view, [agent(9, "x y z", " z")]) == ["agent seq 9 after 9 (duplicate or reordered)"]


def test_replay_after_a_reconnect_merges_without_duplicates() -> None:
    view = RunView()
    assert feed(view, RUN[:3]) == []  # saw agent 2 and its chat
    view.begin_resync(view.last_agent)
    assert feed(view, [RUN[3]]) == []  # live on the new socket before the replay answer: waits
    replay = [{"event": n, "payload": p} for n, p in [chat(2), RUN[3]]]  # the chat derived from 2, then 3
    assert view.replay(replay, last_seq=3) == []  # chat 2 already seen, live 3 covered by the replay
    assert feed(view, RUN[4:]) == [] and view.ended == "ok"


def test_replay_that_repeats_what_was_seen_is_caught() -> None:
    view = RunView()
    feed(view, RUN[:3])
    view.begin_resync(2)
    replay = [{"event": n, "payload": p} for n, p in [RUN[1], RUN[3]]]  # off by one: agent 2 again
    assert view.replay(replay, last_seq=3) == ["replay after 2 returned agent seq 2"]


def test_live_event_resent_after_a_reconnect_is_caught() -> None:
    view = RunView()
    feed(view, RUN[:3])
    view.begin_resync(2)
    view.live(*RUN[1])
    assert view.replay([], last_seq=2) == ["live agent seq 2 at or before the replay point 2"]


def test_seq_view_duplicates_gaps_and_epochs() -> None:
    seq = SeqView(gap_ok=False)
    assert seq.see(1, "e1") == (None, 0)
    assert seq.see(2, "e1") == (None, 0)
    assert seq.see(2, "e1") == ("seq 2 after 2 (duplicate or reordered)", 0)
    assert seq.see(4, "e1") == ("seq 4 after 2: 1 must-deliver event(s) missing", 1)
    assert seq.see(1, "e2") == (None, 0)  # a new epoch numbers afresh
    lossy = SeqView(gap_ok=True)
    lossy.see(1)
    assert lossy.see(5) == (None, 3)


def test_text_view() -> None:
    view = TextView()
    assert view.chunk("a", delta="a") is None
    assert view.chunk("a b", delta=" b") is None
    assert view.chunk("a b") == "a chunk that does not extend the text so far (duplicate or reordered)"
    view = TextView()
    view.chunk("a b c")
    assert view.chunk("a b") is not None
    view = TextView()
    assert view.chunk("abc", final=True) is None
    assert view.chunk("abcd") == "a chunk after the final one"
    mangled = TextView()
    mangled.chunk("a", delta="a")
    assert mangled.chunk("ac", delta="b") == "chunk text is not the previous text plus its delta"
    assert mangled.chunk("ac d e", delta=" d") is None  # longer than its delta: droppable chunks skipped
    ended = TextView()
    assert ended.end() is None and ended.end() == "a second terminal event"
