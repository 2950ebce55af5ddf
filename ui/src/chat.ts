// The chat page: session picker, history, send, streamed replies with thinking and
// tool blocks, abort, reset, and resume after a reconnect without duplicated text.

import { Blocks } from "./blocks";
import { $, h, time } from "./dom";
import { EventFrame, Gateway, newId, RpcError } from "./gateway";
import { installCopyButtons, renderInto } from "./markdown";

interface RunView {
  runId: string;
  el: HTMLElement;
  body: HTMLElement;
  blocks: Blocks;
  badge: HTMLElement;
  text: string;
  /** A repaint of the Markdown body is queued for the next animation frame. */
  paintQueued: boolean;
  /** Highest seq applied, per event family: agent events are numbered 1..n per run, and a
   *  chat event carries the seq of the agent event it derives from. */
  lastSeq: { agent: number; chat: number };
  done: boolean;
}

const SESSION_KEY = "agenthub.session";

export class ChatPage {
  sessionKey = localStorage.getItem(SESSION_KEY) || "main";
  private runs = new Map<string, RunView>();
  private log = $("messages");
  private input = $("composer-input") as HTMLTextAreaElement;
  private picker = $("session-picker") as HTMLSelectElement;
  private abortBtn = $("abort") as HTMLButtonElement;
  private banner = $("banner");
  known = new Set<string>();

  constructor(private gw: Gateway) {
    installCopyButtons(this.log);
    $("composer").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.send();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        void this.send();
      }
    });
    this.abortBtn.addEventListener("click", () => void this.abort());
    $("open-picker").addEventListener("click", () => this.onPick());
    $("new-session").addEventListener("click", () => this.switchTo(`web-${newId().slice(0, 8)}`));
    $("reset-session").addEventListener("click", () => void this.reset());
    this.picker.addEventListener("change", () => this.switchTo(this.picker.value));
    $("banner-close").addEventListener("click", () => (this.banner.hidden = true));
    gw.on("agent", (f) => this.onAgent(f));
    gw.on("chat", (f) => this.onChat(f));
    gw.onOpen((resumed) => void this.onOpen(resumed));
    gw.onGap((reason) => void this.missed(`Some events were missed (${reason}).`));
  }

  private async onOpen(resumed: boolean): Promise<void> {
    void this.loadSessions();
    const inFlight = [...this.runs.values()].filter((r) => !r.done);
    if (!resumed || inFlight.length === 0) {
      await this.loadHistory();
      return;
    }
    for (const run of inFlight) {
      try {
        // Everything after the last agent event seen: its chat event (if any) comes again and is skipped.
        const res = await this.gw.call("agent.replay", { runId: run.runId, afterSeq: run.lastSeq.agent });
        for (const ev of res.events as { event: string; payload: any }[]) {
          if (ev.event === "agent") this.applyAgent(ev.payload);
          else if (ev.event === "chat") this.applyChat(ev.payload);
        }
      } catch (e) {
        if (e instanceof RpcError && e.detailCode === "REPLAY_GAP") {
          await this.missed("Events of a running reply were lost beyond the gateway's retention.");
          return;
        }
        throw e;
      }
    }
  }

  /** Show the banner and reload the transcript from the gateway. */
  private async missed(text: string): Promise<void> {
    $("banner-text").textContent = `${text} The conversation was reloaded from the gateway.`;
    this.banner.hidden = false;
    await this.loadHistory();
  }

  async loadSessions(): Promise<void> {
    try {
      const res = await this.gw.call("sessions.list", { limit: 200 });
      this.known = new Set((res.sessions as { key: string }[]).map((s) => s.key));
    } catch {
      return;
    }
    this.renderPicker();
  }

  private renderPicker(): void {
    const keys = new Set(this.known);
    keys.add(this.sessionKey);
    this.picker.replaceChildren(
      ...[...keys].sort().map((k) => h("option", { value: k, selected: k === this.sessionKey }, k)),
    );
  }

  switchTo(key: string): void {
    this.sessionKey = key;
    localStorage.setItem(SESSION_KEY, key);
    this.renderPicker();
    void this.loadHistory();
    this.input.focus();
  }

  async loadHistory(): Promise<void> {
    const key = this.sessionKey;
    let res: any;
    try {
      res = await this.gw.call("chat.history", { sessionKey: key, limit: 200 });
    } catch {
      return;
    }
    if (key !== this.sessionKey) return;
    // The gateway names sessions canonically ("main" is "agent:main:main"), and its events carry that name.
    if (typeof res.sessionKey === "string" && res.sessionKey !== key) {
      this.sessionKey = res.sessionKey;
      localStorage.setItem(SESSION_KEY, res.sessionKey);
      this.renderPicker();
    }
    // Runs still going get a fresh bubble with their next event (ensureRun); the history holds
    // their user message already, and their answer only once they end.
    this.runs.clear();
    this.log.replaceChildren();
    for (const m of res.messages as any[]) {
      const text = (m.content ?? []).map((c: any) => c.text ?? "").join("");
      if (m.role === "user") this.addUser(text, m.timestamp);
      else {
        const view = this.addAssistant(m.runId ?? "", m.timestamp);
        view.blocks.fromMeta(m.meta);
        view.text = text;
        renderInto(view.body, text);
        view.done = true;
        this.setState(view, m.meta?.aborted ? "aborted" : m.meta?.timedOut ? "timeout" : "final");
      }
    }
    this.syncAbort();
    this.scroll();
  }

  private addUser(text: string, ts?: number): void {
    this.log.append(
      h("article", { class: "msg user" }, h("div", { class: "meta" }, "You ", time(ts)), h("div", { class: "body" }, text)),
    );
  }

  private addAssistant(runId: string, ts?: number): RunView {
    const badge = h("span", { class: "badge" });
    const blocks = h("div", { class: "blocks" });
    const body = h("div", { class: "body markdown" });
    const el = h(
      "article",
      { class: "msg assistant", "data-run-id": runId, "data-state": "streaming", "aria-label": "Agent reply" },
      h("div", { class: "meta" }, "Agent ", time(ts), " ", badge),
      blocks,
      body,
    );
    this.log.append(el);
    const view: RunView = {
      runId,
      el,
      body,
      blocks: new Blocks(blocks),
      badge,
      text: "",
      paintQueued: false,
      lastSeq: { agent: 0, chat: 0 },
      done: false,
    };
    if (runId) this.runs.set(runId, view);
    return view;
  }

  private ensureRun(runId: string): RunView {
    return this.runs.get(runId) ?? this.addAssistant(runId, Date.now());
  }

  private setState(view: RunView, state: string): void {
    view.el.dataset.state = state;
    view.badge.textContent = state === "final" || state === "streaming" ? "" : state;
    view.badge.className = `badge ${state}`;
  }

  private async send(): Promise<void> {
    const text = this.input.value;
    if (!text.trim()) return;
    const runId = newId();
    this.input.value = "";
    this.addUser(text, Date.now());
    const view = this.ensureRun(runId);
    this.syncAbort();
    this.scroll();
    try {
      await this.gw.call("chat.send", { sessionKey: this.sessionKey, message: text, idempotencyKey: runId });
      this.known.add(this.sessionKey);
    } catch (e) {
      view.done = true;
      this.setState(view, "error");
      view.text = "";
      view.body.replaceChildren(h("p", { class: "error-text" }, `Not sent: ${(e as Error).message}`));
      this.syncAbort();
    }
  }

  /** True while a reply of this session is still running (Esc stops it). */
  get live(): boolean {
    return [...this.runs.values()].some((r) => !r.done);
  }

  /** What the session picker (Ctrl+K) offers: every known session, the current one first. */
  sessions(): string[] {
    const keys = new Set(this.known);
    keys.add(this.sessionKey);
    return [this.sessionKey, ...[...keys].filter((k) => k !== this.sessionKey).sort()];
  }

  /** Set by main.ts: opens the session picker dialog. */
  onPick: () => void = () => {};

  async abort(): Promise<void> {
    const live = [...this.runs.values()].filter((r) => !r.done);
    for (const r of live) {
      try {
        await this.gw.call("chat.abort", { sessionKey: this.sessionKey, runId: r.runId });
      } catch (e) {
        this.gw.lastError = `abort failed: ${(e as Error).message}`;
      }
    }
  }

  private async reset(): Promise<void> {
    if (!confirm(`Clear the transcript of session "${this.sessionKey}"?`)) return;
    try {
      await this.gw.call("sessions.reset", { key: this.sessionKey });
    } catch (e) {
      if (!(e instanceof RpcError && e.shape.details?.reason === "SESSION_NOT_FOUND")) throw e;
    }
    await this.loadHistory();
  }

  private onAgent(f: EventFrame): void {
    const p = f.payload;
    if (!p || p.sessionKey !== this.sessionKey) return;
    this.applyAgent(p);
  }

  private onChat(f: EventFrame): void {
    const p = f.payload;
    if (!p || p.sessionKey !== this.sessionKey) return;
    this.applyChat(p);
  }

  /** Apply one per-run event once: events at or below the last seq of their family are replays. */
  private fresh(view: RunView, family: "agent" | "chat", seq: unknown): boolean {
    if (typeof seq !== "number") return true;
    if (seq <= view.lastSeq[family]) return false;
    view.lastSeq[family] = seq;
    return true;
  }

  private applyAgent(p: any): void {
    const view = this.ensureRun(p.runId);
    if (!this.fresh(view, "agent", p.seq)) return;
    const d = p.data ?? {};
    switch (p.stream) {
      case "assistant":
        view.text = typeof d.text === "string" ? d.text : view.text + (d.delta ?? "");
        this.paint(view);
        break;
      case "thinking":
        view.blocks.setThinking(typeof d.text === "string" ? d.text : view.blocks.thinkingText + (d.delta ?? ""));
        break;
      case "tool":
        view.blocks.tool(d);
        break;
      case "lifecycle":
        if (d.phase === "error") this.setState(view, "error");
        break;
    }
  }

  /** Repaint the Markdown body once per animation frame, however many deltas arrive. */
  private paint(view: RunView): void {
    if (view.paintQueued) return;
    view.paintQueued = true;
    requestAnimationFrame(() => {
      view.paintQueued = false;
      renderInto(view.body, view.text);
      this.scroll();
    });
  }

  private applyChat(p: any): void {
    const view = this.ensureRun(p.runId);
    if (!this.fresh(view, "chat", p.seq)) return;
    const text = (p.message?.content ?? []).map((c: any) => c.text ?? "").join("");
    if (p.state === "delta") {
      if (text.length > view.text.length) {
        view.text = text;
        this.paint(view);
      }
      return;
    }
    view.done = true;
    if (text) view.text = text;
    renderInto(view.body, view.text);
    if (p.state === "error") view.body.append(h("p", { class: "error-text" }, p.errorMessage ?? "run failed"));
    this.setState(view, p.state);
    this.syncAbort();
    this.scroll();
  }

  private syncAbort(): void {
    const live = [...this.runs.values()].some((r) => !r.done);
    this.abortBtn.disabled = !live;
  }

  private scroll(): void {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
