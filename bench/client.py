"""Load-generator worker: one process holding many picows WebSocket clients.

Started by the driver as ``python -m bench.client``; it takes commands as JSON
lines on stdin (see ``bench.control``) and answers on stdout. picows parses
frames in Cython and hands each one to ``on_ws_frame`` without a task per
socket, so one process can drive thousands of sockets; the driver starts
several and reports their CPU beside every figure.

Every connection speaks the native protocol for real: it waits for
``connect.challenge``, answers ``connect`` with the token and a device identity
signed over the challenge nonce, and waits for hello-ok.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from array import array
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from agenthub.client.identity import DeviceIdentity

from .control import emit, raise_nofile_limit, serve_commands

SAMPLE_CAP = 40_000  # latencies returned per process and phase (uniform subsample; max is exact)

IDENTITIES: dict[tuple[str, ...], DeviceIdentity] = {}  # one device per scope set (pairing pins scopes)
DELTA_MARK = b'"delta":"T'
SEQ_MARK = b'"seq":'


def connect_frame(nonce: str, cfg: dict[str, Any]) -> bytes:
    client = {
        "id": cfg.get("client_id", "test"),
        "version": "1.0.0",
        "platform": "linux",
        "mode": cfg.get("client_mode", "test"),
    }
    scopes = cfg.get("scopes", ["operator.read", "operator.write"])
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": client,
        "role": "operator",
        "scopes": scopes,
    }
    token = cfg.get("token") or ""
    if token:
        params["auth"] = {"token": token}
    if cfg.get("device", True):
        identity = IDENTITIES.get(tuple(scopes))
        if identity is None:
            identity = IDENTITIES[tuple(scopes)] = DeviceIdentity.generate()
        params["device"] = identity.sign_connect(
            nonce=nonce,
            signed_at_ms=time.time_ns() // 1_000_000,
            client_id=client["id"],
            client_mode=client["mode"],
            role="operator",
            scopes=scopes,
            token=token,
            platform="linux",
        )
    return json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}).encode()


class Stats:
    """Counters of the current phase, summed over this process's connections."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.errors = 0  # error replies (S5), counted apart from answers
        self.late = 0  # replies that arrived after the window closed (not counted)
        self.marked = 0
        self.gaps = 0
        self.reorders = 0
        self.lat_us: array[int] = array("q")
        self.first_ns = 0
        self.last_ns = 0
        self.closes: dict[str, int] = {}

    def report(self) -> dict[str, Any]:
        lat = self.lat_us
        step = max(1, len(lat) // SAMPLE_CAP)
        return {
            "frames": self.frames,
            "errors": self.errors,
            "late": self.late,
            "marked": self.marked,
            "gaps": self.gaps,
            "reorders": self.reorders,
            "lat_us": lat[::step].tolist(),
            "lat_max_us": max(lat) if lat else 0,
            "lat_n": len(lat),
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "closes": self.closes,
        }


class Client(WSListener):  # type: ignore[misc]
    """One connection. ``on_frame`` is swapped per phase; the handshake runs first."""

    def __init__(self, worker: Worker, cfg: dict[str, Any]) -> None:
        self.worker = worker
        self.cfg = cfg
        self.t: WSTransport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_seq = 0
        self.rid = 0
        self.sent_ns = 0
        self.on_frame: Callable[[Client, bytes], None] = Client._handshake
        self.runs: dict[str, list[int]] = {}  # S3: run -> [last index, count, first emit ns, last emit ns]
        self.stalled = False
        self.error: dict[str, Any] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.t = transport
        if not self.cfg.get("native", True) and not self.ready.done():
            self.ready.set_result(True)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            self.on_frame(self, frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            reason = f"{frame.get_close_code()} {frame.get_close_message()!r}"
            closes = self.worker.stats.closes
            closes[reason] = closes.get(reason, 0) + 1
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_result(False)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- phases ----------------------------------------------------------------
    def _handshake(self, data: bytes) -> None:
        msg = json.loads(data)
        assert self.t is not None
        if msg.get("event") == "connect.challenge":
            self.t.send(WSMsgType.TEXT, connect_frame(msg["payload"]["nonce"], self.cfg))
        elif msg.get("type") == "res" and msg.get("id") == "c":
            ok = bool(msg.get("ok"))
            if not ok:
                self.error = msg.get("error") or {}
                self.worker.last_error = json.dumps(self.error)[:300]
            self.on_frame = Client._idle
            if not self.ready.done():
                self.ready.set_result(ok)

    def _idle(self, data: bytes) -> None:
        self.worker.stats.frames += 1

    def _check_seq(self, data: bytes, st: Stats) -> None:
        """The connection's event ``seq`` (last field of the frame) must go up by one: count gaps and reorders."""
        j = data.rfind(SEQ_MARK)
        if j > 0:
            seq = int(data[j + 6 : -1])
            last = self.last_seq
            if last:
                if seq <= last:
                    st.reorders += 1
                elif seq != last + 1:
                    st.gaps += seq - last - 1
            self.last_seq = seq

    def _fanout(self, data: bytes) -> None:
        now = time.time_ns()
        st = self.worker.stats
        st.frames += 1
        self._check_seq(data, st)
        i = data.find(DELTA_MARK)
        if i < 0:
            return
        sent = int(data[i + 10 : i + 29])
        st.marked += 1
        st.lat_us.append((now - sent) // 1000)
        if not st.first_ns or sent < st.first_ns:
            st.first_ns = sent
        st.last_ns = now

    def _rpc(self, data: bytes) -> None:
        """Closed loop: every response inside the window sends the next request.

        Only ``ok`` replies that arrive before the window closes count (with their
        round trip); error replies are counted apart, late replies are not counted.
        """
        now = time.time_ns()
        st = self.worker.stats
        if not data.startswith(b'{"type":"res"') and b'"type":"res"' not in data[:40]:
            return
        if now > self.worker.window_end_ns:
            st.late += 1
            return
        i = data.find(b'"ok":')
        if i < 0 or data[i + 5 : i + 6] != b"t":
            st.errors += 1
            if not self.worker.last_error:
                self.worker.last_error = data[:300].decode(errors="replace")
        else:
            st.frames += 1
            st.lat_us.append((now - self.sent_ns) // 1000)
            if not st.first_ns:
                st.first_ns = now
            st.last_ns = now
        self.send_rpc()

    def send_rpc(self) -> None:
        assert self.t is not None
        self.rid += 1
        self.sent_ns = time.time_ns()
        self.t.send(WSMsgType.TEXT, self.worker.rpc_frame % self.rid)

    def _agent(self, data: bytes) -> None:
        """S3: deltas carry ``<index>@<provider emit time_ns>|``; per run they must arrive 0, 1, 2, ..."""
        now = time.time_ns()
        st = self.worker.stats
        st.frames += 1
        self._check_seq(data, st)
        if data.startswith(b'{"type":"res"'):
            msg = json.loads(data)
            payload = msg.get("payload") or {}
            if payload.get("status") in ("ok", "error", "aborted"):
                self.worker.finals[payload.get("runId", "?")] = payload["status"]
                self.worker.final_count += 1
                if self.worker.final_count >= self.worker.expected_finals:
                    self.worker.all_final.set()
            elif not msg.get("ok"):
                self.worker.last_error = json.dumps(msg.get("error"))[:300]
                self.worker.final_count += 1
            return
        i = data.find(b'"delta":"D')
        if i < 0:
            return
        k = data.find(b"@", i)
        idx = int(data[i + 10 : k])
        sent = int(data[k + 1 : k + 20])
        r = data.find(b'"runId":"')
        run_id = data[r + 9 : data.find(b'"', r + 9)].decode()
        st.marked += 1
        st.lat_us.append((now - sent) // 1000)
        seen = self.runs.get(run_id)
        if seen is None:
            seen = self.runs[run_id] = [-1, 0, sent, sent]
        if idx != seen[0] + 1:
            if idx <= seen[0]:
                st.reorders += 1
            else:
                st.gaps += idx - seen[0] - 1
        seen[0] = idx
        seen[1] += 1
        seen[3] = sent


class Worker:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.stats = Stats()
        self.last_error = ""
        self.window_end_ns = 0  # S5: replies after this are late
        self.rpc_frame = b""
        self.finals: dict[str, str] = {}
        self.final_count = 0
        self.expected_finals = 0
        self.all_final = asyncio.Event()

    async def _open_one(self, cfg: dict[str, Any]) -> Client | None:
        """Connect and handshake; a retryable refusal ("gateway starting") is retried after ``retryAfterMs``."""
        for _ in range(5):
            client, retry_ms = await self._try_open(cfg)
            if client is not None or retry_ms is None:
                return client
            await asyncio.sleep(retry_ms / 1000)
        return None

    async def _try_open(self, cfg: dict[str, Any]) -> tuple[Client | None, int | None]:
        rcvbuf = cfg.get("rcvbuf")

        async def small_window_socket(url: Any) -> socket.socket:
            """A socket whose receive buffer is set before connecting, so the window starts small."""
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (url.host, url.port))
            return sock

        try:
            _, client = await ws_connect(
                lambda: Client(self, cfg),
                cfg["url"],
                websocket_handshake_timeout=30,
                max_frame_size=64 * 1024 * 1024,
                socket_factory=small_window_socket if rcvbuf else None,
            )
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return None, None
        assert isinstance(client, Client)
        try:
            ok = await asyncio.wait_for(client.ready, 60)
        except TimeoutError:
            ok = False
        if not ok:
            if client.t is not None:
                client.t.disconnect()
            retry = client.error.get("retryAfterMs") if client.error.get("retryable") else None
            return None, int(retry) if isinstance(retry, int | float) else None
        return client, None

    async def open(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Open ``n`` connections (``concurrency`` at a time); the first ``stall`` stop reading.

        With ``deadline_s``, attempts not started by then are given up (``gave_up``).
        """
        self.last_error = ""  # each command reports its own errors, never an earlier one's
        sem = asyncio.Semaphore(cmd.get("concurrency", 32))
        gave_up = 0
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cmd.get("deadline_s", 600)

        async def one() -> Client | None:
            nonlocal gave_up
            async with sem:
                if loop.time() > deadline:  # a slow server gets the connections it managed so far
                    gave_up += 1
                    return None
                return await self._open_one(cmd)

        got = await asyncio.gather(*(one() for _ in range(cmd["n"])))
        clients = [c for c in got if c is not None]
        for c in clients[: cmd.get("stall", 0)]:
            assert c.t is not None
            c.t.underlying_transport.pause_reading()
            c.on_frame = Client._idle
            c.stalled = True
        self.clients.extend(clients)
        return {
            "opened": len(clients),
            "failed": cmd["n"] - len(clients) - gave_up,
            "gave_up": gave_up,
            "seconds": time.perf_counter() - t0,
            "error": self.last_error,
        }

    async def arm(self, cmd: dict[str, Any]) -> dict[str, Any]:
        handler = {"fanout": Client._fanout, "idle": Client._idle, "agent": Client._agent}[cmd["mode"]]
        self.stats.reset()
        for c in self.clients:
            if c.stalled:
                continue
            c.on_frame = handler
            c.last_seq = 0
        return {"armed": len(self.clients)}

    async def collect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        report = self.stats.report()
        report["open"] = sum(1 for c in self.clients if not c.closed.done())
        report["stalled_open"] = sum(1 for c in self.clients if c.stalled and not c.closed.done())
        report["error"] = self.last_error
        return report

    async def rpc(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Closed-loop requests on every connection for ``seconds`` (only replies inside the window count)."""
        frame = json.dumps({"type": "req", "id": "ID", "method": cmd["method"], "params": cmd.get("params", {})})
        self.rpc_frame = frame.replace('"ID"', '"r%d"').encode()
        self.last_error = ""
        self.stats.reset()
        for c in self.clients:
            c.on_frame = Client._rpc
        t0 = time.time_ns()
        self.window_end_ns = t0 + int(cmd["seconds"] * 1e9)
        for c in self.clients:
            c.send_rpc()
        await asyncio.sleep(cmd["seconds"])
        await asyncio.sleep(0.3)  # in-flight replies land now: counted as late, not as answers
        report = self.stats.report()
        report["window_s"] = (self.window_end_ns - t0) / 1e9
        report["error"] = self.last_error
        for c in self.clients:
            c.on_frame = Client._idle
        return report

    async def agent(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Start ``runs`` agent runs spread over this process's connections; wait for every final."""
        self.last_error = ""
        self.stats.reset()
        self.finals.clear()
        self.final_count = 0
        self.expected_finals = cmd["runs"]
        self.all_final = asyncio.Event()
        for c in self.clients:
            c.on_frame = Client._agent
            c.last_seq = 0
            c.runs = {}
        if cmd["runs"] == 0:  # a reader only (S3 across processes): every run is another connection's
            self.all_final.set()
        for i in range(cmd["runs"]):
            c = self.clients[i % len(self.clients)]
            assert c.t is not None
            req = {
                "type": "req",
                "id": f"a{i}",
                "method": "agent",
                "params": {
                    "message": cmd["message"],
                    "idempotencyKey": f"{cmd['prefix']}-{i}",
                    "sessionKey": f"{cmd['prefix']}-{i}",
                },
            }
            c.t.send(WSMsgType.TEXT, json.dumps(req).encode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_final.wait(), cmd.get("timeout", 60))
        # Every connection also receives the other workers' runs: wait (bounded) for their tails.
        loop = asyncio.get_running_loop()
        tail_end = loop.time() + (3.0 if cmd["runs"] else cmd.get("timeout", 60))
        while loop.time() < tail_end and any(  # noqa: ASYNC110 - polls counters the frame callbacks bump
            len(c.runs) < cmd.get("total_runs", cmd["runs"]) or any(r[1] < cmd.get("count", 0) for r in c.runs.values())
            for c in self.clients
        ):
            await asyncio.sleep(0.05)
        report = self.stats.report()
        deltas = [r[1] for c in self.clients for r in c.runs.values()]
        # The provider runs in the gateway's loop: when the loop is saturated it emits late, so the
        # rate it achieved (emit stamps of first and last delta) shows whether the gateway kept up.
        first = self.clients[0].runs.values() if self.clients else []
        rates = [(r[1] - 1) / ((r[3] - r[2]) / 1e9) for r in first if r[1] > 1 and r[3] > r[2]]
        report.update(
            emit_rates=rates,
            finals=self.final_count,
            statuses=sorted(set(self.finals.values())),
            runs_seen=len(deltas),
            deltas_per_run_min=min(deltas, default=0),
        )
        for c in self.clients:
            c.on_frame = Client._idle
        return report

    async def handshakes(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """``concurrency`` loops of connect -> hello-ok -> close for ``seconds``.

        A handshake counts when its hello-ok arrived inside the window; one that
        completes after the window closed is ``late``, a refused one ``failed``.
        """
        self.last_error = ""
        loop = asyncio.get_running_loop()
        end = loop.time() + cmd["seconds"]
        done = 0
        failed = 0
        late = 0
        lat: array[int] = array("q")

        async def cycle() -> None:
            nonlocal done, failed, late
            while loop.time() < end:
                t0 = time.time_ns()
                client = await self._open_one(cmd)
                if client is None:
                    failed += 1
                    await asyncio.sleep(0.01)
                    continue
                if loop.time() > end:
                    late += 1
                    assert client.t is not None
                    client.t.disconnect()
                    continue
                lat.append((time.time_ns() - t0) // 1000)
                assert client.t is not None
                client.t.send_close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(client.closed), 5)
                client.t.disconnect()
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(cycle() for _ in range(cmd.get("concurrency", 8))))
        step = max(1, len(lat) // SAMPLE_CAP)
        return {
            "done": done,
            "failed": failed,
            "late": late,
            "window_s": cmd["seconds"],
            "seconds": time.perf_counter() - t0,
            "lat_us": lat[::step].tolist(),
            "lat_max_us": max(lat) if lat else 0,
            "error": self.last_error,
        }

    async def close_stalled(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.close({"stalled": True})

    async def close(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Close every connection, or only those to ``url``."""
        url = cmd.get("url")
        keep = []
        for c in self.clients:
            if (url is not None and c.cfg["url"] != url) or (cmd.get("stalled") and not c.stalled):
                keep.append(c)
            elif c.t is not None:
                c.t.underlying_transport.resume_reading()
                c.t.disconnect()
        self.clients = keep
        await asyncio.sleep(0.2)
        return {"closed": True}


async def main() -> None:
    worker = Worker()
    emit({"ready": True})
    await serve_commands(
        {
            "open": worker.open,
            "arm": worker.arm,
            "collect": worker.collect,
            "rpc": worker.rpc,
            "agent": worker.agent,
            "handshakes": worker.handshakes,
            "close": worker.close,
            "close_stalled": worker.close_stalled,
        }
    )


if __name__ == "__main__":
    raise_nofile_limit()
    import uvloop

    uvloop.run(main())
