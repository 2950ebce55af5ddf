"""The event bus: numbered, bounded, replayable streams.

Every publication gets the next ``seq`` of its stream, is appended to that
stream's bounded history and handed to the listeners, all in one step (the
event loop is single-threaded, so ``publish`` is atomic for ``MemoryBus``; a
Redis bus does the same in one Lua script). A position is ``(seq, epoch)``: the
epoch is minted when a stream is created, so a client resuming "after 3" in a
stream that was lost and rebuilt gets ``ReplayGap`` instead of wrong events.
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["BusListener", "EventBus", "MemoryBus", "Publication", "ReplayGap", "StreamPos"]


@dataclass(frozen=True, slots=True)
class StreamPos:
    seq: int
    epoch: str


@dataclass(slots=True)
class Publication:
    """One event on one stream. ``payload`` already carries ``seq`` where the event wants it."""

    stream: str
    seq: int
    epoch: str
    event: str
    payload: dict[str, Any]
    droppable: bool = False
    state_version: dict[str, int] | None = None
    # Per-encoder cache so fan-out encodes once per wire format, not once per client.
    encoded: dict[object, Any] = field(default_factory=dict, repr=False, compare=False)


class ReplayGap(Exception):
    """The requested position is no longer (or never was) in the retained history."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"{stream}: {reason}")
        self.stream = stream
        self.reason = reason


class BusListener(Protocol):
    def handle_publication(self, pub: Publication) -> None: ...


class EventBus(Protocol):
    def publish(
        self, stream: str, event: str, payload: dict[str, Any], *, droppable: bool = False, seq_field: bool = True
    ) -> Publication: ...

    def history(self, stream: str, after_seq: int, epoch: str | None = None) -> list[Publication]: ...

    def position(self, stream: str) -> StreamPos | None: ...

    def add_listener(self, listener: BusListener) -> Callable[[], None]: ...


def _new_epoch() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(8))


@dataclass(slots=True)
class _Stream:
    epoch: str
    seq: int = 0
    history: deque[Publication] = field(default_factory=deque)


class MemoryBus:
    """Single-process bus with per-stream history bounded in events and in streams."""

    def __init__(self, history_per_stream: int = 10_000, max_streams: int = 2_000) -> None:
        self.history_per_stream = history_per_stream
        self.max_streams = max_streams
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._listeners: list[BusListener] = []

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream(_new_epoch(), history=deque(maxlen=self.history_per_stream))
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(name)
        return stream

    def publish(
        self, stream: str, event: str, payload: dict[str, Any], *, droppable: bool = False, seq_field: bool = True
    ) -> Publication:
        """Number, store and deliver in one step. The bus takes ownership of ``payload``."""
        st = self._stream(stream)
        st.seq += 1
        if seq_field:
            payload["seq"] = st.seq
        pub = Publication(stream, st.seq, st.epoch, event, payload, droppable)
        st.history.append(pub)
        for listener in self._listeners:
            listener.handle_publication(pub)
        return pub

    def history(self, stream: str, after_seq: int, epoch: str | None = None) -> list[Publication]:
        """Publications after ``after_seq``, in order; ``ReplayGap`` if any are gone."""
        st = self._streams.get(stream)
        if st is None:
            raise ReplayGap(stream, "stream not retained")
        if epoch is not None and epoch != st.epoch:
            raise ReplayGap(stream, "epoch changed")
        if after_seq >= st.seq:
            return []
        oldest = st.history[0].seq if st.history else st.seq + 1
        if after_seq + 1 < oldest:
            raise ReplayGap(stream, "events left retained history")
        return [p for p in st.history if p.seq > after_seq]

    def position(self, stream: str) -> StreamPos | None:
        st = self._streams.get(stream)
        return StreamPos(st.seq, st.epoch) if st else None

    def add_listener(self, listener: BusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


if TYPE_CHECKING:
    _check: EventBus = MemoryBus()
