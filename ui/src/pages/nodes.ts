// Nodes: each connected or paired node with its commands, and a form to invoke one (`node.invoke`).
// A node's form survives the page's live re-renders, so typing is never lost.

import { h } from "../dom";
import { Gateway, newId } from "../gateway";
import { notAvailable, optional, type Page } from "../control";
import { ago, badge, chips, errorText, valueView } from "../view";

const DEFAULT_TIMEOUT_MS = 30_000;

export class NodesPage implements Page {
  readonly events = ["presence", "node.pair.resolved"] as const;
  private forms = new Map<string, HTMLFormElement>();

  constructor(private gw: Gateway) {}

  async render(out: HTMLElement): Promise<void> {
    const res = await optional(this.gw, "node.list", {});
    if (res === null) {
      out.replaceChildren(notAvailable("node.list"));
      return;
    }
    const nodes: any[] = res.nodes ?? [];
    if (nodes.length === 0) {
      out.replaceChildren(
        h(
          "p",
          { class: "empty" },
          "No nodes yet. Start one with ",
          h("code", {}, "agenthub node run"),
          " on any machine that can reach this gateway.",
        ),
      );
      return;
    }
    out.replaceChildren(h("ul", { class: "node-list" }, ...nodes.map((n) => this.nodeCard(n))));
  }

  private nodeCard(n: any): HTMLElement {
    const id = String(n.nodeId ?? n.id ?? "?");
    const name = String(n.displayName ?? id);
    const commands: string[] = Array.isArray(n.commands) ? n.commands.map(String) : [];
    const headingId = `node-${id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    return h(
      "li",
      { class: "card node", "data-node-id": id, "aria-labelledby": headingId },
      h(
        "div",
        { class: "node-head" },
        h("h3", { id: headingId }, name),
        badge(n.connected ? "connected" : "offline", n.connected ? "ok" : "muted"),
      ),
      h(
        "dl",
        { class: "kv compact" },
        h("dt", {}, "Node id"),
        h("dd", {}, h("code", {}, id)),
        h("dt", {}, "Platform"),
        h("dd", {}, [n.platform, n.version].filter(Boolean).join(" ") || "unknown"),
        h("dt", {}, "Commands"),
        h("dd", {}, chips(commands, `Commands of ${name}`)),
        n.caps?.length ? h("dt", {}, "Capabilities") : null,
        n.caps?.length ? h("dd", {}, chips(n.caps.map(String), `Capabilities of ${name}`)) : null,
        n.lastActivityAt || n.connectedAtMs ? h("dt", {}, "Last seen") : null,
        n.lastActivityAt || n.connectedAtMs ? h("dd", {}, ago(n.lastActivityAt ?? n.connectedAtMs)) : null,
      ),
      n.connected && commands.length ? this.form(id, name, commands) : null,
    );
  }

  private form(nodeId: string, name: string, commands: string[]): HTMLFormElement {
    const key = `${nodeId}\n${commands.join(",")}`;
    const kept = this.forms.get(key);
    if (kept) return kept;
    const uid = newId().slice(0, 6);
    const command = h("select", { id: `cmd-${uid}`, name: "command" }, ...commands.map((c) => h("option", { value: c }, c)));
    const params = h("textarea", {
      id: `params-${uid}`,
      name: "params",
      rows: "3",
      spellcheck: "false",
      placeholder: '{"message": "hello"}',
      "aria-describedby": `params-hint-${uid}`,
    });
    const timeout = h("input", {
      id: `timeout-${uid}`,
      name: "timeoutMs",
      type: "number",
      min: "1",
      max: "3600000",
      step: "1",
      value: String(DEFAULT_TIMEOUT_MS),
    });
    const result = h("div", { class: "invoke-result", "aria-live": "polite" });
    const submit = h("button", { type: "submit" }, "Invoke");
    const form = h(
      "form",
      { class: "invoke-form", "aria-label": `Invoke a command on ${name}` },
      h("div", { class: "field" }, h("label", { for: `cmd-${uid}` }, "Command"), command),
      h(
        "div",
        { class: "field wide" },
        h("label", { for: `params-${uid}` }, "Parameters (JSON object, optional)"),
        params,
        h("span", { id: `params-hint-${uid}`, class: "hint" }, "Left empty, the command gets no parameters."),
      ),
      h("div", { class: "field" }, h("label", { for: `timeout-${uid}` }, "Timeout (ms)"), timeout),
      h("div", { class: "field actions" }, submit),
      result,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.invoke(nodeId, command.value, params.value, Number(timeout.value), submit, result);
    });
    this.forms.set(key, form);
    return form;
  }

  private async invoke(
    nodeId: string,
    command: string,
    rawParams: string,
    timeoutMs: number,
    submit: HTMLButtonElement,
    result: HTMLElement,
  ): Promise<void> {
    let params: unknown = undefined;
    if (rawParams.trim()) {
      try {
        params = JSON.parse(rawParams);
      } catch (e) {
        result.replaceChildren(h("p", { class: "error-text" }, `The parameters are not valid JSON: ${(e as Error).message}`));
        return;
      }
    }
    const body: Record<string, unknown> = { nodeId, command, idempotencyKey: newId() };
    if (params !== undefined) body.params = params;
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) body.timeoutMs = Math.round(timeoutMs);
    submit.disabled = true;
    result.replaceChildren(h("p", { class: "muted" }, `Running ${command}…`));
    const started = performance.now();
    try {
      const res = await this.gw.call("node.invoke", body, (body.timeoutMs as number | undefined ?? DEFAULT_TIMEOUT_MS) + 5000);
      const took = Math.round(performance.now() - started);
      const payload = res?.payload !== undefined ? res.payload : res?.payloadJSON ? JSON.parse(res.payloadJSON) : res;
      result.replaceChildren(
        h("p", { class: "ok-text" }, `${command} answered in ${took} ms`),
        h("div", { class: "invoke-payload" }, valueView(payload)),
      );
    } catch (e) {
      result.replaceChildren(h("p", { class: "error-text" }, `${command} failed: ${errorText(e)}`));
    } finally {
      submit.disabled = false;
    }
  }
}
