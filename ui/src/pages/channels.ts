// Channels: every channel account's state with Start/Stop, and the DM pairing requests
// (unknown senders asking for access) with Approve/Dismiss.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { notAvailable, optional, type Page } from "../control";
import { ago, badge, errorText, table, toast } from "../view";

function stateOf(a: any): [string, string] {
  if (a.lastError) return ["error", "error"];
  if (a.running && a.connected === false && a.mode !== "gateway") return ["connecting", "warn"];
  if (a.running) return ["running", "ok"];
  if (a.enabled === false) return ["disabled", "muted"];
  return ["stopped", "muted"];
}

export class ChannelsPage implements Page {
  readonly pollMs = 10_000;

  refresh?: () => void;

  constructor(private gw: Gateway) {}

  private act(method: string, params: Record<string, unknown>, done: string): () => Promise<void> {
    return async () => {
      try {
        await this.gw.call(method, params);
        toast(done, "ok");
      } catch (e) {
        toast(`${method} failed: ${errorText(e)}`, "bad");
      }
      this.refresh?.();
    };
  }

  async render(out: HTMLElement): Promise<void> {
    const res = await optional(this.gw, "channels.status", {});
    if (res === null) {
      out.replaceChildren(notAvailable("channels.status"));
      return;
    }
    const labels: Record<string, string> = res.channelLabels ?? {};
    const accounts: Record<string, any[]> = res.channelAccounts ?? {};
    const order: string[] = res.channelOrder ?? Object.keys(accounts);
    const rows = order.flatMap((channel) =>
      (accounts[channel] ?? []).map((a) => {
        const [state, tone] = stateOf(a);
        const name = `${labels[channel] ?? channel} ${a.accountId ?? ""}`.trim();
        const ref = { channel, accountId: a.accountId };
        // The web chat is the gateway itself: nothing to start or stop.
        const action =
          a.mode === "gateway"
            ? h("span", { class: "muted small" }, "always on")
            : a.running
              ? h("button", { type: "button", class: "danger small", onclick: this.act("channels.stop", ref, `${name} stopped.`), "aria-label": `Stop ${name}` }, "Stop")
              : h("button", { type: "button", class: "small", onclick: this.act("channels.start", ref, `${name} started.`), "aria-label": `Start ${name}` }, "Start");
        return [
          h("strong", {}, labels[channel] ?? channel),
          String(a.accountId ?? "default"),
          badge(state, tone),
          a.activeRuns ? `${a.activeRuns} run(s)` : a.connectedClients !== undefined ? `${a.connectedClients} client(s)` : "",
          a.lastInboundAt ? ago(a.lastInboundAt) : "never",
          a.lastError ? h("span", { class: "error-text small" }, String(a.lastError)) : "",
          action,
        ];
      }),
    );
    const parts: Node[] = [
      table(["Channel", "Account", "State", "Activity", "Last message in", "Last error", "Action"], rows, "Channel accounts"),
    ];
    const pairing = await optional(this.gw, "channels.pairing.list", {}).catch(() => null);
    if (pairing !== null) {
      const requests: any[] = pairing.requests ?? [];
      parts.push(
        h("h3", {}, "Senders asking for access ", badge(String(requests.length), requests.length ? "warn" : "muted")),
        table(
          ["Channel", "Sender", "Asked", "Expires", "Decision"],
          requests.map((r) => {
            const label = `${r.channelLabel ?? r.channel} sender ${r.metadata?.senderName ?? r.senderId}`;
            const ref = { channel: r.channel, accountId: r.accountId, requestId: r.requestId };
            return [
              String(r.channelLabel ?? r.channel),
              h("span", {}, h("strong", {}, String(r.metadata?.senderName ?? r.senderId)), h("span", { class: "muted small" }, ` ${r.senderId}`)),
              ago(Date.parse(r.createdAt)),
              new Date(r.expiresAt).toLocaleString(),
              h(
                "span",
                { class: "actions" },
                h("button", { type: "button", class: "small", onclick: this.act("channels.pairing.approve", ref, `${label}: allowed.`), "aria-label": `Approve ${label}` }, "Approve"),
                h("button", { type: "button", class: "danger small", onclick: this.act("channels.pairing.dismiss", ref, `${label}: dismissed.`), "aria-label": `Dismiss ${label}` }, "Dismiss"),
              ),
            ];
          }),
          "Direct-message pairing requests",
        ),
      );
    }
    out.replaceChildren(...parts);
  }
}
