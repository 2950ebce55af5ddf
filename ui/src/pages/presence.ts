// Presence: who is connected (operators, nodes, dialect clients), live from `presence` events.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { ago, badge, cards, chips, table } from "../view";
import type { Page } from "../control";

function roleOf(p: any): string {
  const roles: string[] = Array.isArray(p.roles) ? p.roles : p.role ? [p.role] : [];
  return roles.join(", ") || "client";
}

export class PresencePage implements Page {
  readonly events = ["presence"] as const;
  readonly pollMs = 10_000; // "connected 5 min ago" moves on

  constructor(private gw: Gateway) {}

  async render(out: HTMLElement): Promise<void> {
    const res = await this.gw.call("system-presence", {});
    const list: any[] = Array.isArray(res) ? res : (res?.presence ?? []);
    const byRole = new Map<string, number>();
    for (const p of list) byRole.set(roleOf(p), (byRole.get(roleOf(p)) ?? 0) + 1);
    const rows = list.map((p) => [
      h(
        "span",
        { class: "who" },
        h("strong", {}, String(p.displayName ?? p.host ?? p.clientId ?? p.instanceId ?? "?")),
        p.instanceId ? h("span", { class: "muted small" }, ` ${String(p.instanceId).slice(0, 12)}`) : null,
      ),
      badge(roleOf(p), "role"),
      String(p.mode ?? ""),
      String(p.platform ?? ""),
      String(p.ip ?? ""),
      chips((p.scopes ?? []).map((s: string) => s.replace(/^operator\./, "")), "Scopes"),
      ago(p.ts ?? p.connectedAtMs),
    ]);
    out.replaceChildren(
      cards(
        [
          { title: "Connected", value: String(list.length), detail: "clients on this gateway" },
          ...[...byRole].map(([role, n]) => ({ title: role, value: String(n) })),
        ],
        "Connections by role",
      ),
      h("h3", {}, "Clients"),
      table(["Client", "Role", "Mode", "Platform", "Address", "Scopes", "Since"], rows, "Connected clients"),
    );
  }
}
