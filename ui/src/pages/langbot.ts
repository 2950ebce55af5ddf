// The LangBot pipeline debug dialog (seed 004's DebugDialog) as a page: it talks the LangBot
// protocol to a chosen pipeline through the seed's WebSocketClient. A status dot (green
// connected, amber connecting, red disconnected), toasts on connect and disconnect, and replies
// streamed chunk by chunk until `is_final`.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { WebSocketClient, type SessionType, type WebSocketMessage } from "../langbot";
import { renderInto } from "../markdown";
import { toast } from "../view";
import type { Page } from "../control";

const TOKEN_KEY = "agenthub.token";
const GENERATING = "Generating…";

type DotState = "connected" | "connecting" | "down";

export class LangBotPage implements Page {
  client: WebSocketClient | null = null;
  private built = false;
  private pipeline!: HTMLInputElement;
  private kind!: HTMLSelectElement;
  private key!: HTMLInputElement;
  private connectBtn!: HTMLButtonElement;
  private log!: HTMLElement;
  private input!: HTMLTextAreaElement;
  private sendBtn!: HTMLButtonElement;
  private dot!: HTMLElement;
  private label!: HTMLElement;
  /** Reply bubbles by the server's message id; `pending` waits for the first chunk of a reply. */
  private replies = new Map<number, HTMLElement>();
  private pending: HTMLElement | null = null;

  constructor(_gw: Gateway) {}

  async render(out: HTMLElement): Promise<void> {
    if (this.built && out.contains(this.log)) return; // keep the conversation and the socket
    this.built = true;
    this.pipeline = h("input", { id: "lb-pipeline", value: "default", autocomplete: "off", spellcheck: "false" });
    this.kind = h(
      "select",
      { id: "lb-session-type" },
      h("option", { value: "person" }, "person"),
      h("option", { value: "group" }, "group"),
    );
    this.key = h("input", {
      id: "lb-key",
      type: "password",
      autocomplete: "off",
      "aria-describedby": "lb-key-hint",
    });
    this.connectBtn = h("button", { type: "submit", id: "lb-connect" }, "Connect");
    this.dot = h("span", { class: "dot", "data-state": "down", "aria-hidden": "true" });
    this.label = h("span", { id: "lb-status-label" }, "Disconnected");
    this.log = h("div", { id: "lb-messages", class: "messages lb-messages", role: "log", "aria-label": "Pipeline conversation" });
    this.input = h("textarea", { id: "lb-input", rows: "2", placeholder: "Message to the pipeline (Enter sends)" });
    this.sendBtn = h("button", { type: "submit", id: "lb-send", disabled: true }, "Send");

    const target = h(
      "form",
      { class: "lb-target", "aria-label": "Pipeline connection" },
      h("div", { class: "field" }, h("label", { for: "lb-pipeline" }, "Pipeline"), this.pipeline),
      h("div", { class: "field" }, h("label", { for: "lb-session-type" }, "Session type"), this.kind),
      h(
        "div",
        { class: "field" },
        h("label", { for: "lb-key" }, "Pipeline key (optional)"),
        this.key,
        h("span", { id: "lb-key-hint", class: "hint" }, "Empty: the gateway token from Settings is used."),
      ),
      h("div", { class: "field actions" }, this.connectBtn),
    );
    target.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (this.client) this.close();
      else void this.open();
    });
    const composer = h(
      "form",
      { class: "composer", "aria-label": "Send to the pipeline" },
      h("label", { for: "lb-input", class: "sr-only" }, "Message to the pipeline"),
      this.input,
      h("div", { class: "composer-buttons" }, this.sendBtn),
    );
    composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.send();
      }
    });
    out.replaceChildren(
      h(
        "p",
        { class: "hint" },
        "Talks to a LangBot pipeline over its own WebSocket (",
        h("code", {}, "/api/v1/pipelines/<uuid>/ws/connect"),
        "), as LangBot's debug dialog does. Create pipelines with ",
        h("code", {}, "agenthub pipelines create"),
        "; ",
        h("code", {}, "default"),
        " is the gateway's own agent.",
      ),
      target,
      this.log,
      composer,
      h("div", { class: "lb-status", role: "status", "aria-live": "polite" }, this.dot, this.label),
    );
  }

  hidden(): void {
    this.close();
  }

  private setDot(state: DotState, text: string): void {
    this.dot.dataset.state = state;
    this.label.textContent = text;
    this.sendBtn.disabled = state !== "connected";
    const busy = this.client !== null;
    this.connectBtn.textContent = busy ? "Disconnect" : "Connect";
    for (const el of [this.pipeline, this.kind, this.key]) el.disabled = busy;
  }

  private async open(): Promise<void> {
    const pipeline = this.pipeline.value.trim() || "default";
    const token = this.key.value.trim() || localStorage.getItem(TOKEN_KEY) || undefined;
    const client = new WebSocketClient(pipeline, this.kind.value as SessionType, { token });
    this.client = client;
    this.replies.clear();
    this.pending = null;
    this.setDot("connecting", `Connecting to ${pipeline}…`);
    client.onConnected((info) => {
      if (this.client !== client) return;
      this.setDot("connected", `Connected to ${info.pipeline_uuid} (${info.session_type})`);
      toast(`Connected to pipeline ${info.pipeline_uuid}.`, "ok");
    });
    client.onDisconnected((d) => {
      if (this.client !== client) return;
      if (d.willReconnect) {
        this.setDot("connecting", `Reconnecting (attempt ${d.attempt} of ${client.maxReconnectAttempts})…`);
        toast(`Disconnected${d.reason ? `: ${d.reason}` : ""}. Reconnecting (attempt ${d.attempt} of ${client.maxReconnectAttempts})…`, "bad");
        return;
      }
      this.client = null;
      this.setDot("down", d.gaveUp ? `Disconnected: ${d.reason || `code ${d.code}`}` : "Disconnected");
      toast(d.gaveUp ? `Disconnected: ${d.reason || `code ${d.code}`}.` : "Disconnected.", d.gaveUp ? "bad" : "info");
      this.failPending("not answered: the connection closed");
    });
    client.onError((e) => {
      this.note(`Error: ${e.message}`, true);
      this.failPending(e.message);
    });
    client.onBroadcast((b) => this.note(`Broadcast: ${typeof b.message === "string" ? b.message : JSON.stringify(b.message)}`));
    client.onMessage((m) => this.reply(m));
    try {
      await client.connect();
    } catch {
      // onDisconnected said why (and whether it retries).
    }
  }

  private close(): void {
    const client = this.client;
    if (!client) return;
    client.disconnect(); // onDisconnected resets the controls
  }

  private send(): void {
    const text = this.input.value;
    if (!text.trim() || !this.client?.isConnected) return;
    try {
      this.client.sendMessage([{ type: "Plain", text }]);
    } catch (e) {
      toast(`Not sent: ${(e as Error).message}`, "bad");
      return;
    }
    this.input.value = "";
    this.log.append(h("article", { class: "msg user" }, h("div", { class: "meta" }, "You"), h("div", { class: "body" }, text)));
    this.failPending("superseded");
    this.pending = this.bubble(GENERATING);
    this.scroll();
  }

  private bubble(text: string): HTMLElement {
    const body = h("div", { class: "body markdown" }, text);
    const el = h("article", { class: "msg assistant lb-reply", "data-final": "false" }, h("div", { class: "meta" }, "Pipeline"), body);
    this.log.append(el);
    return el;
  }

  private reply(m: WebSocketMessage): void {
    let el = this.replies.get(m.id);
    if (!el) {
      el = this.pending ?? this.bubble("");
      this.pending = null;
      this.replies.set(m.id, el);
      el.dataset.messageId = String(m.id);
    }
    renderInto(el.querySelector<HTMLElement>(".body")!, m.content);
    el.dataset.final = String(m.is_final);
    if (m.is_final) this.replies.delete(m.id);
    this.scroll();
  }

  private failPending(why: string): void {
    if (!this.pending) return;
    this.pending.querySelector(".body")!.replaceChildren(h("p", { class: "error-text" }, why));
    this.pending.dataset.final = "error";
    this.pending = null;
  }

  private note(text: string, bad = false): void {
    this.log.append(h("p", { class: `lb-note${bad ? " error-text" : ""}` }, text));
    this.scroll();
  }

  private scroll(): void {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
