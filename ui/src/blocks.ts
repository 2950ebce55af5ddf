// A turn's thinking and tool calls as collapsible blocks: the same look live (from `agent`
// events) and for past turns (from the stored answer's `meta.thinking` / `meta.tools`).

import { h, json } from "./dom";
import { highlightedCode } from "./markdown";

export interface ToolCall {
  id?: string;
  toolCallId?: string;
  name?: string;
  args?: unknown;
  result?: unknown;
  isError?: boolean;
  truncated?: boolean;
  phase?: string;
}

/** A `pre` with the value as (highlighted) JSON, or as text when it is a string. */
function valueBlock(cls: string, v: unknown): HTMLPreElement {
  const pre = h("pre", { class: `block-body ${cls}`, tabindex: "0" });
  if (typeof v === "string") {
    pre.textContent = v;
    return pre;
  }
  pre.append(h("code", { class: "hljs language-json" }, highlightedCode(json(v ?? {}), "json")));
  return pre;
}

export class Blocks {
  thinking: HTMLPreElement | null = null;
  tools = new Map<string, HTMLElement>();

  constructor(private host: HTMLElement) {}

  setThinking(text: string, truncated = false): void {
    if (!this.thinking) {
      this.thinking = h("pre", { class: "block-body", tabindex: "0" });
      this.host.prepend(h("details", { class: "block thinking" }, h("summary", {}, "Thinking"), this.thinking));
    }
    this.thinking.textContent = truncated ? `${text}\n(cut: the stored thinking is bounded)` : text;
  }

  get thinkingText(): string {
    return this.thinking?.textContent ?? "";
  }

  /** Apply one tool event (phase start/result) or a whole stored call (args and result). */
  tool(d: ToolCall): void {
    const id = String(d.toolCallId ?? d.id ?? d.name);
    let el = this.tools.get(id);
    if (!el) {
      el = h(
        "details",
        { class: "block tool", "data-tool": String(d.name ?? "tool") },
        h("summary", {}, `Tool: ${d.name ?? "?"} `, h("span", { class: "tool-state" }, "running…")),
        h("div", { class: "label" }, "Arguments"),
        valueBlock("tool-args", d.args ?? {}),
      );
      this.tools.set(id, el);
      this.host.append(el);
    }
    const done = d.phase === "result" || (d.phase === undefined && "result" in d);
    if (done && !el.querySelector(".tool-result")) {
      el.querySelector(".tool-state")!.textContent = d.isError ? "failed" : "done";
      el.append(h("div", { class: "label" }, "Result"), valueBlock("tool-result", d.result));
      if (d.isError) el.classList.add("error");
    }
    if (d.truncated) el.classList.add("truncated");
  }

  /** Blocks of a past turn, from the stored answer's meta. */
  fromMeta(meta: any): void {
    if (!meta || typeof meta !== "object") return;
    if (typeof meta.thinking === "string" && meta.thinking) this.setThinking(meta.thinking, !!meta.thinkingTruncated);
    if (Array.isArray(meta.tools)) {
      for (const t of meta.tools) {
        if (!t || typeof t !== "object") continue;
        this.tool(t);
        const el = this.tools.get(String(t.id ?? t.name));
        const state = el?.querySelector(".tool-state");
        if (state && !("result" in t)) state.textContent = "no result";
      }
    }
    if (typeof meta.toolsOmitted === "number" && meta.toolsOmitted > 0) {
      this.host.append(h("p", { class: "muted small" }, `${meta.toolsOmitted} more tool call(s) not kept.`));
    }
  }
}
