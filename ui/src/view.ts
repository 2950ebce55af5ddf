// Building blocks of the control pages: responsive tables, cards, readable values, toasts.
// Everything is built from DOM nodes with text, never from HTML strings.

import { h } from "./dom";
import { RpcError } from "./gateway";

export type Cell = string | Node;

/** A table whose rows stack as labelled cards on a narrow screen (CSS reads `data-label`). */
export function table(headers: string[], rows: Cell[][], caption?: string): Node {
  if (rows.length === 0) return h("p", { class: "empty" }, "Nothing to show.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stack" },
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
      h(
        "tbody",
        {},
        ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { "data-label": headers[i] ?? "" }, c)))),
      ),
    ),
  );
}

export interface CardSpec {
  title: string;
  value: Cell;
  detail?: Cell;
  tone?: "ok" | "warn" | "bad" | "";
}

/** A grid of small summary cards (a heading, a big value, a line of detail). */
export function cards(specs: CardSpec[], label: string): Node {
  return h(
    "ul",
    { class: "cards", "aria-label": label },
    ...specs.map((c) =>
      h(
        "li",
        { class: `card ${c.tone ?? ""}`.trim() },
        h("h3", { class: "card-title" }, c.title),
        h("div", { class: "card-value" }, c.value),
        c.detail !== undefined ? h("div", { class: "card-detail" }, c.detail) : null,
      ),
    ),
  );
}

export function badge(text: string, state = text): HTMLElement {
  return h("span", { class: `badge ${state}` }, text);
}

export function chips(items: string[], label: string): Node {
  if (items.length === 0) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "chips", "aria-label": label }, ...items.map((x) => h("li", { class: "chip" }, x)));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function humanKey(k: string): string {
  const words = k.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_.-]+/g, " ").trim().toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A value shown for people: objects as labelled lists, arrays as lists, scalars as text (depth-bounded). */
export function valueView(v: unknown, depth = 0): Node {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "none");
  if (typeof v === "boolean") return badge(v ? "yes" : "no", v ? "ok" : "muted");
  if (typeof v !== "object") return document.createTextNode(String(v));
  if (depth > 4) return h("code", {}, JSON.stringify(v).slice(0, 500));
  if (Array.isArray(v)) {
    if (v.length === 0) return h("span", { class: "muted" }, "empty list");
    if (v.every((x) => typeof x !== "object" || x === null)) return chips(v.map(String), "values");
    return h("ol", { class: "value-list" }, ...v.slice(0, 100).map((x) => h("li", {}, valueView(x, depth + 1))));
  }
  if (!isPlainObject(v)) return document.createTextNode(String(v));
  const entries = Object.entries(v);
  if (entries.length === 0) return h("span", { class: "muted" }, "empty");
  return h(
    "dl",
    { class: "kv" },
    ...entries.slice(0, 200).flatMap(([k, x]) => [h("dt", {}, humanKey(k)), h("dd", {}, valueView(x, depth + 1))]),
  );
}

// -- formatting -----------------------------------------------------------------------
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function ago(ms: number | null | undefined): string {
  if (!ms) return "";
  const d = Date.now() - ms;
  if (d < 5000) return "just now";
  return `${duration(d)} ago`;
}

export function clock(ms: number | null | undefined): Node {
  if (!ms) return h("span", { class: "muted" }, "—");
  const when = new Date(ms);
  return h("time", { datetime: when.toISOString(), title: when.toLocaleString() }, when.toLocaleTimeString());
}

export function errorText(e: unknown): string {
  if (e instanceof RpcError) {
    const reason = e.shape.details?.reason ?? e.shape.details?.code;
    return reason ? `${e.message} (${String(reason)})` : e.message;
  }
  return (e as Error)?.message ?? String(e);
}

// -- toasts -------------------------------------------------------------------------------
const TOAST_MS = 5000;
const MAX_TOASTS = 4;

/** A short notice in the corner, read out by screen readers; it goes away by itself. */
export function toast(text: string, tone: "ok" | "bad" | "info" = "info"): HTMLElement {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const el = h("div", { class: `toast ${tone}`, "data-tone": tone }, text);
  box.append(el);
  while (box.children.length > MAX_TOASTS) box.firstElementChild?.remove();
  window.setTimeout(() => el.remove(), TOAST_MS);
  return el;
}
