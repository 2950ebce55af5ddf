"""``agenthub gateway --workers N``: N gateway processes on one port, so one machine uses all its cores.

The process the operator started becomes a small supervisor: it takes the data
dir's lock for the whole gateway (its workers check that it holds it), picks the
port when ``--port 0`` asks for a free one, and starts N workers, each
``agenthub gateway`` with the same arguments plus ``--worker-index i``. Each
worker binds the port with ``SO_REUSEPORT`` (the kernel spreads new connections
over them) and shares the bus, presence, run ownership and caches through Redis
(``--redis-url``), and the database (``--database-url``, or SQLite in the data
dir). The supervisor relays the workers' output, prints one ``ready`` line when
all of them serve, restarts a worker that dies (at most ``_MAX_RESTARTS`` a
minute), and on SIGINT/SIGTERM stops them all and exits 0 when they stopped
cleanly. A worker never restarts the others: a killed worker's clients
reconnect to the remaining ones, and its runs are ended by whichever worker
notices first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO

from ..config import GatewaySettings
from ..datadir import DataDirBusyError, DataDirLock, secure_dir

__all__ = ["WORKER_READY", "supervise"]

WORKER_READY = "agenthub worker {index} (pid {pid}) serving {url}"
_MAX_RESTARTS = 5  # per worker per minute; past that the gateway stops
_STOP_TIMEOUT_S = 10  # then stragglers are killed (under a supervisor's own 15 s, as systemd and tests give)


@dataclass(eq=False)
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    restarts: deque[float] = field(default_factory=deque)


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the supervisor dies (even by SIGKILL), so no worker is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_reuse_port(host: str) -> tuple[int, socket.socket]:
    """A free port, held by a bound (not listening) ``SO_REUSEPORT`` socket until the workers bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    port: int = sock.getsockname()[1]
    return port, sock


def supervise(n: int, settings: GatewaySettings, argv: list[str], out: IO[str] | None = None) -> int:
    """Run ``n`` workers until SIGINT/SIGTERM; returns the exit code (see the module doc)."""
    out = out or sys.stdout
    data_dir = settings.resolved_data_dir
    try:
        secure_dir(data_dir)
        lock = DataDirLock(data_dir)
        lock.acquire()
    except DataDirBusyError as exc:
        print(f"agenthub: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agenthub: cannot use data dir {data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    holder: socket.socket | None = None
    port = settings.port
    if port == 0:
        port, holder = _free_reuse_port(settings.host)
    scheme = "wss" if settings.security.tls_cert is not None else "ws"
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [_Worker(i) for i in range(n)]
    write_lock = threading.Lock()

    def emit(line: str) -> None:
        with write_lock:
            out.write(line if line.endswith("\n") else line + "\n")
            out.flush()

    def start(worker: _Worker) -> None:
        cmd = [
            sys.executable,
            "-m",
            "agenthub",
            *argv,
            "--port",
            str(port),
            "--worker-index",
            str(worker.index),
            "--worker-of",
            str(os.getpid()),
        ]
        worker.ready.clear()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(), preexec_fn=_die_with_parent
        )
        worker.proc = proc
        threading.Thread(target=relay, args=(worker, proc), daemon=True).start()

    def relay(worker: _Worker, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        marker = f"agenthub worker {worker.index} ("
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            if line.startswith(marker):
                worker.ready.set()
            emit(line)

    code = 0
    try:
        for worker in workers:
            start(worker)
        deadline = time.monotonic() + 60
        while not stop.is_set() and not all(w.ready.is_set() for w in workers):
            if any(w.proc is not None and w.proc.poll() is not None for w in workers):
                emit("agenthub: a worker exited while starting: stopping")
                code = 1
                stop.set()
                break
            if time.monotonic() > deadline:
                emit("agenthub: the workers did not start within 60 s: stopping")
                code = 1
                stop.set()
                break
            time.sleep(0.05)
        if holder is not None:
            holder.close()
            holder = None
        if not stop.is_set():
            emit(f"agenthub gateway ready on {scheme}://{settings.host}:{port} ({n} workers, pid {os.getpid()})")
        while not stop.wait(0.2):
            for worker in workers:
                proc = worker.proc
                if proc is None or proc.poll() is None:
                    continue
                now = time.monotonic()
                while worker.restarts and now - worker.restarts[0] > 60:
                    worker.restarts.popleft()
                if len(worker.restarts) >= _MAX_RESTARTS:
                    emit(f"agenthub: worker {worker.index} keeps dying (exit {proc.returncode}): stopping")
                    code = 1
                    stop.set()
                    break
                worker.restarts.append(now)
                emit(f"agenthub: worker {worker.index} exited with {proc.returncode}: restarting it")
                start(worker)
    finally:
        code = _stop_all(workers) or code
        if holder is not None:
            holder.close()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _stop_all(workers: list[_Worker]) -> int:
    """SIGTERM every worker, wait, SIGKILL stragglers; 1 if any stopped badly."""
    code = 0
    live = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
    for proc in live:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    for proc in live:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = 1
        if proc.returncode not in (0, None):
            code = 1
    return code
