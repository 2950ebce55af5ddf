// Devices: pairing requests of devices and nodes with Approve/Reject, and the paired ones.
// Live from the pairing events; a decision shows as a toast.

import { h } from "../dom";
import { Gateway } from "../gateway";
import { notAvailable, optional, type Page } from "../control";
import { ago, badge, chips, errorText, table, toast } from "../view";

type Decide = (method: string, requestId: string, label: string) => () => Promise<void>;

function decisionButtons(decide: Decide, kind: "device" | "node", requestId: string, label: string): Node {
  return h(
    "span",
    { class: "actions" },
    h(
      "button",
      { type: "button", class: "small", onclick: decide(`${kind}.pair.approve`, requestId, label), "aria-label": `Approve ${label}` },
      "Approve",
    ),
    h(
      "button",
      { type: "button", class: "danger small", onclick: decide(`${kind}.pair.reject`, requestId, label), "aria-label": `Reject ${label}` },
      "Reject",
    ),
  );
}

export class DevicesPage implements Page {
  readonly events = ["device.pair.requested", "device.pair.resolved", "node.pair.requested", "node.pair.resolved"] as const;

  refresh?: () => void;

  constructor(private gw: Gateway) {}

  private decide: Decide = (method, requestId, label) => async () => {
    const verb = method.endsWith("approve") ? "approved" : "rejected";
    try {
      await this.gw.call(method, { requestId });
      toast(`${label}: ${verb}.`, "ok");
    } catch (e) {
      toast(`${label}: could not be ${verb}: ${errorText(e)}`, "bad");
    }
    this.refresh?.();
  };

  async render(out: HTMLElement): Promise<void> {
    const [devices, nodes] = await Promise.all([
      optional(this.gw, "device.pair.list", {}),
      optional(this.gw, "node.pair.list", {}),
    ]);
    if (devices === null) {
      out.replaceChildren(notAvailable("device.pair.list"));
      return;
    }
    const pending: any[] = devices.pending ?? devices.requests ?? [];
    const paired: any[] = devices.paired ?? [];
    const parts: Node[] = [
      h("h3", {}, "Waiting for approval ", badge(String(pending.length), pending.length ? "warn" : "muted")),
      table(
        ["Device", "Platform", "Asks for", "From", "Asked", "Decision"],
        pending.map((d) => {
          const short = String(d.deviceId ?? "?").slice(0, 8);
          const label = `${String(d.displayName ?? d.clientId ?? "device")} (${short})`;
          return [
            h(
              "span",
              {},
              h("strong", {}, String(d.displayName ?? d.clientId ?? "device")),
              h("span", { class: "muted small" }, ` ${short}`),
              d.isRepair ? h("span", { class: "muted small" }, " (re-pair)") : null,
            ),
            String(d.platform ?? ""),
            chips([String(d.role ?? "operator"), ...(d.scopes ?? []).map((s: string) => s.replace(/^operator\./, ""))], "Requested role and scopes"),
            String(d.remoteIp ?? ""),
            ago(d.ts),
            decisionButtons(this.decide, "device", String(d.requestId), `Device ${label}`),
          ];
        }),
        "Devices waiting for approval",
      ),
      h("h3", {}, "Paired devices"),
      table(
        ["Device", "Platform", "Role", "Scopes", "Last seen"],
        paired.map((d) => [
          h("span", {}, h("strong", {}, String(d.displayName ?? d.clientId ?? "device")), h("span", { class: "muted small" }, ` ${String(d.deviceId ?? "").slice(0, 12)}`)),
          String(d.platform ?? ""),
          String(d.role ?? (d.roles ?? []).join(", ")),
          chips((d.scopes ?? []).map((s: string) => s.replace(/^operator\./, "")), "Scopes"),
          ago(d.lastSeenAtMs ?? d.createdAtMs),
        ]),
        "Paired devices",
      ),
    ];
    if (nodes !== null) {
      const waiting: any[] = nodes.pending ?? [];
      parts.push(
        h("h3", {}, "Nodes waiting for approval ", badge(String(waiting.length), waiting.length ? "warn" : "muted")),
        table(
          ["Node", "Commands", "From", "Asked", "Decision"],
          waiting.map((n) => {
            const short = String(n.nodeId ?? "?").slice(0, 8);
            const label = `${String(n.displayName ?? n.clientId ?? "node")} (${short})`;
            return [
              h("span", {}, h("strong", {}, String(n.displayName ?? n.clientId ?? "node")), h("span", { class: "muted small" }, ` ${short}`)),
              chips((n.commands ?? []).map(String), "Declared commands"),
              String(n.remoteIp ?? ""),
              ago(n.ts),
              decisionButtons(this.decide, "node", String(n.requestId), `Node ${label}`),
            ];
          }),
          "Nodes waiting for approval",
        ),
      );
    }
    out.replaceChildren(...parts);
  }
}
