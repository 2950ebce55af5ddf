"""MemoryBus: numbering, bounded history, epochs and listeners, without a socket."""

from __future__ import annotations

import pytest

from agenthub.core.bus import EventBus, MemoryBus, Publication, ReplayGap


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
