"""The gateway under soak: a real ``python -m agenthub gateway`` process, killed and restarted on its ports.

Each start is an *incarnation* with its own log file (stdout and stderr), so
the end checks can read every log, know how each process ended (killed by
us, stopped by us, or died by itself) and measure RSS of the live one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.procs import rss_bytes, tree

__all__ = ["GatewayPorts", "Incarnation", "SoakGateway", "free_port"]

# What the gateway prints once each listener is up (main, then the AgentBox and MyAgent ports).
READY_LINES = (b"agenthub gateway ready on", b"agentbox listener on port", b"myagent listener on port")
TRACEBACK = "Traceback (most recent call last)"
START_DEADLINE_S = 60  # generous: a shared, loaded box can take long to import and open the database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class GatewayPorts:
    main: int
    agentbox: int
    myagent: int

    @classmethod
    def pick(cls) -> GatewayPorts:
        return cls(free_port(), free_port(), free_port())


@dataclass
class Incarnation:
    """One gateway process: its log, and how it ended."""

    number: int
    pid: int
    log: Path
    started: float  # wall clock (time.time()) when it was ready
    ended: float | None = None
    how: str = "running"  # running | killed | stopped | died
    exit_code: int | None = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tracebacks(self) -> list[str]:
        """Each logged traceback with the line before it (its message) and up to its exception line."""
        lines = self.text().splitlines()
        found = []
        for i, line in enumerate(lines):
            if TRACEBACK not in line:
                continue
            block = lines[max(0, i - 1) : i + 1]
            for nxt in lines[i + 1 :]:
                block.append(nxt)
                if not nxt[:1].isspace():
                    break
            found.append("\n".join(block))
        return found


@dataclass
class SoakGateway:
    """Starts, kills (SIGKILL) and stops (SIGTERM) the gateway; the data dir and ports stay."""

    run_dir: Path
    ports: GatewayPorts
    args: list[str]
    env: dict[str, str]
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "agenthub", "gateway"])
    incarnations: list[Incarnation] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def current(self) -> Incarnation:
        return self.incarnations[-1]

    def start(self) -> Incarnation:
        n = len(self.incarnations) + 1
        log = self.run_dir / f"gateway-{n}.log"
        argv = [
            *self.command,
            "--port",
            str(self.ports.main),
            "--agentbox-port",
            str(self.ports.agentbox),
            "--myagent-port",
            str(self.ports.myagent),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(log, "wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.run_dir)
        inc = Incarnation(n, self.proc.pid, log, 0.0)
        self.incarnations.append(inc)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                inc.how, inc.exit_code, inc.ended = "died", self.proc.returncode, time.time()
                raise RuntimeError(f"gateway exited at start ({self.proc.returncode}):\n{inc.text()[-3000:]}")
            text = log.read_bytes()
            if all(line in text for line in READY_LINES):
                inc.started = time.time()
                return inc
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"gateway not ready within {START_DEADLINE_S} s:\n{inc.text()[-3000:]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Record a gateway that died by itself (the end checks count it)."""
        if self.proc is not None and self.proc.poll() is not None and self.current.how == "running":
            self.current.how, self.current.exit_code, self.current.ended = "died", self.proc.returncode, time.time()
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no cleanup runs."""
        self._end(signal.SIGKILL, "killed")

    def stop(self) -> int | None:
        """SIGTERM, a graceful stop; it must exit 0 (the end checks say so otherwise)."""
        self._end(signal.SIGTERM, "stopped")
        return self.current.exit_code if self.incarnations else None

    def _end(self, sig: int, how: str) -> None:
        self.check_alive()
        proc = self.proc
        if proc is None:
            return
        inc = self.current
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            how = f"{how}, then killed: still running 30 s after {signal.Signals(sig).name}"
        inc.how, inc.exit_code, inc.ended = how, proc.returncode, time.time()
        self.proc = None

    def rss(self) -> int:
        """Resident memory of the live gateway (its whole process tree), in bytes; 0 when down."""
        if self.proc is None:
            return 0
        with contextlib.suppress(psutil.Error):
            return rss_bytes(tree(psutil.Process(self.proc.pid)))
        return 0
