"""``python -m bench [--quick] [--only S1,S4] [--no-openclaw]``: run the scenarios, print the table.

Stacks: ``agenthub`` (the gateway, ``bench.gateway_proc``), baseline (a)
``ws-broadcast`` (``bench.baselines.ws_broadcast``), baseline (b)
``starlette-naive`` (``bench.baselines.starlette_naive``) and baseline (c)
``openclaw`` (the npm package in ``bench/node``, installed by ``make bench``).
All share one pool of client worker processes (``bench.client``, picows).

Each run writes ``bench/results/<date>-<commit>.md`` (the table, every
sentence of it computed from this run's numbers), ``.json`` (the raw figures)
and ``.png`` (the plot), and copies the table to ``latest.md``; ``--quick``
writes ``quick.{md,json,png}`` (git-ignored) instead. Design notes live in
``bench/README.md``, never in a results file. The progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .control import raise_nofile_limit
from .procs import ROOT, ClientPool, Server, openclaw_available, start_cluster, start_server
from .scenarios import (
    SCALED,
    Figure,
    Plan,
    s1_fanout,
    s2_idle,
    s2_scaled,
    s3_across,
    s3_agent,
    s4_handshakes,
    s5_requests,
    s6_finished_runs,
    wait_ready,
)

OURS = "agenthub"
BASELINES = {
    "ws-broadcast": "(a) websockets broadcast",
    "starlette-naive": "(b) Starlette naive",
    "openclaw": "(c) OpenClaw",
}
Scenario = Callable[[Server, ClientPool, Plan, Callable[[str], None]], list[Figure]]
SCENARIOS: dict[str, Scenario] = {
    "S2": s2_idle,
    "S3": s3_agent,
    "S4": s4_handshakes,
    "S5": s5_requests,
    "S6": s6_finished_runs,
    # The scaled-out gateway (SCALED): S3 with runs on worker A read on worker B (a port each), and
    # RSS per idle connection over both workers (one port).
    "S3x": s3_across,
    "S2x": s2_scaled,
}
# S1 runs agenthub and baselines (a) and (b) side by side, in interleaved rounds.
S1_STACKS = [OURS, SCALED, "ws-broadcast", "starlette-naive"]
# Which stacks run which other scenario. Every (stack, scenario) gets a fresh server process, so no
# scenario inherits another's memory, connections or warm caches. Baselines (a) and (b) run what they can
# speak (S4, S5 health, S2; not S3 or S6: no agent runs; not chat.history: no transcript).
RUNS: list[tuple[str, list[str]]] = [
    (OURS, ["S3"]),
    (OURS, ["S4"]),
    (OURS, ["S5"]),
    (OURS, ["S2"]),
    (OURS, ["S6"]),
    (SCALED, ["S3x"]),
    (SCALED, ["S5"]),
    (SCALED, ["S2x"]),
    ("ws-broadcast", ["S4"]),
    ("ws-broadcast", ["S5"]),
    ("ws-broadcast", ["S2"]),
    ("starlette-naive", ["S4"]),
    ("starlette-naive", ["S5"]),
    ("starlette-naive", ["S2"]),
    ("openclaw", ["S4"]),
    ("openclaw", ["S5"]),
    ("openclaw", ["S2"]),
]


def find(figs: list[Figure], stack: str, scenario: str, metric_start: str) -> Figure | None:
    for f in figs:
        if f.stack == stack and f.scenario.startswith(scenario) and f.metric.startswith(metric_start):
            return f
    return None


def targets(figs: list[Figure], plan: Plan) -> list[tuple[str, str, bool | None]]:
    """(scenario, target text, met?) with None (shown n/a) when the run did not measure what it needs."""
    out: list[tuple[str, str, bool | None]] = []

    def check(scen: str, text: str, ok: Callable[[], bool], *needed: Figure | None) -> None:
        if any(f is None or math.isnan(f.value) for f in needed):
            out.append((scen, text, None))
        else:
            out.append((scen, text, ok()))

    s1 = find(figs, OURS, "S1", "delivered events/s (")
    s1a, s1b = find(figs, "ws-broadcast", "S1", "delivered"), find(figs, "starlette-naive", "S1", "delivered")
    s1p99 = find(figs, OURS, "S1", "p99 latency at half")
    s1st = find(figs, OURS, "S1", "delivered events/s with")
    s1ref = find(figs, OURS, "S1", "delivered events/s, no-stall")
    check("S1", ">= 80% of (a) delivered events/s", lambda: s1.value >= 0.8 * s1a.value, s1, s1a)  # type: ignore[union-attr]
    check("S1", ">= 3x (b) delivered events/s", lambda: s1.value >= 3 * s1b.value, s1, s1b)  # type: ignore[union-attr]
    check("S1", "p99 <= 20 ms at half the peak rate", lambda: s1p99.value <= 20, s1p99)  # type: ignore[union-attr]
    # Judged only when the stall bit (the gateway skipped deltas for, or closed, the stalled peers).
    bit = s1st is not None and bool(s1st.extra.get("stall_bit"))
    check(
        "S1",
        "stalled clients: >= 85% of the interleaved no-stall rounds' delivered events/s (n/a unless the stall bit)",
        lambda: s1st.value >= 0.85 * s1ref.value,  # type: ignore[union-attr]
        s1ref,
        s1st if bit else None,
    )
    rss = find(figs, OURS, "S2", f"RSS per idle connection at {plan.s2_conns:,}")
    cpu = find(figs, OURS, "S2", "server CPU")
    rss_step = find(figs, OURS, "S2", f"RSS per idle connection at {plan.s2_step:,}")
    rss_c = find(figs, "openclaw", "S2", f"RSS per idle connection at {plan.s2_step:,}")
    held = rss is not None and rss.extra.get("still_open", 0) >= plan.s2_conns
    check("S2", "<= 20 KiB RSS per idle connection", lambda: rss.value <= 20, rss)  # type: ignore[union-attr]
    check(
        "S2",
        f"{plan.s2_conns:,} held, idle CPU < 5% of a core",
        lambda: cpu.value < 5 and held,  # type: ignore[union-attr]
        cpu,
        rss,
    )
    both = rss_c is not None and rss_c.extra.get("opened", 0) >= plan.s2_step
    check(
        "S2",
        f"<= half of OpenClaw's RSS per connection (at {plan.s2_step:,} connections each)",
        lambda: rss_step.value <= 0.5 * rss_c.value,  # type: ignore[union-attr]
        rss_step,
        rss_c if both else None,
    )
    x1, x1p = find(figs, SCALED, "S1", "delivered events/s ("), find(figs, SCALED, "S1", "p99 latency at peak")
    s1peak_p99 = find(figs, OURS, "S1", "p99 latency at peak")
    check(
        "S1",
        "--workers 2: >= 1.6x one process's delivered events/s, p99 <= one process's p99",
        lambda: x1.value >= 1.6 * s1.value and x1p.value <= s1peak_p99.value,  # type: ignore[union-attr]
        x1,
        s1,
        x1p,
        s1peak_p99,
    )
    x1h = find(figs, SCALED, "S1", "p99 latency at half")
    check("S1", "--workers 2: p99 <= 20 ms at half its peak rate", lambda: x1h.value <= 20, x1h)  # type: ignore[union-attr]
    x3 = find(figs, SCALED, "S3", "gateway-added latency p99, produced on A")
    x3d = find(figs, SCALED, "S3", "dropped")
    check(
        "S3",
        "--workers 2: p99 gateway-added latency <= 5 ms across processes (produced on A, received on B)",
        lambda: x3.value <= 5 and x3d.value == 0,  # type: ignore[union-attr]
        x3,
        x3d,
    )
    x2 = find(figs, SCALED, "S2", f"RSS per idle connection at {plan.s2_step:,}")
    check(
        "S2",
        "--workers 2: RSS per idle connection unchanged (within 20% of one process's)",
        lambda: x2.value <= 1.2 * rss_step.value,  # type: ignore[union-attr]
        x2,
        rss_step,
    )
    p99, drops = find(figs, OURS, "S3", "gateway-added latency p99"), find(figs, OURS, "S3", "dropped")
    check("S3", "p99 gateway-added latency <= 5 ms", lambda: p99.value <= 5, p99)  # type: ignore[union-attr]
    check("S3", "zero drops / reordering", lambda: drops.value == 0, drops)  # type: ignore[union-attr]
    hs = find(figs, OURS, "S4", "connect+hello-ok+close per second (token + signed")
    hs_c = find(figs, "openclaw", "S4", "connect+hello-ok+close per second (token + signed")
    check("S4", ">= 2,000 handshakes/s", lambda: hs.value >= 2000, hs)  # type: ignore[union-attr]
    check("S4", ">= 3x OpenClaw's handshakes/s", lambda: hs.value >= 3 * hs_c.value, hs, hs_c)  # type: ignore[union-attr]
    rq, rq_c = find(figs, OURS, "S5", "health requests/s"), find(figs, "openclaw", "S5", "health requests/s")
    p, p_c = find(figs, OURS, "S5", "health p99"), find(figs, "openclaw", "S5", "health p99")
    check(
        "S5",
        ">= 3x OpenClaw's health requests/s at a lower p99",
        lambda: rq.value >= 3 * rq_c.value and p.value < p_c.value,  # type: ignore[union-attr]
        rq,
        rq_c,
        p,
        p_c,
    )
    return out


def fmt(v: float, unit: str) -> str:
    if math.isnan(v):
        return "n/a"
    if unit in ("ms", "KiB", "%", "us"):
        return f"{v:,.2f}" if v < 10 else f"{v:,.1f}"
    return f"{v:,.0f}"


def cell(f: Figure | None) -> str:
    if f is None:
        return "–"
    at = f" ({f.at})" if f.at else ""
    extra = f" · gen {f.gen_cpu_pct:.0f}%" if f.gen_cpu_pct is not None else ""
    return fmt(f.value, f.unit) + at + extra


def ratio(ours: Figure, other: Figure | None) -> str:
    if other is None or other.value == 0 or math.isnan(other.value) or math.isnan(ours.value):
        return "–"
    return f"{ours.value / other.value:.2f}x"


def render(figs: list[Figure], plan: Plan, header: list[str], errors: list[str]) -> str:
    lines = [
        *header,
        "",
        "| Scenario | Metric | agenthub | " + " | ".join(BASELINES.values()) + " | vs (a) | vs (b) | vs (c) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    seen: list[tuple[str, str]] = []
    for f in figs:
        key = (f.scenario, f.metric)
        if key not in seen:
            seen.append(key)
    scaled_rows: list[tuple[str, str]] = []
    for scen, metric in seen:
        row = {f.stack: f for f in figs if f.scenario == scen and f.metric == metric}
        if SCALED in row:
            scaled_rows.append((scen, metric))
            if all(k == SCALED for k in row):
                notes += _notes(scen, metric, row)
                continue
        ours = row.get(OURS)
        others = [row.get(k) for k in BASELINES]
        ratios = [ratio(ours, o) if ours else "–" for o in others]
        lines.append(
            f"| {scen} | {metric} | {cell(ours)} | "
            + " | ".join(cell(o) for o in others)
            + " | "
            + " | ".join(ratios)
            + " |"
        )
        notes += _notes(scen, metric, row)
    if scaled_rows:
        lines += [
            "",
            f"Scale-out, from the same run: {SCALED} (two processes sharing Redis and PostgreSQL) beside one process:",
            "",
            f"| Scenario | Metric | agenthub (1 process) | {SCALED} | ratio |",
            "|---|---|---|---|---|",
        ]
        for scen, metric in scaled_rows:
            row = {f.stack: f for f in figs if f.scenario == scen and f.metric == metric}
            one, two = row.get(OURS), row[SCALED]
            lines.append(f"| {scen} | {metric} | {cell(one)} | {cell(two)} | {ratio(two, one)} |")
    lines += ["", "Targets:", "", "| Scenario | Target | Met |", "|---|---|---|"]
    for scen, text, ok in targets(figs, plan):
        lines.append(f"| {scen} | {text} | {'yes' if ok else 'n/a' if ok is None else '**NO**'} |")
    lines += ["", "Notes (what each figure was computed from; columns: `bench/README.md`):", "", *notes]
    if errors:
        lines += ["", "Errors:", "", *[f"- {e}" for e in errors]]
    return "\n".join(lines) + "\n"


def _notes(scen: str, metric: str, row: dict[str, Figure]) -> list[str]:
    out = []
    for f in row.values():
        bits = [f.note] if f.note else []
        if f.server_cpu_pct is not None:
            bits.append(f"server CPU {f.server_cpu_pct:.0f}% of a core")
        if bits:
            out.append(f"- {scen} / {metric} / {f.stack}: " + "; ".join(bits))
    return out


def plot(figs: list[Figure], plan: Plan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    colors = {OURS: "tab:blue", "ws-broadcast": "tab:orange", "starlette-naive": "tab:green", "openclaw": "tab:red"}

    def bars(ax: object, scen: str, metric: str, title: str) -> None:
        rows = [f for f in figs if f.scenario.startswith(scen) and f.metric.startswith(metric)]
        ax.bar([f.stack for f in rows], [f.value for f in rows], color=[colors.get(f.stack, "gray") for f in rows])  # type: ignore[attr-defined]
        ax.set_title(title)  # type: ignore[attr-defined]
        ax.tick_params(axis="x", labelrotation=15)  # type: ignore[attr-defined]

    def cdf(ax: object, scen: str, title: str) -> None:
        for f in figs:
            if f.scenario.startswith(scen) and f.samples_us:
                xs = sorted(f.samples_us)
                ys = [i / len(xs) for i in range(len(xs))]
                ax.plot(
                    [x / 1000 for x in xs],
                    ys,
                    label=f"{f.stack}: {f.metric[:38]}",  # type: ignore[attr-defined]
                    color=colors.get(f.stack, "gray"),
                    linestyle="-" if "half" in f.metric else ":" if "history" in f.metric else "--",
                )
        ax.set_xscale("log")  # type: ignore[attr-defined]
        ax.set_xlabel("ms (log)")  # type: ignore[attr-defined]
        ax.set_ylabel("fraction")  # type: ignore[attr-defined]
        ax.set_title(title)  # type: ignore[attr-defined]
        ax.legend(fontsize=7)  # type: ignore[attr-defined]

    bars(axes[0][0], "S1", "delivered events/s (", f"S1 delivered events/s ({plan.s1_clients:,} clients)")
    cdf(axes[1][0], "S1", "S1 publish -> receive latency CDF")
    step = f"RSS per idle connection at {plan.s2_step:,}"
    bars(axes[0][1], "S2", step, f"S2 {step} (KiB)")
    cdf(axes[1][1], "S3", "S3 provider emit -> client receive latency CDF")
    bars(axes[0][2], "S4", "connect+hello-ok+close per second (token + signed", "S4 handshakes/s (signed device)")
    cdf(axes[1][2], "S5", "S5 round trip CDF (health, chat.history)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def git_commit() -> str:
    """Short commit of the tree measured, ``-dirty`` when it has uncommitted changes to tracked files."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def machine_header(
    plan: Plan, command: str, load_start: tuple[float, float, float], started: dt.datetime, commit: str
) -> list[str]:
    """Facts of this run only: when, what code, which machine, its load, and the plan."""
    cpu_model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    )
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("aiohttp", "websockets", "starlette", "uvicorn", "uvloop", "picows")
    )
    load_end = os.getloadavg()
    return [
        f"# agenthub bench{' (quick)' if plan.quick else ''}",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; commit {commit}; command: `{command}`",
        f"- Machine: {os.cpu_count()} cores ({cpu_model}), Linux {platform.release()}, Python "
        f"{platform.python_version()}",
        f"- Load average (1/5/15 min) at start {load_start[0]:.1f}/{load_start[1]:.1f}/{load_start[2]:.1f}, "
        f"at end {load_end[0]:.1f}/{load_end[1]:.1f}/{load_end[2]:.1f}",
        f"- Versions: {versions}",
        f"- Plan: {{procs}} client processes; S1 {plan.s1_clients} clients, {plan.s1_rounds} interleaved rounds of "
        f"{plan.s1_seconds / plan.s1_rounds:g}s per stack, half-peak run {plan.s1_half_seconds:g}s, 2+2 "
        f"interleaved rounds of {plan.s1_stalled_seconds / 2:g}s without/with {plan.s1_stalled} stalled clients, "
        f"{plan.s1_policy_seconds:g}s policy check; S2 {plan.s2_step:,} then {plan.s2_conns:,} connections "
        f"({plan.s2_connect_deadline:g}s to connect each step), held {plan.s2_hold:g}s; S3 {plan.s3_runs} runs x "
        f"{plan.s3_rate:g} deltas/s for {plan.s3_seconds:g}s; S4 {plan.s4_seconds:g}s per kind; S5 "
        f"{plan.s5_clients} clients, health {plan.s5_seconds:g}s, chat.history {plan.s5_history_seconds:g}s; "
        f"S6 {plan.s6_runs} runs of {plan.s6_words:,} words; the same windows for every stack; a fresh server "
        "process per stack and scenario (S1: one per stack)",
    ]


def raw_results(
    figs: list[Figure], plan: Plan, header: list[str], errors: list[str], met: list[tuple[str, str, bool | None]]
) -> dict[str, Any]:
    """Everything the table was computed from, minus the latency samples (their percentiles are figures)."""
    return {
        "header": header,
        "plan": dataclasses.asdict(plan),
        "figures": [
            {k: v for k, v in dataclasses.asdict(f).items() if k != "samples_us"} | {"samples": len(f.samples_us)}
            for f in figs
        ],
        "targets": [{"scenario": sc, "target": text, "met": ok} for sc, text, ok in met],
        "errors": errors,
    }


def run_s1(
    names: list[str], pool: ClientPool, plan: Plan, step: Callable[[str], None], figs: list[Figure], console: Console
) -> list[str]:
    errors: list[str] = []
    servers: list[Server] = []
    try:
        for name in names:
            step(f"starting {name}")
            try:
                servers.append(start_cluster(name) if name == SCALED else start_server(name))
            except Exception as exc:
                errors.append(f"{name}: could not start: {exc}")
        for server in servers:
            wait_ready(server, pool)
        figs.extend(s1_fanout(servers, pool, plan, step))
    except Exception as exc:
        errors.append(f"S1: {type(exc).__name__}: {exc}")
        console.print(traceback.format_exc())
        pool.all({"cmd": "close"})
    finally:
        for server in servers:
            server.stop()
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30-second smoke version (small N, short runs)")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. S1,S4")
    parser.add_argument("--stacks", default="", help="comma-separated stacks (agenthub,ws-broadcast,...)")
    parser.add_argument("--no-openclaw", action="store_true", help="skip baseline (c)")
    parser.add_argument("--openclaw", action="store_true", help="run baseline (c) in --quick too")
    parser.add_argument("--procs", type=int, default=0, help="client processes (default: 4, quick: 2)")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where <date>-<commit>.{md,json,png} and latest.md go (--quick: quick.{md,json,png})",
    )
    args = parser.parse_args()
    raise_nofile_limit()
    started = dt.datetime.now(dt.UTC)
    commit = git_commit()
    plan = Plan.make(args.quick)
    only = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    stacks = {s.strip() for s in args.stacks.split(",") if s.strip()}
    load_start = os.getloadavg()
    command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    console = Console(stderr=True)
    errors: list[str] = []
    runs = [(stack, [s for s in scens if not only or s.rstrip("x") in only]) for stack, scens in RUNS]
    runs = [(st, sc) for st, sc in runs if sc and (not stacks or st in stacks)]
    skip_openclaw = args.no_openclaw or (args.quick and not args.openclaw)
    if any(st == "openclaw" for st, _ in runs) and (skip_openclaw or not openclaw_available()):
        if skip_openclaw:
            errors.append("baseline (c) OpenClaw skipped (--quick without --openclaw, or --no-openclaw)")
        else:
            errors.append("OpenClaw not installed (make bench/node/node_modules/.openclaw-stamp): baseline (c) skipped")
        runs = [(st, sc) for st, sc in runs if st != "openclaw"]
    procs = args.procs or (2 if args.quick else 4)
    figs: list[Figure] = []
    pool = ClientPool(procs)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            s1_stacks = [st for st in S1_STACKS if (not only or "S1" in only) and (not stacks or st in stacks)]
            task = progress.add_task("starting", total=sum(len(sc) for _, sc in runs) + bool(s1_stacks))

            def step(text: str) -> None:
                progress.update(task, description=text)
                if not console.is_terminal:  # no live bar in a log: one line per step instead
                    console.print(f"[{time.strftime('%H:%M:%S')}] {text}", highlight=False)

            if s1_stacks:
                errors.extend(run_s1(s1_stacks, pool, plan, step, figs, console))
                progress.advance(task)
            for stack, scens in runs:
                step(f"starting {stack}")
                try:
                    # S3x reads runs of worker A on worker B: each worker gets a port of its own.
                    server = (
                        start_cluster(stack, shared_port="S3x" not in scens) if stack == SCALED else start_server(stack)
                    )
                except Exception as exc:
                    errors.append(f"{stack}: could not start: {exc}")
                    progress.advance(task, len(scens))
                    continue
                try:
                    wait_ready(server, pool)
                    for scen in scens:
                        try:
                            figs.extend(SCENARIOS[scen](server, pool, plan, step))
                        except Exception as exc:
                            errors.append(f"{scen} {stack}: {type(exc).__name__}: {exc}")
                            console.print(traceback.format_exc())
                            pool.all({"cmd": "close"})
                        progress.advance(task)
                except Exception as exc:
                    errors.append(f"{stack}: {type(exc).__name__}: {exc}")
                    progress.advance(task, len(scens))
                finally:
                    server.stop()
                time.sleep(0.2 if plan.quick else 0.5)
    finally:
        pool.stop()
    header = [
        line.replace("{procs}", str(procs)) for line in machine_header(plan, command, load_start, started, commit)
    ]
    report = render(figs, plan, header, errors)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "quick" if plan.quick else f"{started.strftime('%Y-%m-%d-%H%M')}-{commit}"
    png = out_dir / f"{stem}.png"
    try:
        plot(figs, plan, png)
        report += f"\nPlot: [{png.name}]({png.name})\n"
    except Exception as exc:
        report += f"\nPlot failed: {type(exc).__name__}: {exc}\n"
    (out_dir / f"{stem}.md").write_text(report)
    (out_dir / f"{stem}.json").write_text(
        json.dumps(raw_results(figs, plan, header, errors, targets(figs, plan)), indent=1)
    )
    if not plan.quick:
        (out_dir / "latest.md").write_text(report)  # the same table, linking the same dated plot
    sys.stdout.write(report)
    # A scenario that broke (not a skipped or a missed target) fails the run, so CI notices.
    if any("OpenClaw" not in e for e in errors) or not figs:
        sys.exit(1)
