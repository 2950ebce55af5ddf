"""``TranscriptCache``: the recent transcript of the busiest sessions, in memory, in front of the Store.

``chat.history`` and every run's context read ask for the same last messages
of a few sessions again and again; answering from the store costs a thread hop
and a row mapping per message each time (S5 in ``bench/``). This wrapper keeps,
per session, the last ``messages`` records (and the chat.history view of each,
built once), for the ``sessions`` most recently read sessions, and answers
``history`` from memory.

Coherence: it *is* a ``Store`` and the composition root installs it as the
store, so every transcript write (``append_message``, ``reset_session``,
``delete_session``, ``trim_session``) passes through it and updates or drops the entry. It
assumes it is the only writer of the transcripts in the database: one gateway
process per data dir (the CLI tools that open the same file touch API keys and
pipelines, never transcripts). Races are settled conservatively:

- while a write to a session is in flight, reads of it go to the store, which
  orders them, and nothing is installed;
- a write is applied to the entry only if no other write to that session
  overlapped it (otherwise the entry is dropped), and bookkeeping runs when the
  store's operation has really finished, cancelled or failed included (a
  failure also drops the entry);
- a load (one store read per session shared by concurrent misses) is installed
  only if no write to the session began while it ran.

Records handed out are fresh copies (``meta`` deep-copied), so callers may
mutate them; the views are shared and read-only (the response encoder only
reads them).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ..protocol import _json
from .store import ApiKeyRecord, DeviceRecord, MessageRecord, RunRecord, SessionRecord, Store

__all__ = ["TranscriptCache", "message_view"]

T = TypeVar("T")
# A session's row as chat.history shows it: its record (None: unknown) and its metadata.
SessionInfo = tuple[SessionRecord | None, dict[str, Any]]


def message_view(m: MessageRecord) -> dict[str, Any]:
    """One transcript message as ``chat.history`` shows it.

    ``__openclaw`` is the transcript identity OpenClaw's clients match their own
    optimistic messages against: a message without an ``id`` there looks unsaved
    to the Control UI, which then queues every new message behind it. A turn's
    ``runId`` is also the idempotency key of the ``chat.send``/``agent`` call that
    started it.
    """
    out: dict[str, Any] = {
        "role": m.role,
        "content": [{"type": "text", "text": m.text}],
        "timestamp": m.ts_ms,
    }
    identity: dict[str, Any] = {}
    if m.id is not None:
        identity["id"] = str(m.id)
    if m.run_id:
        out["runId"] = m.run_id
        identity["runId"] = m.run_id
        identity["idempotencyKey"] = m.run_id
    if identity:
        out["__openclaw"] = identity
    if m.meta:
        out["meta"] = m.meta
    return out


def _json_copy(meta: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data, equal to what a store hands back after storing it as JSON."""
    copied: dict[str, Any] = _json.loads(_json.dumps(meta))
    return copied


RECORD_OVERHEAD = 400  # bytes a cached message costs besides its text (record, view, dicts), for the byte bound


def _cost(m: MessageRecord) -> int:
    """Approximate bytes a cached message holds: its text, its meta (an answer's thinking and tools), overhead."""
    return len(m.text) + (len(_json.dumps(m.meta)) if m.meta else 0) + RECORD_OVERHEAD


def _copy(m: MessageRecord) -> MessageRecord:
    return MessageRecord(m.session_key, m.role, m.text, m.ts_ms, m.run_id, _json_copy(m.meta) if m.meta else {}, m.id)


class _Entry:
    """The newest messages of one session, oldest first; ``complete`` when that is the whole transcript."""

    __slots__ = ("complete", "records", "size", "views")

    def __init__(self, records: list[MessageRecord], complete: bool) -> None:
        self.records = records  # owned: never handed out, only copies
        self.complete = complete
        self.views: list[dict[str, Any]] | None = None  # message_view of each record, built on first use
        self.size = sum(_cost(m) for m in records)  # approximate bytes held, for the cache's byte bound

    def append(self, record: MessageRecord, cap: int) -> bool:
        """Add the newest message; False when it does not come last (the caller then drops the entry)."""
        records = self.records
        if records and (record.id is None or records[-1].id is None or record.id <= records[-1].id):
            return False
        records.append(record)
        self.size += _cost(record)
        if self.views is not None:
            self.views.append(message_view(record))
        if len(records) > cap:
            self.size -= sum(_cost(m) for m in records[: len(records) - cap])
            del records[: len(records) - cap]
            if self.views is not None:
                del self.views[: len(self.views) - cap]
            self.complete = False
        return True


class TranscriptCache:
    """A ``Store`` that answers ``history`` from memory and forwards everything else.

    ``sessions`` bounds the sessions kept (least recently read evicted first; 0
    turns the cache off), ``messages`` the newest messages kept per session and
    ``max_bytes`` the (approximate) text held in all; a ``history`` asking for
    more than an entry holds goes to the store unless the entry is the whole
    transcript.
    """

    def __init__(self, store: Store, *, sessions: int, messages: int, max_bytes: int = 64 << 20) -> None:
        if sessions < 0 or messages < 1:
            raise ValueError("sessions must be >= 0 and messages >= 1")
        self._store = store
        self._max_sessions = sessions
        self._max_messages = messages
        self._max_bytes = max_bytes
        self._bytes = 0  # sum of the entries' sizes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Task[_Entry]] = {}
        self._writing: dict[str, int] = {}  # session -> transcript writes in flight
        # chat.history also shows the session's row (record and metadata): kept beside the transcript,
        # dropped by every write that can change it (transcript writes, ensure_session, put_session_meta).
        self._infos: OrderedDict[str, SessionInfo] = OrderedDict()
        self._info_loading: dict[str, asyncio.Task[SessionInfo]] = {}  # session -> its read in flight
        self._info_writing: dict[str, int] = {}  # session -> row writes in flight
        self.hits = 0
        self.misses = 0
        # Called with a session's key after each write of its transcript or row (the composition root
        # tells the other gateway processes, whose cached copy is now stale: ``forget``).
        self.on_write: Callable[[str], object] | None = None

    @property
    def inner(self) -> Store:
        """The wrapped store."""
        return self._store

    @property
    def max_sessions(self) -> int:
        return self._max_sessions

    @property
    def max_messages(self) -> int:
        return self._max_messages

    @property
    def engine(self) -> Any:
        """The wrapped store's SQL engine (LangBot pipelines share it); AttributeError if it has none."""
        return self._store.engine  # type: ignore[attr-defined]

    @property
    def cached_bytes(self) -> int:
        """Approximate bytes held (message text and meta, plus a fixed overhead per message)."""
        return self._bytes

    def resize(self, sessions: int, messages: int, max_bytes: int | None = None) -> None:
        """Apply new bounds (``config.set``); a new per-session bound empties the cache."""
        if sessions < 0 or messages < 1:
            raise ValueError("sessions must be >= 0 and messages >= 1")
        if messages != self._max_messages:
            self.clear()
        self._max_sessions, self._max_messages = sessions, messages
        if max_bytes is not None:
            self._max_bytes = max_bytes
        self._evict()

    def forget(self, key: str) -> None:
        """Drop one session's cached transcript and row (another gateway process wrote it)."""
        self._drop(key)
        self._loading.pop(key, None)
        self._stale_info(key)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self._loading.clear()  # loads in flight are not installed
        self._infos.clear()
        self._info_loading.clear()

    def _evict(self) -> None:
        """Drop least recently read sessions past the session or byte bound."""
        while self._entries and (len(self._entries) > self._max_sessions or self._bytes > self._max_bytes):
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
        while len(self._infos) > self._max_sessions:
            self._infos.popitem(last=False)

    def _stale_info(self, key: str) -> None:
        self._infos.pop(key, None)
        self._info_loading.pop(key, None)  # a read in flight may have read before the write: not installed

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def cached_sessions(self) -> list[str]:
        """Keys of the cached sessions, least recently read first (diagnostics and tests)."""
        return list(self._entries)

    # reads

    async def history(self, session_key: str, limit: int) -> list[MessageRecord]:
        entry = await self._lookup(session_key, limit)
        if entry is None:
            return await self._store.history(session_key, limit)
        return [_copy(m) for m in entry.records[-limit:]]

    async def views(self, session_key: str, limit: int) -> list[dict[str, Any]]:
        """``[message_view(m) for m in history(...)]``, each view built once per cached message.

        The views are shared with later callers: treat them as read-only.
        """
        entry = await self._lookup(session_key, limit)
        if entry is None:
            return [message_view(m) for m in await self._store.history(session_key, limit)]
        views = entry.views
        if views is None:
            views = entry.views = [message_view(m) for m in entry.records]
        return views[-limit:]

    async def session_info(self, key: str) -> SessionInfo:
        """The session's record (None: unknown) and metadata, as ``get_session`` and ``get_session_meta`` give them.

        Treat both as read-only: they are shared with later callers until a write drops them.
        """
        info = self._infos.get(key)
        if info is not None:
            self._infos.move_to_end(key)
            return info
        task = self._info_loading.get(key)
        if task is None:  # one read for every concurrent miss (else each new miss would outdate the last)
            task = asyncio.ensure_future(self._read_info(key))
            self._info_loading[key] = task
            task.add_done_callback(partial(self._info_loaded, key))
        return await asyncio.shield(task)

    async def _read_info(self, key: str) -> SessionInfo:
        record = await self._store.get_session(key)
        meta = (await self._store.get_session_meta([key])).get(key, {}) if record is not None else {}
        return record, meta

    def _info_loaded(self, key: str, task: asyncio.Task[SessionInfo]) -> None:
        failed = task.cancelled() or task.exception() is not None  # (marks a failure as seen)
        if self._info_loading.get(key) is not task:
            return  # a write (or clear) began meanwhile: the result may predate it
        del self._info_loading[key]
        if failed or key in self._writing or key in self._info_writing or not self._max_sessions:
            return
        self._infos[key] = task.result()
        self._evict()

    async def _row_write(self, key: str, op: Coroutine[Any, Any, T]) -> T:
        """A write of the session's row: no read in flight or before it is kept, and other processes hear of it."""
        self._info_writing[key] = self._info_writing.get(key, 0) + 1
        self._stale_info(key)
        try:
            result = await op
        finally:
            others = self._info_writing[key] - 1
            if others:
                self._info_writing[key] = others
            else:
                del self._info_writing[key]
            self._stale_info(key)
        if self.on_write is not None:
            self.on_write(key)
        return result

    async def _lookup(self, key: str, limit: int) -> _Entry | None:
        """The entry that can answer ``history(key, limit)``, loading it on a miss; None: ask the store."""
        if limit <= 0 or self._max_sessions == 0 or key in self._writing:
            return None
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        else:
            # Loaded even for a limit above the bound: a short transcript is then held whole.
            self.misses += 1
            entry = await self._load(key)
            if key in self._writing:
                return None  # a write began while loading: the store orders the two
        if limit > len(entry.records) and not entry.complete:
            return None  # holds too few: the store answers
        return entry

    async def _load(self, key: str) -> _Entry:
        """Read the session's newest messages once for every concurrent miss."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(key, self._max_messages))
            self._loading[key] = task
            task.add_done_callback(partial(self._loaded, key))
        # shield: a caller that goes away must not cancel the read the others wait for
        return await asyncio.shield(task)

    async def _fetch(self, key: str, cap: int) -> _Entry:
        records = await self._store.history(key, cap + 1)  # one more than kept tells whether it is all
        complete = len(records) <= cap
        return _Entry(records if complete else records[-cap:], complete)

    def _loaded(self, key: str, task: asyncio.Task[_Entry]) -> None:
        failed = task.cancelled() or task.exception() is not None  # (marks a failure as seen)
        if self._loading.get(key) is not task:
            return  # a write (or clear) began meanwhile: the result may predate it
        del self._loading[key]
        if failed or key in self._writing:
            return
        self._drop(key)
        entry = self._entries[key] = task.result()
        self._bytes += entry.size
        self._evict()

    # transcript writes

    async def append_message(self, msg: MessageRecord) -> int:
        record: MessageRecord | None = None
        try:  # snapshot now, as the store will store it: the caller may reuse msg
            meta = _json_copy(msg.meta) if msg.meta else {}
            record = MessageRecord(msg.session_key, msg.role, msg.text, msg.ts_ms, msg.run_id, meta)
        except TypeError:  # not JSON: the store decides; the entry is dropped
            pass

        def apply(entry: _Entry, msg_id: int) -> bool:
            if record is None:
                return False
            record.id = msg_id
            return entry.append(record, self._max_messages)

        return await self._write(msg.session_key, self._store.append_message(msg), apply)

    async def reset_session(self, key: str, now_ms: int) -> bool:
        def apply(entry: _Entry, reset: bool) -> bool:
            if reset:
                entry.records, entry.views, entry.complete, entry.size = [], [], True, 0
            return True  # not reset: the session was unknown and nothing changed

        return await self._write(key, self._store.reset_session(key, now_ms), apply)

    async def delete_session(self, key: str) -> bool:
        return await self._write(key, self._store.delete_session(key), lambda entry, deleted: not deleted)

    async def trim_session(self, key: str, keep: int) -> int:
        return await self._write(key, self._store.trim_session(key, keep), lambda entry, removed: not removed)

    async def _write(self, key: str, op: Coroutine[Any, Any, T], apply: Callable[[_Entry, T], bool]) -> T:
        """Run one transcript write of ``key``; ``apply`` updates the entry and says whether it may stay.

        The store's operation runs as its own task so the bookkeeping happens when
        it has finished, even if the caller is cancelled while waiting for it.
        """
        self._writing[key] = self._writing.get(key, 0) + 1
        self._loading.pop(key, None)
        task = asyncio.ensure_future(op)
        task.add_done_callback(partial(self._settle, key, apply))
        return await task

    def _settle(self, key: str, apply: Callable[[_Entry, Any], bool], task: asyncio.Task[Any]) -> None:
        failed = task.cancelled() or task.exception() is not None
        others = self._writing[key] - 1
        if others:
            self._writing[key] = others
        else:
            del self._writing[key]
        self._loading.pop(key, None)  # a load begun during the write may have read before its commit
        self._stale_info(key)  # the row moved too (count, updated, last run), and a read may predate it
        if not failed and self.on_write is not None:
            self.on_write(key)
        entry = self._entries.get(key)
        if entry is None:
            return
        before = entry.size
        if others or failed or not apply(entry, task.result()):
            self._bytes -= before
            del self._entries[key]
            return
        self._bytes += entry.size - before
        self._evict()

    # lifecycle and everything else: forwarded

    async def open(self) -> None:
        self.clear()
        await self._store.open()

    async def close(self) -> None:
        self.clear()
        await self._store.close()

    async def ensure_session(self, key: str, now_ms: int) -> SessionRecord:
        return await self._row_write(key, self._store.ensure_session(key, now_ms))

    async def get_session(self, key: str) -> SessionRecord | None:
        return await self._store.get_session(key)

    async def list_sessions(self, limit: int) -> list[SessionRecord]:
        return await self._store.list_sessions(limit)

    async def count_sessions(self) -> int:
        return await self._store.count_sessions()

    async def get_session_meta(self, keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        return await self._store.get_session_meta(keys)

    async def put_session_meta(self, key: str, meta: dict[str, Any], now_ms: int) -> None:
        await self._row_write(key, self._store.put_session_meta(key, meta, now_ms))

    async def put_run(self, run: RunRecord) -> None:
        await self._store.put_run(run)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self._store.get_run(run_id)

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int:
        failed = await self._store.fail_interrupted_runs(reason, now_ms)
        if failed:
            self.clear()  # their pending messages joined transcripts behind the cache's back
        return failed

    async def fail_run(self, run_id: str, reason: str, now_ms: int) -> RunRecord | None:
        failed = await self._store.fail_run(run_id, reason, now_ms)
        if failed is not None:
            self.forget(failed.session_key)  # its pending message may have joined the transcript
        return failed

    async def count_runs_by_status(self, owner: str | None = None) -> dict[str, int]:
        return await self._store.count_runs_by_status(owner)

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        return await self._store.get_device(device_id)

    async def put_device(self, device: DeviceRecord) -> None:
        await self._store.put_device(device)

    async def put_devices(self, batch: Sequence[DeviceRecord]) -> None:
        await self._store.put_devices(batch)

    async def list_devices(self) -> list[DeviceRecord]:
        return await self._store.list_devices()

    async def put_api_key(self, key: ApiKeyRecord) -> None:
        await self._store.put_api_key(key)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return await self._store.get_api_key(key_id)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        return await self._store.list_api_keys()

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        return await self._store.revoke_api_key(key_id, now_ms)

    async def get_idempotent(self, key: str, not_before_ms: int) -> tuple[str, Any] | None:
        return await self._store.get_idempotent(key, not_before_ms)

    async def put_idempotent(self, key: str, method: str, response: Any, now_ms: int) -> None:
        await self._store.put_idempotent(key, method, response, now_ms)

    async def purge_idempotent(self, before_ms: int) -> int:
        return await self._store.purge_idempotent(before_ms)

    async def get_config(self) -> dict[str, Any]:
        return await self._store.get_config()

    async def put_config(self, config: dict[str, Any], now_ms: int) -> None:
        await self._store.put_config(config, now_ms)


if TYPE_CHECKING:

    def _conforms(cache: TranscriptCache) -> Store:
        """mypy proves here that TranscriptCache satisfies the Store protocol."""
        return cache
