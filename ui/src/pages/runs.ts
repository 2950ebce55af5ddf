// Runs: totals as cards and every run seen since the page loaded, live from `agent` lifecycle
// events (seeded by `status`), with a Stop button on the ones still running.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { badge, cards, clock, duration, errorText, table, toast } from "../view";
import type { Page } from "../control";

export interface RunRow {
  runId: string;
  sessionKey: string;
  state: string;
  startedAt?: number;
  endedAt?: number;
  error?: string;
}

const MAX_ROWS = 200;

/** Live run states from `agent` lifecycle events, kept while the UI is open (bounded). */
export class RunBoard {
  runs = new Map<string, RunRow>();
  onChange: () => void = () => {};

  constructor(gw: Gateway) {
    gw.on("agent", (f) => {
      const p = f.payload;
      if (p?.stream !== "lifecycle" || typeof p.runId !== "string") return;
      const d = p.data ?? {};
      const row: RunRow = this.runs.get(p.runId) ?? { runId: p.runId, sessionKey: p.sessionKey ?? "", state: "running" };
      if (d.phase === "start") {
        row.state = "running";
        row.startedAt = d.startedAt ?? p.ts;
      } else if (d.phase === "error") {
        row.state = d.stopReason === "timeout" ? "timeout" : "error";
        row.endedAt = d.endedAt ?? p.ts;
        row.error = d.error;
      } else if (d.phase === "end") {
        row.state = d.aborted ? "aborted" : "ok";
        row.endedAt = d.endedAt ?? p.ts;
        row.startedAt = row.startedAt ?? d.startedAt;
      }
      this.runs.delete(p.runId); // re-inserted: the newest activity last
      this.runs.set(p.runId, row);
      while (this.runs.size > MAX_ROWS) this.runs.delete(this.runs.keys().next().value!);
      this.onChange();
    });
  }

  seed(active: any[]): void {
    for (const r of active) {
      if (typeof r?.runId !== "string" || this.runs.has(r.runId)) continue;
      this.runs.set(r.runId, { runId: r.runId, sessionKey: r.sessionKey ?? "", state: r.status ?? "running", startedAt: r.startedAt });
    }
  }
}

const STATE_LABEL: Record<string, string> = {
  running: "running",
  queued: "queued",
  ok: "done",
  aborted: "aborted",
  error: "failed",
  timeout: "timed out",
};

export class RunsPage implements Page {
  readonly events = ["agent"] as const;
  readonly pollMs = 5000; // durations of running runs move on

  constructor(
    private gw: Gateway,
    private board: RunBoard,
  ) {}

  private stop(row: RunRow): () => Promise<void> {
    return async () => {
      try {
        await this.gw.call("chat.abort", { sessionKey: row.sessionKey, runId: row.runId });
        toast(`Stopping run ${row.runId.slice(0, 8)}…`);
      } catch (e) {
        toast(`Could not stop the run: ${errorText(e)}`, "bad");
      }
    };
  }

  async render(out: HTMLElement): Promise<void> {
    const st = await this.gw.call("status", {});
    this.board.seed(st.runs?.active ?? []);
    const totals: Record<string, number> = st.runs?.totals ?? {};
    const active = [...this.board.runs.values()].filter((r) => r.state === "running" || r.state === "queued").length;
    const now = Date.now();
    const rows = [...this.board.runs.values()].reverse().map((r) => {
      const running = r.state === "running" || r.state === "queued";
      const took = r.startedAt ? (r.endedAt ?? now) - r.startedAt : undefined;
      return [
        h("code", { title: r.runId }, r.runId.slice(0, 12)),
        r.sessionKey,
        badge(STATE_LABEL[r.state] ?? r.state, r.state),
        clock(r.startedAt),
        duration(took) + (running && took !== undefined ? " so far" : ""),
        running
          ? h("button", { type: "button", class: "danger small", onclick: this.stop(r), "aria-label": `Stop run ${r.runId.slice(0, 8)}` }, "Stop")
          : r.error
            ? h("span", { class: "error-text small" }, r.error)
            : "",
      ];
    });
    out.replaceChildren(
      cards(
        [
          { title: "Running now", value: String(active), tone: active ? "warn" : "" },
          { title: "Completed", value: String(totals.ok ?? 0), detail: "since the gateway started", tone: "ok" },
          { title: "Failed", value: String(totals.error ?? 0), tone: totals.error ? "bad" : "" },
          { title: "Aborted", value: String(totals.aborted ?? 0) },
          { title: "Timed out", value: String(totals.timeout ?? 0), tone: totals.timeout ? "bad" : "" },
        ],
        "Run totals",
      ),
      h("h3", {}, "Recent runs"),
      rows.length
        ? table(["Run", "Session", "State", "Started", "Duration", "Action"], rows, "Runs seen since this page was opened")
        : h("p", { class: "empty" }, "No runs yet: send a message on the Chat page, or wait for one from another client."),
    );
  }
}
