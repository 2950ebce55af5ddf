// Control pages: runs (live), presence, health, nodes, device pairing, channels.
// Optional methods the gateway may not have answer INVALID_REQUEST "unknown method":
// those pages say "not available" instead of failing.

import { $, h, json, time } from "./dom";
import { Gateway, RpcError } from "./gateway";

type Loader = (gw: Gateway) => Promise<Node>;

function table(headers: string[], rows: (string | Node)[][]): Node {
  if (rows.length === 0) return h("p", { class: "empty" }, "Nothing to show.");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

function notAvailable(method: string): Node {
  return h("p", { class: "empty not-available" }, `Not available: this gateway has no ${method} method.`);
}

async function optional(gw: Gateway, method: string, params: unknown, render: (res: any) => Node): Promise<Node> {
  try {
    return render(await gw.call(method, params));
  } catch (e) {
    if (e instanceof RpcError && e.unknownMethod) return notAvailable(method);
    throw e;
  }
}

/** Live run states from `agent` lifecycle events, seeded by `status`. */
export class RunBoard {
  runs = new Map<string, { runId: string; sessionKey: string; state: string; at: number }>();
  onChange: () => void = () => {};

  constructor(gw: Gateway) {
    gw.on("agent", (f) => {
      const p = f.payload;
      if (p?.stream !== "lifecycle") return;
      const d = p.data ?? {};
      const state = d.phase === "start" ? "running" : d.phase === "error" ? "error" : d.aborted ? "aborted" : "ok";
      this.runs.set(p.runId, { runId: p.runId, sessionKey: p.sessionKey, state, at: p.ts ?? Date.now() });
      while (this.runs.size > 200) this.runs.delete(this.runs.keys().next().value!);
      this.onChange();
    });
  }
}

function runsPage(board: RunBoard): Loader {
  return async (gw) => {
    const st = await gw.call("status", {});
    for (const r of st.runs?.active ?? []) {
      if (!board.runs.has(r.runId)) board.runs.set(r.runId, { runId: r.runId, sessionKey: r.sessionKey, state: r.status, at: Date.now() });
    }
    const totals = Object.entries(st.runs?.totals ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "none";
    const rows = [...board.runs.values()].reverse().map((r) => [
      r.runId.slice(0, 12),
      r.sessionKey ?? "",
      h("span", { class: `badge ${r.state}` }, r.state),
      time(r.at),
    ]);
    return h(
      "div",
      {},
      h("p", {}, `Gateway ${st.version}, provider ${st.provider}, ${st.connections} connection(s). Totals: ${totals}.`),
      table(["Run", "Session", "State", "Updated"], rows),
    );
  };
}

const presencePage: Loader = async (gw) => {
  const list = (await gw.call("system-presence", {})) as any[];
  return table(
    ["Client", "Mode", "Platform", "Address", "Roles/scopes", "Since"],
    list.map((p) => [
      p.displayName ?? p.host ?? p.clientId ?? p.instanceId ?? "?",
      p.mode ?? "",
      p.platform ?? "",
      p.ip ?? "",
      [p.role ?? p.roles ?? "", ...(p.scopes ?? [])].flat().join(" "),
      time(p.ts ?? p.connectedAtMs),
    ]),
  );
};

const healthPage: Loader = async (gw) => h("pre", { class: "block-body" }, json(await gw.call("health", {})));

const nodesPage: Loader = (gw) =>
  optional(gw, "node.list", {}, (res) =>
    table(
      ["Node", "Platform", "Commands", "Connected"],
      (res.nodes ?? []).map((n: any) => [
        n.displayName ?? n.nodeId ?? n.id ?? "?",
        n.platform ?? "",
        (n.commands ?? []).join(", "),
        String(n.connected ?? ""),
      ]),
    ),
  );

function devicesPage(reload: () => void): Loader {
  return (gw) =>
    optional(gw, "device.pair.list", {}, (res) => {
      const pending = res.pending ?? res.requests ?? [];
      const act = (method: string, requestId: string) => async () => {
        try {
          await gw.call(method, { requestId });
        } catch (e) {
          alert(`${method} failed: ${(e as Error).message}`);
        }
        reload();
      };
      const rows = pending.map((d: any) => [
        d.displayName ?? d.deviceId ?? "?",
        d.platform ?? "",
        d.remoteIp ?? "",
        h(
          "span",
          { class: "actions" },
          h("button", { type: "button", onclick: act("device.pair.approve", d.requestId) }, "Approve"),
          h("button", { type: "button", class: "danger", onclick: act("device.pair.reject", d.requestId) }, "Reject"),
        ),
      ]);
      const paired = (res.paired ?? []).map((d: any) => [d.displayName ?? d.deviceId ?? "?", d.platform ?? "", (d.scopes ?? []).join(" ")]);
      return h(
        "div",
        {},
        h("h3", {}, "Pending"),
        table(["Device", "Platform", "Address", "Decision"], rows),
        h("h3", {}, "Paired"),
        table(["Device", "Platform", "Scopes"], paired),
      );
    });
}

const channelsPage: Loader = (gw) =>
  optional(gw, "channels.status", {}, (res) => {
    const channels = res.channels ?? res;
    const rows = Object.entries(channels as Record<string, any>).map(([name, c]) => [
      name,
      String(c?.configured ?? ""),
      String(c?.running ?? c?.connected ?? ""),
      c?.lastError ?? "",
    ]);
    return table(["Channel", "Configured", "Running", "Last error"], rows);
  });

export class ControlPages {
  private board: RunBoard;
  private current = "";
  private loaders: Record<string, Loader>;

  constructor(private gw: Gateway) {
    this.board = new RunBoard(gw);
    this.board.onChange = () => {
      if (this.current === "runs") void this.show("runs");
    };
    this.loaders = {
      runs: runsPage(this.board),
      presence: presencePage,
      health: healthPage,
      nodes: nodesPage,
      devices: devicesPage(() => void this.show("devices")),
      channels: channelsPage,
    };
    gw.on("presence", () => {
      if (this.current === "presence") void this.show("presence");
    });
    const devices = () => {
      if (this.current === "devices") void this.show("devices");
    };
    gw.on("device.pair.requested", devices);
    gw.on("device.pair.resolved", devices);
  }

  has(page: string): boolean {
    return page in this.loaders;
  }

  async show(page: string): Promise<void> {
    this.current = page;
    const out = $(`page-${page}-body`);
    try {
      const node = await this.loaders[page]!(this.gw);
      if (this.current === page) out.replaceChildren(node);
    } catch (e) {
      out.replaceChildren(h("p", { class: "error-text" }, `Could not load: ${(e as Error).message}`));
    }
  }

  hide(): void {
    this.current = "";
  }
}
