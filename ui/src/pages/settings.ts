// Settings: a form generated from the gateway's JSON Schema (`config.schema`), filled from
// `config.get` (with where each value comes from), saved as a merge patch (`config.patch`).
//
// Every scalar setting gets an input of its type with the schema's bounds; lists of strings are
// one item per line. Secrets are never sent from here (the gateway refuses to store them): they
// show as "set in the environment or a file". Maps and lists of objects (channel accounts, hook
// mappings) are left to the config file. Only changed fields go into the patch.

import { $, h } from "../dom";
import { Gateway } from "../gateway";
import { notAvailable, optional, type Page } from "../control";
import { errorText, toast } from "../view";

type Schema = Record<string, any>;
type Kind = "boolean" | "integer" | "number" | "string" | "enum" | "list";

interface Field {
  path: string;
  kind: Kind;
  nullable: boolean;
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  initial: unknown;
}

const SOURCE_LABEL: Record<string, string> = {
  file: "config file",
  stored: "saved here",
  env: "environment",
  flag: "command line",
};

/** Paths the gateway never stores (config.patch refuses them): shown, not editable. */
const NOT_STORED = new Set(["database_url"]);

function get(obj: any, path: string): unknown {
  return path.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), obj);
}

function setPath(obj: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys[keys.length - 1]!] = value;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** "bind address" -> "Bind address." */
function sentence(text: string): string {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

function idFor(path: string): string {
  return `cfg-${path.replace(/[^A-Za-z0-9_-]/g, "__")}`;
}

export class SettingsPage implements Page {
  private schema: Schema | null = null;
  private fields: Field[] = [];
  private rows: { row: HTMLElement; text: string }[] = []; // every row, for the filter
  private dirty = false;
  private form: HTMLFormElement | null = null;
  private status: HTMLElement | null = null;
  private sources: Record<string, string> = {};

  constructor(private gw: Gateway) {}

  private resolve(s: Schema): Schema {
    let out = s;
    for (let i = 0; out?.$ref && i < 10; i++) {
      const name = String(out.$ref).split("/").pop()!;
      out = { ...this.schema!.$defs?.[name], ...Object.fromEntries(Object.entries(out).filter(([k]) => k !== "$ref")) };
    }
    return out;
  }

  async render(out: HTMLElement): Promise<void> {
    if (this.form && this.dirty && out.contains(this.form)) return; // never drop unsaved edits
    const [schemaRes, current] = await Promise.all([
      optional(this.gw, "config.schema", {}),
      optional(this.gw, "config.get", {}),
    ]);
    if (schemaRes === null || current === null) {
      out.replaceChildren(notAvailable(schemaRes === null ? "config.schema" : "config.get"));
      return;
    }
    this.schema = schemaRes.schema ?? schemaRes;
    this.sources = current.sources ?? {};
    this.fields = [];
    this.rows = [];
    this.dirty = false;
    const config = current.config ?? {};
    const general = h("div", { class: "cfg-fields" });
    const sections: Node[] = [];
    for (const [key, raw] of Object.entries(this.schema!.properties ?? {})) {
      const s = this.resolve(raw as Schema);
      if (s.type === "object" && s.properties) sections.push(this.section(key, s, config));
      else general.append(this.field(key, key, s, config));
    }
    const filter = h("input", {
      id: "settings-filter",
      type: "search",
      placeholder: "Filter settings (name or description)",
      "aria-label": "Filter settings",
      autocomplete: "off",
    });
    filter.addEventListener("input", () => this.filter(filter.value));
    this.status = h("p", { id: "settings-status", class: "settings-status", role: "status", "aria-live": "polite" });
    const warnings: string[] = current.warnings ?? [];
    const save = h("button", { type: "submit", id: "settings-save" }, "Save changes");
    const discard = h("button", { type: "button", class: "secondary", id: "settings-discard" }, "Discard");
    discard.addEventListener("click", () => {
      this.dirty = false;
      void this.render(out);
    });
    this.form = h(
      "form",
      { id: "settings-form", class: "settings-form", novalidate: true, "aria-label": "Gateway settings" },
      h("div", { class: "settings-tools" }, filter),
      warnings.length
        ? h("ul", { class: "warnings", "aria-label": "Configuration warnings" }, ...warnings.map((w) => h("li", {}, w)))
        : null,
      h("details", { class: "cfg-section", open: true }, h("summary", {}, "General"), general),
      ...sections,
      h("div", { class: "settings-bar" }, save, discard, this.status),
    );
    this.form.addEventListener("input", (ev) => {
      if (ev.target !== filter) this.dirty = true;
    });
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.save(out);
    });
    out.replaceChildren(this.form);
  }

  private section(path: string, s: Schema, config: any, depth = 0): HTMLElement {
    const body = h("div", { class: "cfg-fields" });
    const nested: Node[] = [];
    for (const [key, raw] of Object.entries(s.properties ?? {})) {
      const child = this.resolve(raw as Schema);
      const p = `${path}.${key}`;
      if (child.type === "object" && child.properties && depth < 3) nested.push(this.section(p, child, config, depth + 1));
      else body.append(this.field(p, key, child, config));
    }
    const title = s.title && !/Settings$/.test(s.title) ? s.title : path.split(".").pop()!.replace(/_/g, " ");
    return h(
      "details",
      { class: "cfg-section", "data-section": path },
      h("summary", {}, h("span", { class: "cfg-title" }, title), s.description ? h("span", { class: "muted small" }, ` ${s.description}`) : null),
      body,
      ...nested,
    );
  }

  private field(path: string, key: string, raw: Schema, config: any): HTMLElement {
    let s = raw;
    let nullable = false;
    if (Array.isArray(s.anyOf)) {
      const kinds = s.anyOf.map((x: Schema) => this.resolve(x));
      nullable = kinds.some((x: Schema) => x.type === "null");
      const real = kinds.find((x: Schema) => x.type !== "null") ?? {};
      s = { ...real, ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== "anyOf")) };
    }
    const id = idFor(path);
    const label = String(s.title ?? key);
    const value = get(config, path);
    const source = this.sources[path];
    const hintId = `${id}-hint`;
    const hints: (string | Node)[] = [];
    if (s.description) hints.push(sentence(String(s.description)));
    if (s.default !== undefined && s.default !== null && typeof s.default !== "object" && s.default !== "") {
      hints.push(` Default: ${String(s.default)}.`);
    }
    if (source && SOURCE_LABEL[source]) {
      hints.push(" Set ", h("span", { class: `source ${source}` }, `from the ${SOURCE_LABEL[source]}`), ".");
      if (source === "env" || source === "flag") hints.push(" A value saved here would not apply.");
    }
    const text = `${path} ${label} ${s.description ?? ""}`.toLowerCase();
    const secret = s.format === "password" || s.writeOnly === true || /_file$/.test(key) && this.isSecretFile(path);
    const row = h("div", { class: "cfg-field", "data-path": path });
    this.rows.push({ row, text });
    if (secret || NOT_STORED.has(path)) {
      row.append(
        h("span", { class: "cfg-label", id }, label),
        h(
          "p",
          { class: "hint" },
          secret
            ? `${value ? "Set" : "Not set"}. Secrets are never saved from here: set it in the environment, a file, or the config file.`
            : "Set with the command line or environment only.",
        ),
      );
      return row;
    }
    const kind = this.kindOf(s);
    if (kind === null) {
      const count = Array.isArray(value) ? value.length : value && typeof value === "object" ? Object.keys(value).length : 0;
      row.append(
        h("span", { class: "cfg-label" }, label),
        h("p", { class: "hint" }, `${count} configured. Edit these in the config file.${s.description ? ` ${s.description}` : ""}`),
      );
      return row;
    }
    let input: Field["input"];
    if (kind === "boolean") {
      input = h("input", { id, type: "checkbox", "aria-describedby": hintId });
      input.checked = value === true;
    } else if (kind === "enum") {
      input = h(
        "select",
        { id, "aria-describedby": hintId },
        ...(nullable ? [h("option", { value: "" }, "(default)")] : []),
        ...(s.enum as unknown[]).map((v) => h("option", { value: String(v) }, String(v))),
      );
      input.value = value === null || value === undefined ? "" : String(value);
    } else if (kind === "list") {
      input = h("textarea", { id, rows: "2", spellcheck: "false", "aria-describedby": hintId });
      input.value = Array.isArray(value) ? value.join("\n") : "";
      hints.push(" One per line.");
    } else {
      const attrs: Record<string, string> = { id, "aria-describedby": hintId, autocomplete: "off", spellcheck: "false" };
      if (kind === "integer" || kind === "number") {
        attrs.type = "number";
        attrs.step = kind === "integer" ? "1" : "any";
        if (s.minimum !== undefined) attrs.min = String(s.minimum);
        if (s.maximum !== undefined) attrs.max = String(s.maximum);
      } else {
        attrs.type = "text";
        if (s.maxLength !== undefined) attrs.maxlength = String(s.maxLength);
      }
      input = h("input", attrs);
      input.value = value === null || value === undefined ? "" : String(value);
      if (nullable) input.placeholder = "(not set)";
    }
    const initial = this.read({ kind, nullable, input } as Field);
    const labelEl = h("label", { for: id, class: "cfg-label" }, label);
    const hint = h("span", { id: hintId, class: "hint" }, ...hints);
    if (kind === "boolean") row.append(h("div", { class: "check" }, input, labelEl), hint);
    else row.append(labelEl, input, hint);
    if (source === "stored") {
      const reset = h("button", { type: "button", class: "link small", "aria-label": `Remove the saved value of ${label}` }, "Remove saved value");
      reset.addEventListener("click", async () => {
        const ok = await this.patch(setPathFresh(path, null), `${label}: saved value removed.`);
        if (ok && !this.dirty) await this.render($("page-settings-body"));
        if (ok) this.say(ok);
      });
      row.append(reset);
    }
    this.fields.push({ path, kind, nullable, input, initial });
    return row;
  }

  private isSecretFile(path: string): boolean {
    const base = path.replace(/_file$/, "");
    const parent = base.split(".").slice(0, -1);
    let s: Schema | undefined = this.schema!;
    for (const k of parent) s = s ? this.resolve(s.properties?.[k] ?? {}) : undefined;
    const sibling = s?.properties?.[base.split(".").pop()!];
    if (!sibling) return false;
    const r = this.resolve(sibling);
    const variants: Schema[] = Array.isArray(r.anyOf) ? r.anyOf : [r];
    return variants.some((v) => v.format === "password" || v.writeOnly === true);
  }

  private kindOf(s: Schema): Kind | null {
    if (Array.isArray(s.enum)) return "enum";
    if (s.type === "boolean") return "boolean";
    if (s.type === "integer") return "integer";
    if (s.type === "number") return "number";
    if (s.type === "string") return "string";
    if (s.type === "array" && this.resolve(s.items ?? {}).type === "string") return "list";
    return null;
  }

  private read(f: Pick<Field, "kind" | "nullable" | "input">): unknown {
    const el = f.input;
    if (f.kind === "boolean") return (el as HTMLInputElement).checked;
    if (f.kind === "list") return el.value.split("\n").map((x) => x.trim()).filter(Boolean);
    const v = el.value.trim();
    if (v === "" && f.nullable) return null;
    if (v === "" && (f.kind === "string" || f.kind === "enum")) return el.value;
    if (v === "") return undefined; // a number is required
    if (f.kind === "integer") return Number.isInteger(Number(v)) ? Number(v) : v;
    if (f.kind === "number") return Number.isFinite(Number(v)) ? Number(v) : v;
    return el.value;
  }

  private filter(q: string): void {
    const needle = q.trim().toLowerCase();
    for (const r of this.rows) r.row.hidden = needle !== "" && !r.text.includes(needle);
    this.form?.querySelectorAll<HTMLDetailsElement>("details.cfg-section").forEach((d) => {
      const any = [...d.querySelectorAll<HTMLElement>(".cfg-field")].some((r) => !r.hidden);
      d.hidden = !any;
      if (needle) d.open = any;
    });
  }

  private async save(out: HTMLElement): Promise<void> {
    const patch: Record<string, any> = {};
    const changed: string[] = [];
    for (const f of this.fields) {
      const v = this.read(f);
      const el = f.input as HTMLInputElement;
      if (v === undefined) {
        el.setCustomValidity("A value is required.");
      } else if ((f.kind === "integer" || f.kind === "number") && typeof v !== "number" && v !== null) {
        el.setCustomValidity(f.kind === "integer" ? "A whole number is required." : "A number is required.");
      } else {
        el.setCustomValidity("");
      }
      if (!el.checkValidity()) {
        el.closest("details")?.setAttribute("open", "");
        el.reportValidity();
        this.say(`Check ${f.path}: ${el.validationMessage}`, true);
        return;
      }
      if (!same(v, f.initial)) {
        setPath(patch, f.path, v);
        changed.push(f.path);
      }
    }
    if (changed.length === 0) {
      this.say("Nothing changed.");
      return;
    }
    const ok = await this.patch(patch, `Saved ${changed.length} setting(s).`);
    if (ok) {
      this.dirty = false;
      await this.render(out);
      this.say(ok);
    }
  }

  /** Send one merge patch; returns the message to show, or null when it failed. */
  private async patch(patch: Record<string, any>, done: string): Promise<string | null> {
    try {
      const res = await this.gw.call("config.patch", { patch });
      const restart: string[] = res?.restartRequired ?? [];
      const msg = restart.length ? `${done} Restart the gateway to apply: ${restart.join(", ")}.` : `${done} Applied.`;
      toast(msg, "ok");
      return msg;
    } catch (e) {
      this.say(`Not saved: ${errorText(e)}`, true);
      toast(`Not saved: ${errorText(e)}`, "bad");
      return null;
    }
  }

  private say(text: string, bad = false): void {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.classList.toggle("error-text", bad);
  }
}

function setPathFresh(path: string, value: unknown): Record<string, any> {
  const out: Record<string, any> = {};
  setPath(out, path, value);
  return out;
}
