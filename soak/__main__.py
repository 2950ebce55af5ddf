"""``python -m soak``: mixed honest and hostile load on every dialect while the gateway is SIGKILLed and restarted.

Timeline (``--quick`` for CI: fewer, shorter steps):

1. provision: AgentBox keys (alice, bob, mallory), a private and a public LangBot
   pipeline (the CLI, before the first start);
2. chaos: ``--kills`` cycles of honest load (every dialect) plus hostile load,
   each ended by SIGKILL at a random moment and a restart on the same ports;
3. leak check, in the last incarnation: a warm-up round, quiet, RSS baseline;
   two identical measured rounds, quiet, RSS after each;
4. a graceful stop (SIGTERM), then the checks against the database and the logs.

Prints the table (and writes ``soak.md``/``soak.json`` in the run directory);
exits 1 if a check failed. See soak/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agenthub.config import SecuritySettings
from bench.control import raise_nofile_limit
from bench.procs import Child

from . import checks
from .agentbox import AgentBoxWorker
from .common import Credentials, Phase, SoakEnv
from .gateway import GatewayPorts, SoakGateway
from .langbot import HookWorker, LangBotWorker
from .ledger import Ledger
from .myagent import MyAgentWorker
from .native import NativeWorker, SlowConsumer

GUESS_IP, HOSTILE_IP, FLOOD_IP, SLOW_IP = "127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6"
SETTLE_S = 3.0  # after a restart every client reconnects and replays at once: latency is judged after this
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
PREAUTH_CAP = SecuritySettings().max_preauth_per_ip  # as shipped: the soak does not change it


@dataclass(frozen=True)
class Plan:
    kills: int
    cycle_s: float  # honest + hostile load between two kills (jittered +-30%)
    round_s: float  # each of the last incarnation's leak rounds: a warm-up, then the measured ones
    rounds: int  # measured rounds after the warm-up (the p99 and RSS windows)
    quiet_s: float  # after a round ends and every run finished, before RSS is read


FULL = Plan(kills=4, cycle_s=25, round_s=40, rounds=2, quiet_s=5)
QUICK = Plan(kills=2, cycle_s=10, round_s=12, rounds=2, quiet_s=3)
WORKERS = {"operators": 3, "webchat": 2, "agentbox": 2, "myagent": 2, "langbot": 2, "slow": 2}


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", *args[:1], "--data-dir", str(data_dir), "--json", *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout.splitlines()[0])
    return data


def child_env(cfg: dict[str, Any]) -> dict[str, str]:
    """A child's configuration, credentials included, in its environment (``SOAK_CONFIG``), not its argv."""
    return {**os.environ, "SOAK_CONFIG": json.dumps(cfg)}


def provision(data_dir: Path) -> Credentials:
    keys = {user: cli(data_dir, "keys", "create", "--user", user)["key"] for user in ("alice", "bob", "mallory")}
    private = cli(data_dir, "pipelines", "create", "--name", "soak")
    public = cli(data_dir, "pipelines", "create", "--name", "soak-public", "--public")
    return Credentials(
        token=secrets.token_urlsafe(24),
        hook_token=secrets.token_urlsafe(24),
        alice_key=keys["alice"],
        bob_key=keys["bob"],
        mallory_key=keys["mallory"],
        pipeline=private["uuid"],
        pipeline_key=private["key"],
        public_pipeline=public["uuid"],
        myagent_secret=secrets.token_urlsafe(24),
    )


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = QUICK if args.quick else FULL
        if args.kills is not None:
            self.plan = dataclasses.replace(self.plan, kills=args.kills)
        self.run_dir = Path(args.out or tempfile.mkdtemp(prefix="agenthub-soak-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.run_dir / "data"
        self.ledger = Ledger()
        self.rng = random.Random(f"{args.seed}:driver")
        self.judged_windows: list[tuple[float, float]] = []
        self.metrics: dict[str, float] = {}
        self.slow_outcomes: list[str] = []
        self.info_rss: list[int] = []

    def log(self, text: str) -> None:
        print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # -- set-up ---------------------------------------------------------------------------
    def gateway(self, creds: Credentials) -> SoakGateway:
        config = {
            "demo": {"word_delay_ms": 20},
            "hooks": {"enabled": True},
            # Bounded by design, but their defaults (64 MiB each) would take an hour to fill here:
            # small bounds fill during the warm-up, so what is left to grow is what no bound holds.
            "limits": {"history_bytes_total": 4 * MIB, "transcript_cache_bytes": 4 * MIB},
        }
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2))
        args = [
            "--data-dir",
            str(self.data_dir),
            "--config",
            str(self.run_dir / "config.json"),
        ]
        command = [sys.executable, "-m", "agenthub", "gateway"]
        # Secrets go in the environment, not on a command line every local user can read.
        env = {
            "AGENTHUB_TOKEN": creds.token,
            "AGENTHUB_MYAGENT_SECRET": creds.myagent_secret,
            "AGENTHUB_HOOKS_TOKEN": creds.hook_token,
        }
        if self.args.fault:
            command = [sys.executable, "-m", "soak.faults", self.args.fault]
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        return SoakGateway(self.run_dir, GatewayPorts.pick(), args, env, command)

    # -- phases ---------------------------------------------------------------------------
    async def run(self) -> int:
        raise_nofile_limit()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"run dir {self.run_dir}; provisioning keys and pipelines")
        creds = provision(self.data_dir)
        gw = self.gw = self.gateway(creds)
        gw.start()
        self.log(f"gateway up on port {gw.ports.main} (agentbox {gw.ports.agentbox}, myagent {gw.ports.myagent})")
        phase = Phase()
        env = SoakEnv(
            "127.0.0.1", gw.ports.main, gw.ports.agentbox, gw.ports.myagent, creds, self.ledger, phase, self.args.seed
        )
        cfg = {"host": env.host, "port": env.port, "agentbox_port": env.agentbox_port, "myagent_port": env.myagent_port}
        probe = Child([sys.executable, "-m", "soak.probe"], child_env(cfg | creds.as_dict()))
        probe.read()
        hostile_cfg = {
            "creds": creds.as_dict(),
            "guess_ip": GUESS_IP,
            "hostile_ip": HOSTILE_IP,
            "flood_ip": FLOOD_IP,
            "slow_ip": SLOW_IP,
            "targets": str(self.run_dir / "targets.json"),
            "seed": self.args.seed,
        }
        hostile = Child([sys.executable, "-m", "soak.hostile"], child_env(cfg | hostile_cfg))
        hostile.read()
        self.hostile = hostile
        self.env = env
        workers = self.workers(env)
        tasks = [asyncio.create_task(w.run(), name=w.name) for w in workers]
        targets = asyncio.create_task(self.write_targets())
        try:
            await self.chaos(phase)
            baseline, peak, after = await self.leak_rounds(phase, workers)
        finally:
            phase.load.clear()
            await self.quiesce(workers)
            phase.stop.set()
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    self.ledger.honest_error("soak", f"worker {task.get_name()} crashed: {task.exception()!r}")
            targets.cancel()
            samples = [(float(t), str(kind), float(ms)) for t, kind, ms in probe.call({"cmd": "report"})["samples"]]
            report = hostile.call({"cmd": "report"})
            probe.stop()
            hostile.stop()
            self.scrape_metrics()
            code = gw.stop()
            self.log(f"gateway stopped (exit {code})")
        stored = checks.Stored.read(self.data_dir / "agenthub.db")
        rows = [
            checks.check_transcripts(self.ledger.acked, stored),
            checks.check_outcomes(self.ledger.runs.values(), stored),
            checks.check_order(self.ledger),
            checks.check_latency(samples, self.judged_windows, self.args.p99_ms),
            checks.check_rss(baseline, peak, after, self.args.rss_slack_mib, 0.10),
            checks.check_logs(gw.incarnations),
            checks.check_guessing(report["counts"], report["examples"]),
            checks.check_hostile_answers(report["counts"], report["examples"]),
            checks.check_isolation(report["counts"], report["examples"]),
            checks.check_caps(report["counts"], PREAUTH_CAP),
            checks.check_honest(self.ledger),
        ]
        return self.finish(rows, samples, report)

    def workers(self, env: SoakEnv) -> list[Any]:
        c = env.creds
        out: list[Any] = [NativeWorker(env, f"op{i}", "cli") for i in range(WORKERS["operators"])]
        out += [NativeWorker(env, f"web{i}", "webchat") for i in range(WORKERS["webchat"])]
        out += [AgentBoxWorker(env, f"ab{i}", "alice", c.alice_key) for i in range(WORKERS["agentbox"])]
        out += [MyAgentWorker(env, f"ma{i}") for i in range(WORKERS["myagent"])]
        out += [LangBotWorker(env, f"lb-{kind}", kind) for kind in ("person", "group")[: WORKERS["langbot"]]]
        out.append(HookWorker(env, "hook"))
        return out

    async def load_round(self, phase: Phase, seconds: float) -> None:
        """Honest and hostile load for ``seconds``, with slow consumers; its latency window is judged."""
        phase.load.set()
        self.hostile.call({"cmd": "start"})
        began = time.time()
        slow = [SlowConsumer(self.env) for _ in range(WORKERS["slow"])]
        for consumer in slow:
            try:
                await consumer.open()
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.ledger.honest_error("slow consumer", f"could not connect: {exc!r}")
        await asyncio.sleep(seconds)
        self.judged_windows.append((max(began, self.gw.current.started + SETTLE_S), time.time()))
        self.slow_outcomes += await asyncio.gather(*(c.outcome(timeout=2) for c in slow))

    async def chaos(self, phase: Phase) -> None:
        for k in range(self.plan.kills):
            seconds = self.plan.cycle_s * self.rng.uniform(0.7, 1.3)
            self.log(f"cycle {k + 1}/{self.plan.kills}: load for {seconds:.0f} s, then SIGKILL")
            await self.load_round(phase, seconds)
            self.scrape_metrics()
            self.gw.kill()
            self.ledger.counts["gateway kills (SIGKILL)"] += 1
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            await asyncio.to_thread(self.gw.start)
            self.log(f"restarted (incarnation {self.gw.current.number})")

    async def quiesce(self, workers: list[Any], ceiling: float = 120) -> None:
        """No new work; wait for every honest run to end (the hostile load stops too)."""
        self.hostile.call({"cmd": "pause"})
        deadline = time.monotonic() + ceiling
        while any(w.busy for w in workers) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls the workers
            await asyncio.sleep(0.2)
        busy = [w.name for w in workers if w.busy]
        if busy:
            self.ledger.honest_error("soak", f"still busy {ceiling:.0f} s after the load stopped: {busy}")

    async def rss(self, n: int = 5) -> int:
        values = []
        for _ in range(n):
            values.append(self.gw.rss())
            await asyncio.sleep(0.5)
        return checks.median(values)

    async def leak_rounds(self, phase: Phase, workers: list[Any]) -> tuple[int, int, int]:
        """A warm-up round, then ``rounds`` identical ones; RSS after each, once every run ended.

        The warm-up fills what is bounded by design (replay history, caches, the
        allocator's arenas); the baseline is read after it. A leak grows with every
        further round of the same load; memory that is only bounded does not.
        """
        plan = self.plan
        self.log(f"leak check: warm-up round of {plan.round_s:.0f} s")
        await self.load_round(phase, plan.round_s)
        baseline = await self.quiet_rss(phase, workers)
        self.log(f"RSS baseline {baseline / MIB:.1f} MiB; {plan.rounds} more rounds of {plan.round_s:.0f} s")
        peak = after = baseline
        for n in range(plan.rounds):
            round_task = asyncio.create_task(self.load_round(phase, plan.round_s))
            while not round_task.done():
                peak = max(peak, self.gw.rss())
                await asyncio.sleep(1)
            await round_task
            after = await self.quiet_rss(phase, workers)
            self.info_rss.append(after)
            self.log(f"RSS after round {n + 1}: {after / MIB:.1f} MiB (peak so far {peak / MIB:.1f} MiB)")
        return baseline, peak, after

    async def quiet_rss(self, phase: Phase, workers: list[Any]) -> int:
        phase.load.clear()
        await self.quiesce(workers)
        await asyncio.sleep(self.plan.quiet_s)
        return await self.rss()

    async def write_targets(self) -> None:
        """alice's task ids, for the hostile mallory to try (it must never see them)."""
        path = self.run_dir / "targets.json"
        while True:
            tasks = [r.run_id for r in self.ledger.runs.values() if r.dialect == "agentbox" and "." not in r.run_id]
            path.write_text(json.dumps({"alice_tasks": tasks[-50:]}))
            await asyncio.sleep(1)

    def scrape_metrics(self) -> None:
        """Counters of the live incarnation, summed over incarnations (each restart starts them at 0)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.gw.ports.main}/metrics", timeout=10).text
        except httpx.HTTPError:
            return
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("agenthub_queue_drops_total", "agenthub_tcp_refused_total", "agenthub_header_timeouts_total"):
                self.metrics[name] = self.metrics.get(name, 0) + float(value)

    # -- report ---------------------------------------------------------------------------
    def finish(self, rows: list[checks.Row], samples: list[tuple[float, str, float]], report: dict[str, Any]) -> int:
        c = self.ledger.counts
        info = [
            f"{self.plan.kills} SIGKILLs and restarts; {len(self.gw.incarnations)} gateway processes",
            "RSS after each measured round: " + ", ".join(f"{v / MIB:.1f} MiB" for v in self.info_rss),
            "runs acknowledged: "
            + ", ".join(f"{k.split()[0]} {v}" for k, v in sorted(c.items()) if k.endswith("messages acknowledged")),
            "reconnects: " + ", ".join(f"{k.split()[0]} {v}" for k, v in sorted(c.items()) if k.endswith("connects")),
            "replays: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if "replay" in k or "drops" in k),
            "aborts and cancels: "
            + ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if "abort" in k or "cancel" in k),
            f"slow consumers: {len(self.slow_outcomes)} ({dict(Counter(self.slow_outcomes))}); "
            f"gateway metrics summed over incarnations: {self.metrics}",
            "hostile load: "
            + ", ".join(f"{k} {v}" for k, v in sorted(report["counts"].items()) if not k.startswith("guess ")),
        ]
        table = checks.render(rows, info)
        mode = "quick" if self.args.quick else "full"
        fault = f", fault {self.args.fault}" if self.args.fault else ""
        header = f"# agenthub soak ({mode}, seed {self.args.seed}{fault})\n\n"
        (self.run_dir / "soak.md").write_text(header + table)
        (self.run_dir / "soak.json").write_text(
            json.dumps(
                {**checks.summary(rows), "info": info, "counts": dict(c), "hostile": report}, indent=1, default=str
            )
        )
        print(header + table)
        passed = all(r.passed for r in rows)
        print(f"{'PASS' if passed else 'FAIL'}: logs, database and results in {self.run_dir}")
        if passed and not self.args.out and not self.args.keep:
            shutil.rmtree(self.run_dir / "data", ignore_errors=True)
        return 0 if passed else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the short version CI runs (under two minutes)")
    parser.add_argument("--seed", type=int, default=16, help="random seed of every client (default 16)")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILL cycles (default: 4, quick 2)")
    parser.add_argument("--p99-ms", type=float, default=500.0, help="honest p99 bound under hostile load (default 500)")
    parser.add_argument("--rss-slack-mib", type=float, default=24.0, help="RSS growth allowed after the load (MiB)")
    parser.add_argument("--out", default=None, help="run directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir even when every check passed")
    parser.add_argument("--fault", default=None, help="start the gateway with an injected fault (soak/faults.py)")
    args = parser.parse_args()
    sys.exit(asyncio.run(Soak(args).run()))


if __name__ == "__main__":
    main()
