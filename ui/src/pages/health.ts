// Health: the gateway's state at a glance, as cards; refreshed every few seconds while shown.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { optional, type Page } from "../control";
import { cards, clock, duration, type CardSpec } from "../view";

export class HealthPage implements Page {
  readonly events = ["health", "presence"] as const;
  readonly pollMs = 5000;

  constructor(private gw: Gateway) {}

  async render(out: HTMLElement): Promise<void> {
    const started = performance.now();
    const [health, status, channels, nodes] = await Promise.all([
      this.gw.call("health", {}),
      this.gw.call("status", {}),
      optional(this.gw, "channels.status", {}),
      optional(this.gw, "node.list", {}),
    ]);
    const rtt = performance.now() - started;
    const totals: Record<string, number> = status.runs?.totals ?? {};
    const active = (status.runs?.active ?? []).length;
    const failed = (totals.error ?? 0) + (totals.timeout ?? 0);
    const specs: CardSpec[] = [
      {
        title: "Gateway",
        value: h("span", { class: health.ok ? "ok-text" : "error-text" }, health.ok ? "Healthy" : "Unhealthy"),
        detail: `version ${status.version ?? "?"}, up ${duration(status.uptimeMs)}`,
        tone: health.ok ? "ok" : "bad",
      },
      {
        title: "Agent provider",
        value: String(health.provider ?? status.provider ?? "?"),
        detail: status.sessions?.defaults?.model ? `model ${status.sessions.defaults.model}` : undefined,
      },
      { title: "Connections", value: String(health.connections ?? status.connections ?? 0), detail: "open sockets" },
      {
        title: "Runs",
        value: `${active} running`,
        detail: `${totals.ok ?? 0} done, ${failed} failed, ${totals.aborted ?? 0} aborted`,
        tone: active ? "warn" : "",
      },
      { title: "Sessions", value: String(status.sessions?.count ?? 0), detail: "stored conversations" },
    ];
    if (channels) {
      const accounts = Object.values((channels.channelAccounts ?? {}) as Record<string, any[]>).flat();
      const running = accounts.filter((a) => a?.running).length;
      const errors = accounts.filter((a) => a?.lastError).length;
      specs.push({
        title: "Channels",
        value: `${running} of ${accounts.length} running`,
        detail: errors ? `${errors} with an error` : "no errors",
        tone: errors ? "bad" : "",
      });
    }
    if (nodes) {
      const list: any[] = nodes.nodes ?? [];
      specs.push({
        title: "Nodes",
        value: `${list.filter((n) => n.connected).length} connected`,
        detail: `${list.length} known`,
      });
    }
    specs.push({
      title: "Round trip",
      value: `${Math.round(rtt)} ms`,
      detail: `tick every ${health.heartbeatSeconds ?? "?"} s`,
    });
    out.replaceChildren(
      cards(specs, "Gateway health"),
      h("p", { class: "hint" }, "Checked at ", clock(health.ts ?? Date.now()), "; refreshed every 5 seconds while shown."),
    );
  }
}
