"""MemoryBus: numbering, bounded history, epochs and listeners, without a socket."""

from __future__ import annotations

import copy
import gc
import tracemalloc
from typing import Any

import pytest

from agenthub.core.bus import EventBus, Fold, MemoryBus, Publication, ReplayGap


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Publication] = []

    def handle_publication(self, pub: Publication) -> None:
        self.seen.append(pub)


def test_publish_numbers_per_stream_and_delivers_in_order() -> None:
    bus: EventBus = MemoryBus()
    rec = Recorder()
    remove = bus.add_listener(rec)
    a1 = bus.publish("run:a", "agent", {"x": 1})
    b1 = bus.publish("run:b", "agent", {"x": 2})
    a2 = bus.publish("run:a", "chat", {"x": 3}, droppable=True)
    assert (a1.seq, b1.seq, a2.seq) == (1, 1, 2)
    assert a1.payload == {"x": 1, "seq": 1} and a2.droppable
    assert a1.epoch == a2.epoch != b1.epoch
    assert [p.payload["x"] for p in rec.seen] == [1, 2, 3]
    remove()
    bus.publish("run:a", "agent", {"x": 4})
    assert len(rec.seen) == 3


def test_history_replays_after_a_position_and_reports_gaps() -> None:
    bus = MemoryBus(history_per_stream=3)
    for i in range(5):
        bus.publish("s", "agent", {"i": i})
    pos = bus.position("s")
    assert pos is not None and pos.seq == 5
    assert [p.seq for p in bus.history("s", 2)] == [3, 4, 5]
    assert bus.history("s", 5) == []
    with pytest.raises(ReplayGap, match="left retained history"):
        bus.history("s", 1)
    with pytest.raises(ReplayGap, match="epoch changed"):
        bus.history("s", 3, epoch="other")
    with pytest.raises(ReplayGap, match="not retained"):
        bus.history("unknown", 0)


def test_oldest_streams_are_evicted_and_a_rebuilt_stream_gets_a_new_epoch() -> None:
    bus = MemoryBus(max_streams=2)
    first = bus.publish("s1", "agent", {})
    bus.publish("s2", "agent", {})
    bus.publish("s3", "agent", {})
    with pytest.raises(ReplayGap):
        bus.history("s1", 0)
    again = bus.publish("s1", "agent", {})
    assert again.seq == 1 and again.epoch != first.epoch
    with pytest.raises(ReplayGap, match="epoch changed"):
        bus.history("s1", 0, epoch=first.epoch)


# -- positions owned by the publisher, attached events -------------------------------------


def test_attached_publications_follow_their_anchor_in_replays() -> None:
    bus = MemoryBus()
    bus.publish("run:r", "agent", {"n": "a1"}, seq=1)
    bus.publish("run:r", "chat", {"n": "c1"}, seq=1)  # derived from agent 1
    bus.publish("run:r", "agent", {"n": "a2"}, seq=2)
    bus.publish("run:r", "agent", {"n": "a3"}, seq=3)
    bus.publish("run:r", "chat", {"n": "c3"}, seq=3)
    pos = bus.position("run:r")
    assert pos is not None and pos.seq == 3
    assert [p.payload["n"] for p in bus.history("run:r", 0)] == ["a1", "c1", "a2", "a3", "c3"]
    assert [p.payload["n"] for p in bus.history("run:r", 1)] == ["c1", "a2", "a3", "c3"]
    assert [p.payload["n"] for p in bus.history("run:r", 2)] == ["a3", "c3"]
    assert [(p.payload["n"], p.payload["seq"]) for p in bus.history("run:r", 3)] == [("c3", 3)]
    assert bus.history("run:r", 4) == []
    with pytest.raises(ValueError, match="goes back"):
        bus.publish("run:r", "agent", {}, seq=2)


def test_evicting_an_attached_event_makes_its_anchor_a_gap() -> None:
    bus = MemoryBus(history_per_stream=3)
    for seq, n in ((1, "a1"), (1, "c1"), (2, "a2"), (2, "c2"), (3, "a3")):
        bus.publish("s", "agent" if n[0] == "a" else "chat", {"n": n}, seq=seq)
    # a1 and c1 are gone: after 1 would need c1, after 2 needs only what is kept
    with pytest.raises(ReplayGap):
        bus.history("s", 1)
    assert [p.payload["n"] for p in bus.history("s", 2)] == ["c2", "a3"]
    bus.publish("s", "agent", {"n": "a4"}, seq=4)  # a2 goes: after 2 still holds, c2 is kept
    assert [p.payload["n"] for p in bus.history("s", 2)] == ["c2", "a3", "a4"]
    bus.publish("s", "agent", {"n": "a5"}, seq=5)  # c2 goes: now after 2 is a gap
    with pytest.raises(ReplayGap):
        bus.history("s", 2)
    assert [p.payload["n"] for p in bus.history("s", 3)] == ["a4", "a5"]


def test_a_stream_rebuilt_mid_run_starts_at_the_publishers_position_with_a_new_epoch() -> None:
    bus = MemoryBus(max_streams=10)
    first = bus.publish("run:x", "agent", {}, seq=1)
    for i in range(10):
        bus.publish(f"other-{i}", "agent", {})
    rebuilt = bus.publish("run:x", "agent", {"n": 7}, seq=7)
    assert rebuilt.epoch != first.epoch and rebuilt.seq == 7
    with pytest.raises(ReplayGap, match="epoch changed"):
        bus.history("run:x", 6, epoch=first.epoch)
    with pytest.raises(ReplayGap, match="left retained history"):
        bus.history("run:x", 6)  # events 1..6 are lost: never pretend otherwise
    assert [p.payload["n"] for p in bus.history("run:x", 7)] == [7]


# -- folded text: history keeps deltas, replays rebuild the text -----------------------------

TEXT = Fold("assistant", ("data", "text"), ("data", "delta"))
CHAT = Fold("assistant", ("message", "content", 0, "text"))


def publish_run(bus: MemoryBus, stream: str, words: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Publish a run the way the run manager does; returns what listeners saw (deep copies)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    text = ""
    for i, word in enumerate(words):
        text += word
        seq = i + 1
        pub = bus.publish(
            stream, "agent", {"stream": "assistant", "data": {"text": text, "delta": word}}, seq=seq, fold=TEXT
        )
        seen.append((pub.event, copy.deepcopy(pub.payload)))
        if i % 3 == 2:
            chat = {"state": "delta", "message": {"content": [{"type": "text", "text": text}]}, "deltaText": word}
            pub = bus.publish(stream, "chat", chat, seq=seq, fold=CHAT)
            seen.append((pub.event, copy.deepcopy(pub.payload)))
    return seen


def test_replay_rebuilds_the_folded_text_exactly() -> None:
    bus = MemoryBus()
    seen = publish_run(bus, "run:f", [f"w{i} " for i in range(50)])
    assert [(p.event, p.payload) for p in bus.history("run:f", 0)] == seen
    # from the middle: the text still includes what came before the replayed part
    after = [(p.event, p.payload) for p in bus.history("run:f", 30)]
    assert after == seen[seen.index(next(s for s in seen if s[1]["seq"] == 30)) + 1 :]


def test_history_bytes_stay_under_the_per_stream_bound_and_evicted_deltas_still_count() -> None:
    bus = MemoryBus(bytes_per_stream=20_000)
    words = [f"{i:04d}xx " for i in range(400)]
    seen = publish_run(bus, "run:big", words)
    stats = bus.stats()
    assert stats.bytes <= 20_000 and stats.evicted_events > 0
    kept = bus.history("run:big", stats_floor(bus, "run:big"))
    assert kept, "the newest events are kept"
    # the text of a kept event is whole, though its first deltas left the history long ago
    tail = [(p.event, p.payload) for p in kept]
    assert tail == seen[-len(tail) :]
    last_agent = next(payload for event, payload in reversed(tail) if event == "agent")
    assert last_agent["data"]["text"] == "".join(words)
    with pytest.raises(ReplayGap):
        bus.history("run:big", 0)


def stats_floor(bus: MemoryBus, stream: str) -> int:
    """The smallest position still answerable (found by asking, as a client would)."""
    pos = bus.position(stream)
    assert pos is not None
    for after in range(pos.seq + 1):
        try:
            bus.history(stream, after)
        except ReplayGap:
            continue
        return after
    raise AssertionError("nothing answerable")


def test_the_total_bound_lets_the_least_recent_streams_go() -> None:
    bus = MemoryBus(bytes_per_stream=50_000, bytes_total=120_000)
    for r in range(10):
        publish_run(bus, f"run:{r}", [f"r{r}w{i}-" + "y" * 100 for i in range(100)])
        assert bus.stats().bytes <= 120_000
    stats = bus.stats()
    assert stats.evicted_streams > 0 and stats.streams < 10
    with pytest.raises(ReplayGap, match="not retained"):
        bus.history("run:0", 0)
    assert bus.history("run:9", 0)[-1].payload["data"]["text"].endswith("y" * 100)


def test_a_text_too_big_for_the_bound_leaves_a_gap_not_a_wrong_text() -> None:
    bus = MemoryBus(bytes_per_stream=16_384)
    publish_run(bus, "run:huge", ["z" * 5_000 for _ in range(6)])  # 30,000 characters of answer
    pos = bus.position("run:huge")
    assert pos is not None
    for after in range(pos.seq):
        with pytest.raises(ReplayGap):
            bus.history("run:huge", after)
    assert bus.history("run:huge", pos.seq) == []
    assert bus.stats().bytes < 16_384


def test_the_byte_count_is_what_the_history_really_holds() -> None:
    """The bound is honest: tracemalloc agrees with ``stats().bytes`` within a modest factor."""
    bus = MemoryBus(100_000, 1_000, bytes_per_stream=1 << 40, bytes_total=1 << 40)
    runs = [[f"r{r}-word{i} " for i in range(300)] for r in range(10)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r, words in enumerate(runs):
            publish_run(bus, f"run:{r}", words)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = bus.stats().bytes
    assert 0.7 * held <= counted <= 2 * held, (counted, held)


def test_values_json_cannot_hold_are_kept_as_text() -> None:
    bus = MemoryBus()
    pub = bus.publish("run:n", "agent", {"result": 2**100, "when": object})
    assert pub.payload["result"] == 2**100  # live listeners get it as published
    (kept,) = bus.history("run:n", 0)
    assert kept.payload["result"] == str(2**100) and isinstance(kept.payload["when"], str)
