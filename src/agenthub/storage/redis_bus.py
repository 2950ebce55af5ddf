"""``RedisBus``: the ``EventBus`` of several gateway processes, on Redis Streams.

Layout (``<p>`` is ``redis.prefix``):

- ``<p>:s:<stream>`` a Redis Stream per bus stream: its retained history, one
  entry per publication (seq, attached, event, JSON minus folded text, delta);
  ``<p>:m:<stream>`` its meta (epoch, seq, floor, bytes) and ``<p>:b:<stream>``
  the folded text of evicted entries. Bounded like ``MemoryBus`` (events and
  bytes per stream), and by a TTL per stream instead of a global byte count.
- ``<p>:fire``: one Redis Stream every process reads (``XREAD BLOCK``), trimmed
  with ``MAXLEN ~``: each publication with its full payload, plus the cluster's
  control entries (cache invalidations, presence, forwarded requests).

Publishing. ``publish`` stays synchronous (the run core and the dialects call
it from plain functions): it encodes the publication once and queues it. One
writer task per process sends the queue in order, pipelined, each publication
as one Lua script that numbers it (or checks the publisher's seq), appends it
to its stream, trims, records the epoch and adds it to ``<p>:fire``, all
atomically. A retried pipeline is recognised (the last local id per origin is
kept per stream), so a lost reply never appends twice.

Delivery. Every process, the publisher included, hands publications to its
listeners as it reads them from ``<p>:fire``: one order for everyone, per
stream and across streams, whatever process published. The publisher reuses
its own ``Publication`` object (no decode; its per-encoder cache still encodes
once per wire format); the others decode each entry once and mark it
``remote``. ``when_delivered`` callbacks ride on the last queued publication.

Folded text. A run's answer is cumulative in its events (OpenClaw's ``text``):
on the shared log most entries carry only the delta, and each process rebuilds
the text from the deltas it read; must-deliver entries and every
``KEYFRAME_EVERY``-th carry the whole text (see ``RedisBus._keyframe``), so the
log grows with the answer, not with its square.

Failure. While Redis is unreachable the writer retries; past
``redis.publish_timeout_s`` queued and new publications go to this process's
own listeners only (its clients keep streaming; other processes miss them and
the next publication on the stream tells Redis so, raising the replay floor, so
nobody replays across the hole). A Redis that came back empty (restart without
persistence) is seen by its run id: streams start over with new epochs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..core.bus import (
    BusListener,
    BusStats,
    EventBus,
    Fold,
    HistoryEntry,
    Publication,
    ReplayGap,
    StreamPos,
    replay_entries,
    retained_entry,
)
from ..protocol import _json
from ..protocol.errors import ErrorCode, RpcError

__all__ = ["RedisBus", "RedisBusLimits", "connect"]

log = logging.getLogger(__name__)

# Counted per retained entry beyond its JSON and delta (the Redis Stream entry, its field names).
ENTRY_OVERHEAD = 120
KEYFRAME_EVERY = 32  # a droppable folded publication carries its whole text on the shared log this often
MAX_REBUILT_STREAMS = 1_000  # streams whose text a process keeps to rebuild delta-only entries
_BATCH = 256  # publications per pipeline

_PUBLISH = """
-- A batch of publications, in order. KEYS: the shared log, then meta, entries and fold base of each
-- publication's stream. ARGV: origin, max events, max bytes, ttl ms, log length, entry overhead, then
-- per publication: seq ('' = next), epoch candidate, event, data, fold spec, fold key, delta,
-- droppable, full payload ('' = data: delta-only), local id, seq field, gap, stream, text length.
-- Returns, per publication, seq and epoch; seq -1: applied before (a retried batch), -2: refused
-- (the epoch holds the reason).
local fire, origin = KEYS[1], ARGV[1]
local maxn, maxb, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local firelen, overhead = ARGV[5], tonumber(ARGV[6])
local out = {}
local per = 14
for i = 0, (#ARGV - 6) / per - 1 do
  local a = 6 + i * per
  local meta, st, base = KEYS[2 + i * 3], KEYS[3 + i * 3], KEYS[4 + i * 3]
  local lid = tonumber(ARGV[a + 10])
  local m = redis.call('HMGET', meta, 'epoch', 'seq', 'floor', 'bytes', 'broken', 'o:' .. origin)
  local epoch = m[1]
  local fresh = not epoch
  local cseq, floor, bytes, broken = tonumber(m[2] or '0'), tonumber(m[3] or '0'), tonumber(m[4] or '0'), m[5] == '1'
  local seq
  if not fresh and m[6] and tonumber(m[6]) >= lid then
    seq = -1
  else
    if fresh then epoch = ARGV[a + 2]; cseq = 0; floor = 0; bytes = 0; broken = false end
    if ARGV[a + 1] == '' then seq = cseq + 1 else seq = tonumber(ARGV[a + 1]) end
    if seq < math.max(cseq, 1) then
      out[#out + 1] = -2
      out[#out + 1] = 'seq ' .. seq .. ' goes back (the stream is at ' .. cseq .. ')'
      seq = nil
    end
  end
  if seq == -1 then
    out[#out + 1] = -1
    out[#out + 1] = epoch
  elseif seq ~= nil then
    local data, delta, dr, sf = ARGV[a + 4], ARGV[a + 7], ARGV[a + 8], ARGV[a + 11]
    local attached = (seq == cseq) or (fresh and seq > 1)
    if fresh then
      if attached then floor = seq else floor = seq - 1 end
    end
    if ARGV[a + 12] == '1' then
      if attached then floor = math.max(floor, seq) else floor = math.max(floor, seq - 1) end
    end
    if broken then
      floor = seq
    else
      local size = #data + #delta + overhead
      redis.call('XADD', st, '*', 'q', seq, 'a', attached and '1' or '0', 'e', ARGV[a + 3], 'd', data,
        'f', ARGV[a + 5], 'k', ARGV[a + 6], 'l', delta, 'r', dr, 'z', size, 'w', sf)
      bytes = bytes + size
      local n = redis.call('XLEN', st)
      while n > 0 and (bytes > maxb or n > maxn) do
        local old = redis.call('XRANGE', st, '-', '+', 'COUNT', 1)[1]
        local f = {}
        for j = 1, #old[2], 2 do f[old[2][j]] = old[2][j + 1] end
        redis.call('XDEL', st, old[1])
        n = n - 1
        bytes = bytes - tonumber(f['z'])
        local oseq = tonumber(f['q'])
        if f['a'] == '1' then floor = math.max(floor, oseq + 1) else floor = math.max(floor, oseq) end
        if f['l'] ~= '' then
          local cur = redis.call('HGET', base, f['k']) or ''
          redis.call('HSET', base, f['k'], cur .. f['l'])
          bytes = bytes + #f['l']
        end
      end
      if bytes > maxb then
        redis.call('DEL', st, base)
        bytes = 0
        floor = seq
        broken = true
      end
    end
    redis.call('HSET', meta, 'epoch', epoch, 'seq', seq, 'floor', floor, 'bytes', bytes,
      'broken', broken and '1' or '0', 'o:' .. origin, lid)
    redis.call('PEXPIRE', meta, ttl)
    redis.call('PEXPIRE', st, ttl)
    redis.call('PEXPIRE', base, ttl)
    local full, kf = ARGV[a + 9], '1'
    if full == '' then full = data; kf = '0' end
    redis.call('XADD', fire, 'MAXLEN', '~', firelen, '*', 'k', 'p', 'o', origin, 'n', lid, 's', ARGV[a + 13],
      'q', seq, 'ep', epoch, 'v', ARGV[a + 3], 'p', full, 'r', dr, 'sf', sf, 'kf', kf, 'f', ARGV[a + 5],
      'l', delta, 'tl', ARGV[a + 14])
    out[#out + 1] = seq
    out[#out + 1] = epoch
  end
end
return out
"""


@dataclass(slots=True)
class RedisBusLimits:
    """The named settings (``limits.history_*`` and the ``redis`` section) the bus applies."""

    history_per_stream: int = 10_000
    bytes_per_stream: int = 4 * 1024 * 1024
    stream_ttl_s: int = 3600
    firehose_len: int = 100_000
    publish_timeout_s: float = 5.0
    max_pending: int = 100_000


@dataclass(slots=True, eq=False)
class _Item:
    """One queued write: a publication (``pub`` set) or a control entry."""

    lid: int
    pub: Publication | None
    args: list[Any]
    queued: float
    seq_field: bool = True
    sent: bool = False
    failed: bool = False
    done: asyncio.Future[None] | None = None  # control entries: resolved when Redis took it
    callbacks: list[Callable[[], None]] = field(default_factory=list)


ControlHandler = Callable[[bytes, dict[bytes, bytes]], None]


class _HiredisPackedConnection(aioredis.Connection):
    """redis-py's asyncio connection packs commands in Python (its sync one uses hiredis); a batch of
    publications is thousands of arguments, so pack them with hiredis here (a profile of the bus showed
    the Python packer at an eighth of a busy worker's CPU)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        packed: Any = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        return [hiredis.pack_command(packed)]


def connect(url: str, *, timeout_s: float = 5.0) -> aioredis.Redis:
    """A client with no hidden retries: the bus decides what a lost connection means."""
    extra: dict[str, Any] = {}
    if url.startswith("redis://"):  # plain TCP (TLS and unix sockets keep redis-py's own connection)
        extra["connection_class"] = _HiredisPackedConnection
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
        **extra,
    )


class RedisBus:
    """The cluster's ``EventBus`` (see the module doc)."""

    def __init__(
        self, url: str, *, prefix: str = "agenthub", origin: str | None = None, limits: RedisBusLimits | None = None
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.origin = origin or secrets.token_hex(6)
        self.limits = limits or RedisBusLimits()
        self.redis = connect(url)
        # XREAD BLOCK holds its connection: the reader has its own client.
        self._reader_client = connect(url, timeout_s=10)
        self._sha = ""
        self._fire = f"{prefix}:fire".encode()
        self._listeners: list[BusListener] = []
        self._queue: deque[_Item] = deque()
        self._pending: OrderedDict[int, _Item] = OrderedDict()  # sent or queued, not yet delivered
        self._lids = itertools.count(1)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()
        self._last_id = b"0-0"
        self._run_id = b""
        self._gaps: set[str] = set()  # streams that lost publications while Redis was away
        self._local_seq: dict[str, tuple[int, str]] = {}  # last seq and epoch seen per stream
        self._fold_counts: dict[tuple[str, str], int] = {}  # folded publications per (stream, text) (keyframes)
        self._texts: OrderedDict[tuple[str, str], str] = OrderedDict()  # (stream, fold key) -> text so far
        self.control_handlers: dict[bytes, ControlHandler] = {}
        self.down_since: float | None = None
        self.down_reason: str | None = None
        self.state_listeners: list[Callable[[], None]] = []
        self.delivered = 0
        self.remote = 0
        self.skipped = 0  # delta-only entries of a stream this process joined mid-way (droppable)
        self.local_only = 0
        self.lag_ms = 0.0  # publish to local delivery, smoothed
        self.lag_max_ms = 0.0
        # How far this process's reading is behind the shared log's head (ms), as of its last read.
        self.read_lag_ms = 0.0
        self.overruns = 0  # reads that found the log trimmed past this process's position

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Connect, load the script and start reading the shared log from its current end.

        Raises:
            RedisError: Redis cannot be reached (the gateway refuses to start).
        """
        self._sha = await self.redis.script_load(_PUBLISH)
        info = await self.redis.info("server")
        self._run_id = str(info.get("run_id", "")).encode()
        last: Any = await self.redis.xrevrange(self._fire, count=1)
        self._last_id = bytes(last[0][0]) if last else b"0-0"
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop(), name="redis-bus-writer"),
            loop.create_task(self._read_loop(), name="redis-bus-reader"),
        ]

    async def stop(self, flush_s: float = 2.0) -> None:
        """Send what is queued (briefly), then stop and close the connections."""
        if self._pending and self.down_since is None:
            flushed = asyncio.Event()
            self.when_delivered(flushed.set)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_s):
                    await flushed.wait()
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a stop must never hang on a connection
            await asyncio.wait(self._tasks, timeout=2)
        self._tasks = []
        for item in list(self._pending.values()):
            self._settle(item)
        self._pending.clear()
        for client in (self.redis, self._reader_client):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await client.aclose()

    # -- EventBus --------------------------------------------------------------
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
        """Encode and queue; listeners everywhere get it in the shared log's order.

        The returned publication's ``seq`` and ``epoch`` are final once it is
        delivered (a bus-numbered stream learns its seq from Redis).
        """
        if seq is not None and seq_field:
            payload["seq"] = seq
        pub = Publication(stream, seq or 0, "", event, payload, droppable)
        entry = retained_entry(pub, False, fold, ENTRY_OVERHEAD)
        full = b""
        text_len = ""
        if fold is not None:
            text_len = str(len(_text_at(payload, fold)))
            if self._keyframe(stream, fold.key, droppable):
                try:
                    full = _json.dumps(payload)
                except TypeError:
                    full = _json.dumps(_json.wire_safe(payload))
        lid = next(self._lids)
        fold_spec = _json.dumps([fold.key, list(fold.text), list(fold.delta) if fold.delta else None]) if fold else b""
        p = self.prefix
        item = _Item(
            lid,
            pub,
            [
                f"{p}:m:{stream}",
                f"{p}:s:{stream}",
                f"{p}:b:{stream}",
                "" if seq is None else seq,
                # Used only if the stream is new in Redis: unique per publication, and free to make.
                f"{self.origin}{lid:x}",
                event,
                entry.data,
                fold_spec,
                fold.key if fold else "",
                entry.delta,
                "1" if droppable else "0",
                full,
                lid,
                "1" if seq_field else "0",
                "0",
                stream,
                text_len,
            ],
            time.monotonic(),
            seq_field,
        )
        if self._local_only():
            self._pending[lid] = item
            self._deliver_locally(item)
            return pub
        self._enqueue(item)
        return pub

    def _keyframe(self, stream: str, key: str, droppable: bool) -> bool:
        """Whether this folded publication carries its whole text on the shared log.

        Others rebuild a stream's text from the deltas they read, so most entries carry only
        the delta (the cumulative text would make the log quadratic in an answer's length).
        A must-deliver publication (a final) always carries it, and every ``KEYFRAME_EVERY``-th
        does, so a process that joined mid-stream catches up; until then it skips the
        droppable ones it cannot rebuild (as backpressure may skip them).
        """
        if not droppable:
            return True
        n = self._fold_counts.pop((stream, key), 0)  # per text: a run folds its answer and its thinking
        self._fold_counts[(stream, key)] = n + 1
        if len(self._fold_counts) > 10_000:
            self._fold_counts.pop(next(iter(self._fold_counts)))
        return n % KEYFRAME_EVERY == 0

    def publish_control(self, kind: bytes, kv: dict[bytes, bytes | str | int]) -> asyncio.Future[None]:
        """Queue a control entry for every other process, in order with the publications.

        The future is done when Redis took it (or at once when Redis is away: it is dropped).
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._local_only():
            done.set_result(None)
            return done
        fields: list[Any] = [b"k", kind, b"o", self.origin]
        for k, v in kv.items():
            fields += [k, v]
        item = _Item(next(self._lids), None, fields, time.monotonic(), done=done)
        self._enqueue(item)
        return done

    async def history(self, stream: str, after_seq: int, epoch: str | None = None) -> list[Publication]:
        p = self.prefix
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(f"{p}:m:{stream}")
                pipe.xrange(f"{p}:s:{stream}")
                pipe.hgetall(f"{p}:b:{stream}")
                meta, raw, base = await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from None
        if not meta:
            raise ReplayGap(stream, "stream not retained")
        cur_epoch = meta[b"epoch"].decode()
        if epoch is not None and epoch != cur_epoch:
            raise ReplayGap(stream, "epoch changed")
        if after_seq > int(meta[b"seq"]):
            return []
        if after_seq < int(meta[b"floor"]):
            raise ReplayGap(stream, "events left retained history")
        entries = [_entry(fields) for _, fields in raw]
        texts = {k.decode(): [v.decode()] for k, v in base.items()}
        return replay_entries(stream, cur_epoch, entries, texts, after_seq)

    async def position(self, stream: str) -> StreamPos | None:
        try:
            found: Any = await self.redis.hmget(f"{self.prefix}:m:{stream}", ["epoch", "seq"])
            epoch, seq = found
        except RedisError as exc:
            raise _unavailable(exc) from None
        if epoch is None:
            return None
        return StreamPos(int(seq), epoch.decode())

    def add_listener(self, listener: BusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def when_delivered(self, fn: Callable[[], None]) -> None:
        last = next(reversed(self._pending.values()), None) if self._pending else None
        if last is None:
            fn()
        else:
            last.callbacks.append(fn)

    def stats(self) -> BusStats:
        # The history lives in Redis (bounded per stream and by TTL); nothing is held here.
        return BusStats(0, 0, 0, 0, 0)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "redis",
            "ok": self.down_since is None,
            "pending": len(self._pending),
            "lagMs": round(self.lag_ms, 3),
            "lagMaxMs": round(self.lag_max_ms, 3),
            "readLagMs": round(self.read_lag_ms, 3),
            "overruns": self.overruns,
            "delivered": self.delivered,
            "remote": self.remote,
            "localOnly": self.local_only,
        }
        if self.down_reason is not None:
            out["error"] = self.down_reason
        return out

    # -- writing -----------------------------------------------------------------
    def _enqueue(self, item: _Item) -> None:
        if len(self._pending) >= self.limits.max_pending:
            # Redis cannot keep up or is away: this process's clients still get it.
            self._pending[item.lid] = item
            if item.pub is not None:
                self._deliver_locally(item)
            else:
                self._settle(item)
            return
        self._pending[item.lid] = item
        self._queue.append(item)
        self._wake.set()

    def _local_only(self) -> bool:
        since = self.down_since
        return since is not None and time.monotonic() - since > self.limits.publish_timeout_s

    async def _write_loop(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._queue[i] for i in range(min(_BATCH, len(self._queue)))]
            try:
                results = await self._send(batch)
            except (RedisError, OSError) as exc:
                self._set_down(exc)
                if self._local_only():
                    self._drop_queue()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                with contextlib.suppress(RedisError, OSError):
                    self._sha = await self.redis.script_load(_PUBLISH)
                continue
            backoff = 0.05
            self._set_up()
            for item, res in zip(batch, results, strict=True):
                self._queue.popleft()
                item.sent = True
                if item.pub is not None:
                    if item.pub.stream in self._gaps and not isinstance(res, Exception):
                        self._gaps.discard(item.pub.stream)
                    if isinstance(res, Exception):
                        log.error("bus: %s: publication refused by Redis: %s", item.pub.stream, res)
                        item.failed = True
                elif item.done is not None and not item.done.done():
                    item.done.set_result(None)
                    self._pending.pop(item.lid, None)
            self._drain_failed()

    async def _send(self, batch: list[_Item]) -> list[Any]:
        """One pipeline: each run of consecutive publications is one script call, control entries
        go between them as plain ``XADD``s, so Redis applies everything in queue order.

        Returns one result per item: ``[seq, epoch]``, or an exception for a refused publication.
        """
        lim = self.limits
        head = [self.origin, lim.history_per_stream, lim.bytes_per_stream, lim.stream_ttl_s * 1000]
        head += [lim.firehose_len, ENTRY_OVERHEAD]
        groups: list[list[_Item]] = []
        for item in batch:
            if item.pub is None:
                groups.append([item])
                continue
            if item.pub.stream in self._gaps:
                item.args[14] = "1"
            if not groups or groups[-1][0].pub is None:
                groups.append([])
            groups[-1].append(item)
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:  # in queue order: Redis applies them in that order
                first = group[0]
                if first.pub is None:
                    fields = dict(zip(first.args[::2], first.args[1::2], strict=True))
                    pipe.xadd(self._fire, fields, maxlen=lim.firehose_len, approximate=True)
                    continue
                keys: list[Any] = [self._fire]
                args: list[Any] = list(head)
                for item in group:
                    keys += item.args[:3]
                    args += item.args[3:]
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if any(isinstance(r, NoScriptError) for r in replies):  # Redis lost its script cache: none ran
            self._sha = await self.redis.script_load(_PUBLISH)
            raise ConnectionError("script cache flushed")
        for r in replies:
            if isinstance(r, RedisError) and not isinstance(r, ResponseError):
                raise r
        by_item: dict[int, Any] = {}
        for group, reply in zip(groups, replies, strict=True):
            for i, item in enumerate(group):
                if item.pub is None or isinstance(reply, Exception):
                    by_item[item.lid] = reply
                    continue
                seq, epoch = reply[2 * i], reply[2 * i + 1]
                by_item[item.lid] = ResponseError(_str(epoch)) if seq == -2 else [seq, epoch]
        return [by_item[item.lid] for item in batch]

    def _drop_queue(self) -> None:
        """Redis stayed away past ``publish_timeout_s``: queued publications go to local listeners only."""
        while self._queue:
            item = self._queue.popleft()
            if item.pub is not None:
                self._deliver_locally(item)
            else:
                self._pending.pop(item.lid, None)
                self._settle(item)

    def _drain_failed(self) -> None:
        while self._pending:
            first = next(iter(self._pending.values()))
            if not first.failed:
                return
            self._pending.popitem(last=False)
            self._settle(first)

    # -- reading and delivery -------------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = 0.05
        while True:
            try:
                resp: Any = await self._reader_client.xread({self._fire: self._last_id}, count=1024, block=1000)
            except (RedisError, OSError) as exc:
                self._set_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                await self._check_restart()
                continue
            backoff = 0.05
            if self.down_since is not None and not self._queue:
                self._set_up()  # reachable again (the writer, if it has work, says so itself)
            if not resp:
                self.read_lag_ms = 0.0  # nothing new within the block: caught up
            for _name, entries in resp or ():
                if entries:
                    self._note_position(entries[0][0], entries[-1][0], len(entries))
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    try:
                        self._on_entry(fields)
                    except Exception:
                        log.exception("bus: a shared-log entry could not be handled")

    def _note_position(self, first: bytes, last: bytes, n: int) -> None:
        """Track the read lag (entry ids are Redis's clock in ms), and count a log overrun.

        A full batch whose first entry is not the one after ``_last_id`` means ``MAXLEN ~``
        trimmed entries this process never read: its clients miss those events (they see a seq
        gap and replay). ``redis.firehose_len`` bounds how far a process may fall behind.
        """
        self.read_lag_ms = max(0.0, time.time() * 1000 - int(last.split(b"-", 1)[0]))
        if n >= 1024 and self._last_id != b"0-0":
            self._spawn_overrun_check(first)

    def _spawn_overrun_check(self, first: bytes) -> None:
        expected = self._last_id

        async def check() -> None:
            with contextlib.suppress(RedisError, OSError):
                gone: Any = await self.redis.xrange(self._fire, expected, first, count=2)
                if len(gone) < 2:  # the entry after ``expected`` is not there: trimmed unread
                    self.overruns += 1
                    log.warning("bus: this process fell behind the shared log past redis.firehose_len")

        task = asyncio.get_running_loop().create_task(check())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check_restart(self) -> None:
        """A Redis that came back with a new run id lost the log: read the new one from its start."""
        try:
            info = await self._reader_client.info("server")
        except (RedisError, OSError):
            return
        run_id = str(info.get("run_id", "")).encode()
        if run_id and run_id != self._run_id:
            log.warning("bus: Redis restarted (its data is gone): streams start over with new epochs")
            self._run_id = run_id
            self._last_id = b"0-0"
            # What was sent to the old Redis and not read back is delivered here, in order.
            for item in list(self._pending.values()):
                if item.sent and item.pub is not None:
                    self._deliver_locally(item)
            self._gaps.update(s for s in self._local_seq)

    def _on_entry(self, f: dict[bytes, bytes]) -> None:
        kind = f.get(b"k")
        mine = f.get(b"o") == self.origin.encode()
        if kind != b"p":
            if not mine and kind is not None:
                handler = self.control_handlers.get(kind)
                if handler is not None:
                    handler(kind, f)
            return
        seq, epoch = int(f[b"q"]), f[b"ep"].decode()
        if mine:
            lid = int(f[b"n"])
            # Items queued before this one and never read back were refused or lost: settle them.
            while self._pending:
                first_lid, first = next(iter(self._pending.items()))
                if first_lid >= lid:
                    break
                self._pending.popitem(last=False)
                if first.pub is not None and not first.failed:
                    self._deliver_locally(first, pop=False)
                else:
                    self._settle(first)
            item = self._pending.pop(lid, None)
            if item is None or item.pub is None:
                return  # already delivered locally while Redis was away
            pub = item.pub
            pub.seq, pub.epoch = seq, epoch
            if item.seq_field:
                pub.payload["seq"] = seq
            lag = (time.monotonic() - item.queued) * 1000
            self.lag_ms = lag if self.delivered == 0 else self.lag_ms * 0.9 + lag * 0.1
            self.lag_max_ms = max(self.lag_max_ms * 0.999, lag)
            self._deliver(pub)
            self._settle(item)
            return
        stream = f[b"s"].decode()
        payload = _json.loads(f[b"p"])
        fold = _fold(f.get(b"f", b""))
        if fold is not None and not self._rebuild(stream, fold, payload, f):
            return  # a droppable delta this process cannot rebuild yet (it joined mid-stream)
        if f.get(b"sf") == b"1":
            payload["seq"] = seq
        pub = Publication(stream, seq, epoch, f[b"v"].decode(), payload, f.get(b"r") == b"1", remote=True)
        self.remote += 1
        self._deliver(pub)

    def _rebuild(self, stream: str, fold: Fold, payload: dict[str, Any], f: dict[bytes, bytes]) -> bool:
        """Put the folded text back into a delta-only entry's payload (see ``_keyframe``); False if unknown."""
        key = (stream, fold.key)
        texts = self._texts
        if f.get(b"kf") == b"1":
            text = _text_at(payload, fold)
        else:
            before = texts.get(key)
            delta = f.get(b"l", b"").decode()
            if before is None or len(before) + len(delta) != int(f.get(b"tl") or -1):
                self.skipped += 1
                return False
            text = before + delta
            if fold.delta is not None:
                _put_at(payload, fold.delta, delta)
            _put_at(payload, fold.text, text)
        texts[key] = text
        texts.move_to_end(key)
        while len(texts) > MAX_REBUILT_STREAMS:
            texts.popitem(last=False)
        return True

    def _deliver(self, pub: Publication) -> None:
        self._local_seq[pub.stream] = (pub.seq, pub.epoch)
        if len(self._local_seq) > 10_000:
            self._local_seq.pop(next(iter(self._local_seq)))
        self.delivered += 1
        for listener in self._listeners:
            try:
                listener.handle_publication(pub)
            except Exception:
                log.exception("bus listener failed")

    def _deliver_locally(self, item: _Item, *, pop: bool = True) -> None:
        """Deliver without Redis (it is away): numbered from what this process last saw of the stream."""
        if pop:
            self._pending.pop(item.lid, None)
        pub = item.pub
        assert pub is not None
        last_seq, epoch = self._local_seq.get(pub.stream, (0, ""))
        if not pub.seq:
            pub.seq = last_seq + 1
            if item.seq_field:
                pub.payload["seq"] = pub.seq
        pub.epoch = epoch or "local"
        self._gaps.add(pub.stream)
        self.local_only += 1
        self._deliver(pub)
        self._settle(item)

    @staticmethod
    def _settle(item: _Item) -> None:
        if item.done is not None and not item.done.done():
            item.done.set_result(None)
        callbacks, item.callbacks = item.callbacks, []
        for fn in callbacks:
            try:
                fn()
            except Exception:
                log.exception("delivery callback failed")

    # -- state -----------------------------------------------------------------------
    def _set_down(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.down_reason = f"redis unreachable: {exc}"
            log.warning("bus: %s", self.down_reason)
            self._changed()

    def _set_up(self) -> None:
        if self.down_since is not None:
            self.down_since = None
            self.down_reason = None
            log.info("bus: Redis reachable again")
            self._changed()

    def _changed(self) -> None:
        for fn in self.state_listeners:
            try:
                fn()
            except Exception:
                log.exception("bus state listener failed")

    def mark_down(self, exc: BaseException) -> None:
        """Another user of the connection (the cluster's heartbeat) saw Redis fail."""
        self._set_down(exc)

    def mark_up(self) -> None:
        if not self._queue:
            self._set_up()


_FOLDS: dict[bytes, Fold] = {}


def _fold(spec: bytes) -> Fold | None:
    if not spec:
        return None
    fold = _FOLDS.get(spec)
    if fold is None:
        key, text, delta = _json.loads(spec)
        fold = _FOLDS[spec] = Fold(key, tuple(text), tuple(delta) if delta is not None else None)
    return fold


def _entry(f: dict[bytes, bytes]) -> HistoryEntry:
    return HistoryEntry(
        int(f[b"q"]),
        f[b"a"] == b"1",
        f[b"e"].decode(),
        f[b"d"],
        f[b"r"] == b"1",
        _fold(f[b"f"]),
        f[b"l"].decode(),
        int(f[b"z"]),
        f.get(b"w") == b"1",
    )


def _text_at(payload: Any, fold: Fold) -> str:
    value: Any = payload
    for part in fold.text:
        value = value[part]
    return str(value)


def _put_at(payload: Any, path: tuple[str | int, ...], value: Any) -> None:
    target: Any = payload
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unavailable(exc: BaseException) -> RpcError:
    return RpcError(ErrorCode.UNAVAILABLE, f"redis unreachable: {exc}", retryable=True)


if TYPE_CHECKING:
    _check: EventBus = RedisBus("redis://localhost")
