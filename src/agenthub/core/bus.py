"""The event bus: numbered, bounded, replayable streams.

Every publication gets a position in its stream, is appended to that stream's
history and handed to the listeners, all in one step (the event loop is
single-threaded, so ``publish`` is atomic for ``MemoryBus``; a Redis bus does
the same in one Lua script). A position is ``(seq, epoch)``: the epoch is
minted when a stream is created, so a client resuming "after 3" in a stream
that was lost and rebuilt gets ``ReplayGap`` instead of wrong events.

Positions. By default the bus numbers a stream's publications 1, 2, 3, ...
A publisher that owns the numbering passes ``seq`` instead: a larger value
starts a new position (an *anchor*), the current value *attaches* the
publication to the latest anchor (an event derived from it). Run streams use
this: ``agent`` events are anchors numbered 1..n by the run manager, and each
``chat`` event attaches to the agent event it derives from and carries its seq.
``history(stream, after_seq)`` returns everything published after anchor
``after_seq``: the publications attached to it, then every later position. A
position stays answerable while nothing published after its anchor has left
the history; below that the answer is ``ReplayGap``.

Delivery. ``publish`` is synchronous for every bus: it numbers (or queues)
the publication and returns at once. ``MemoryBus`` hands it to the listeners
before returning; a cluster bus (``storage.redis_bus.RedisBus``) hands it to
every process's listeners, its own included, in the order the shared log took
it, so every process sees one order per stream. ``when_delivered(fn)`` runs
``fn`` once everything published so far has reached the local listeners: a run
releases its waiters (the final ``res``) only after its last events went out.
``history`` and ``position`` are coroutines, because a cluster bus reads them
from the shared store. A publication another process made arrives with
``remote`` set: listeners that derive new publications from events (a dialect
bridge, a channel reply) act only on local ones, so each is derived once.

Memory. History is bounded in bytes, per stream and in total (and in events
per stream and in streams), evicting the oldest events of a stream and the
least recently published streams first. It stores each payload as compact
JSON, never the live ``Publication`` or its per-encoder frames, and never the
text a publication repeats from earlier ones: a ``Fold`` names the field that
holds a stream's text so far (OpenClaw's cumulative ``text``), history keeps
only the delta, and ``history()`` rebuilds the text for each event it returns.
So an n-word answer costs O(n) bytes of history, not O(n^2).
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol import _json

__all__ = [
    "BusListener",
    "BusStats",
    "EventBus",
    "Fold",
    "HistoryEntry",
    "MemoryBus",
    "Publication",
    "ReplayGap",
    "StreamPos",
    "new_epoch",
    "replay_entries",
    "retained_entry",
]

# What one retained event and one retained stream cost beyond their JSON and delta text
# (the entry object, its bytes and str headers, the deque slot; the stream's dicts and name).
# Measured with tracemalloc in tests/core/test_bus.py, so the byte bounds are honest.
ENTRY_OVERHEAD = 200
STREAM_OVERHEAD = 1024


@dataclass(frozen=True, slots=True)
class StreamPos:
    seq: int
    epoch: str


Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Fold:
    """A payload field that repeats the stream's text so far; history keeps only the delta.

    The publisher promises that the string at ``text`` equals every earlier
    delta of ``key`` in this stream, in order, plus this publication's own
    delta (the string at ``delta``; ``None`` when it adds nothing, e.g. a chat
    event that shows the assistant text so far).
    """

    key: str
    text: Path
    delta: Path | None = None


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
    # Made by another gateway process (a cluster bus): deliver it, derive nothing from it.
    remote: bool = False
    # Per-encoder cache so fan-out encodes once per wire format, not once per client.
    encoded: dict[object, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class BusStats:
    """What the history holds now (bytes as counted against the bounds) and what it let go."""

    streams: int
    events: int
    bytes: int
    evicted_streams: int
    evicted_events: int


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
        self,
        stream: str,
        event: str,
        payload: dict[str, Any],
        *,
        droppable: bool = False,
        seq_field: bool = True,
        seq: int | None = None,
        fold: Fold | None = None,
    ) -> Publication: ...

    async def history(self, stream: str, after_seq: int, epoch: str | None = None) -> list[Publication]: ...

    async def position(self, stream: str) -> StreamPos | None: ...

    def add_listener(self, listener: BusListener) -> Callable[[], None]: ...

    def when_delivered(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once every publication made so far has been handed to the local listeners."""
        ...

    def stats(self) -> BusStats: ...

    def describe(self) -> dict[str, Any]:
        """What ``health``, ``status`` and ``/metrics`` show of the backend (kind, lag, state)."""
        ...


def new_epoch() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(8))


def _get(payload: Any, path: Path) -> Any:
    for part in path:
        payload = payload[part]
    return payload


def _without(payload: Any, path: Path) -> Any:
    """A copy of ``payload`` without the leaf at ``path``; only the containers on the path are copied."""
    head, rest = path[0], path[1:]
    if isinstance(payload, dict):
        copy: Any = dict(payload)
        if rest:
            copy[head] = _without(payload[head], rest)
        else:
            del copy[head]
        return copy
    copy = list(payload)
    copy[head] = _without(payload[head], rest) if rest else None
    return copy


def _put(payload: Any, path: Path, value: Any) -> None:
    _get(payload, path[:-1])[path[-1]] = value


@dataclass(slots=True)
class HistoryEntry:
    """One retained publication: its payload as JSON minus the folded text (and delta)."""

    seq: int
    attached: bool
    event: str
    data: bytes
    droppable: bool
    fold: Fold | None
    delta: str
    size: int
    # The payload's ``seq`` is written at replay (a bus that numbers after encoding, e.g. RedisBus).
    seq_field: bool = False


@dataclass(slots=True)
class _Stream:
    epoch: str
    seq: int = 0
    # Replays after a position below ``floor`` are incomplete: ReplayGap.
    floor: int = 0
    entries: deque[HistoryEntry] = field(default_factory=deque)
    # Deltas of evicted entries, per fold key: the text the retained entries build on.
    base: dict[str, list[str]] = field(default_factory=dict)
    bytes: int = STREAM_OVERHEAD
    # The folded text could not be kept within the bound: nothing before ``floor`` can be rebuilt.
    broken: bool = False


class MemoryBus:
    """Single-process bus whose history is bounded in bytes, events and streams."""

    def __init__(
        self,
        history_per_stream: int = 10_000,
        max_streams: int = 2_000,
        *,
        bytes_per_stream: int = 4 * 1024 * 1024,
        bytes_total: int = 64 * 1024 * 1024,
    ) -> None:
        self.history_per_stream = history_per_stream
        self.max_streams = max_streams
        self.bytes_total = bytes_total
        self.bytes_per_stream = min(bytes_per_stream, bytes_total)
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._listeners: list[BusListener] = []
        self._bytes = 0
        self._events = 0
        self._evicted_streams = 0
        self._evicted_events = 0

    # -- publishing ----------------------------------------------------------
    def publish(
        self,
        stream: str,
        event: str,
        payload: dict[str, Any],
        *,
        droppable: bool = False,
        seq_field: bool = True,
        seq: int | None = None,
        fold: Fold | None = None,
    ) -> Publication:
        """Number, store and deliver in one step. The bus takes ownership of ``payload``.

        ``seq``: the publisher's own position (see the module doc); it must not
        go back. ``fold``: the field holding the stream's text so far, kept as
        a delta in history. ``seq_field`` writes the position into the payload.
        """
        st = self._streams.get(stream)
        fresh = st is None
        if st is None:
            st = self._streams[stream] = _Stream(new_epoch())
            self._bytes += STREAM_OVERHEAD
        else:
            self._streams.move_to_end(stream)
        if seq is None:
            seq = st.seq + 1
        elif seq < max(st.seq, 1):
            raise ValueError(f"{stream}: seq {seq} goes back (the stream is at {st.seq})")
        # A stream that (re)starts at a publisher's position holds nothing before it.
        attached = seq == st.seq or (fresh and seq > 1)
        if fresh:
            st.floor = seq if attached else seq - 1
        st.seq = seq
        if seq_field:
            payload["seq"] = seq
        pub = Publication(stream, seq, st.epoch, event, payload, droppable)
        self._retain(stream, st, pub, attached, fold)
        for listener in self._listeners:
            listener.handle_publication(pub)
        return pub

    def _retain(self, name: str, st: _Stream, pub: Publication, attached: bool, fold: Fold | None) -> None:
        if st.broken:
            st.floor = st.seq
            return
        entry = retained_entry(pub, attached, fold, ENTRY_OVERHEAD)
        size = entry.size
        st.entries.append(entry)
        st.bytes += size
        self._bytes += size
        self._events += 1
        while st.entries and (st.bytes > self.bytes_per_stream or len(st.entries) > self.history_per_stream):
            self._evict_oldest_event(st)
        if st.bytes > self.bytes_per_stream:  # the text the history builds on alone is too big
            self._forget_history(st)
        while self._bytes > self.bytes_total or len(self._streams) > self.max_streams:
            oldest = next(iter(self._streams))
            if oldest == name:
                break
            self._drop_stream(oldest)

    def _evict_oldest_event(self, st: _Stream) -> None:
        entry = st.entries.popleft()
        st.bytes -= entry.size
        self._bytes -= entry.size
        self._events -= 1
        self._evicted_events += 1
        # After an anchor's attachment is gone, replays after that anchor are incomplete too.
        st.floor = max(st.floor, entry.seq + 1 if entry.attached else entry.seq)
        if entry.delta:
            assert entry.fold is not None
            st.base.setdefault(entry.fold.key, []).append(entry.delta)
            st.bytes += len(entry.delta)
            self._bytes += len(entry.delta)

    def _forget_history(self, st: _Stream) -> None:
        freed = st.bytes - STREAM_OVERHEAD
        self._bytes -= freed
        self._events -= len(st.entries)
        self._evicted_events += len(st.entries)
        st.entries.clear()
        st.base.clear()
        st.bytes = STREAM_OVERHEAD
        st.floor = st.seq
        st.broken = True

    def _drop_stream(self, name: str) -> None:
        st = self._streams.pop(name)
        self._bytes -= st.bytes
        self._events -= len(st.entries)
        self._evicted_events += len(st.entries)
        self._evicted_streams += 1

    # -- reading ------------------------------------------------------------
    async def history(self, stream: str, after_seq: int, epoch: str | None = None) -> list[Publication]:
        """Publications after anchor ``after_seq`` (its attachments first), in order; ``ReplayGap`` if any are gone.

        Folded text is rebuilt here, from the deltas of the stream's retained
        (and evicted) events, so each returned payload is what was published.
        """
        st = self._streams.get(stream)
        if st is None:
            raise ReplayGap(stream, "stream not retained")
        if epoch is not None and epoch != st.epoch:
            raise ReplayGap(stream, "epoch changed")
        if after_seq > st.seq:
            return []
        if after_seq < st.floor:
            raise ReplayGap(stream, "events left retained history")
        return replay_entries(stream, st.epoch, st.entries, st.base, after_seq)

    async def position(self, stream: str) -> StreamPos | None:
        st = self._streams.get(stream)
        return StreamPos(st.seq, st.epoch) if st else None

    def add_listener(self, listener: BusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def when_delivered(self, fn: Callable[[], None]) -> None:
        fn()  # publish() delivers before it returns

    def stats(self) -> BusStats:
        return BusStats(len(self._streams), self._events, self._bytes, self._evicted_streams, self._evicted_events)

    def describe(self) -> dict[str, Any]:
        return {"kind": "memory", "ok": True}


def retained_entry(pub: Publication, attached: bool, fold: Fold | None, overhead: int) -> HistoryEntry:
    """The history form of ``pub``: compact JSON without the folded text, and the delta apart."""
    stored: Any = pub.payload
    delta = ""
    if fold is not None:
        if fold.delta is not None:
            delta = _get(stored, fold.delta)
            stored = _without(stored, fold.delta)
        stored = _without(stored, fold.text)
    try:
        encoded = _json.dumps(stored)
    except TypeError:  # a value orjson cannot hold: keep it as text rather than lose the event
        encoded = _json.dumps(_json.wire_safe(stored))
    # A copy of exactly its length: orjson's small outputs keep a 4 KiB buffer each.
    data = bytes(memoryview(encoded))
    size = len(data) + len(delta) + overhead
    return HistoryEntry(pub.seq, attached, pub.event, data, pub.droppable, fold, delta, size)


def replay_entries(
    stream: str, epoch: str, entries: Iterable[HistoryEntry], base: dict[str, list[str]], after_seq: int
) -> list[Publication]:
    """The publications after anchor ``after_seq`` among ``entries`` (oldest first), folded text rebuilt.

    ``base`` holds, per fold key, the deltas of entries no longer retained: the
    text the retained entries build on. Shared by every bus implementation.
    """
    parts = {key: list(deltas) for key, deltas in base.items()}
    texts: dict[str, str] = {}
    out: list[Publication] = []
    for entry in entries:
        fold = entry.fold
        if fold is not None and entry.delta:
            parts.setdefault(fold.key, []).append(entry.delta)
            texts.pop(fold.key, None)
        if entry.seq < after_seq or (entry.seq == after_seq and not entry.attached):
            continue
        payload = _json.loads(entry.data)
        if entry.seq_field:
            payload["seq"] = entry.seq
        if fold is not None:
            text = texts.get(fold.key)
            if text is None:
                text = texts[fold.key] = "".join(parts.get(fold.key, ()))
            if fold.delta is not None:
                _put(payload, fold.delta, entry.delta)
            _put(payload, fold.text, text)
        out.append(Publication(stream, entry.seq, epoch, entry.event, payload, entry.droppable))
    return out


if TYPE_CHECKING:
    _check: EventBus = MemoryBus()
