// Keyboard shortcuts, the help overlay that lists them (?), and the session picker (Ctrl+K).
// Both overlays are native <dialog>s: focus is trapped inside, Esc closes, focus returns.

import { $, h } from "./dom";

export interface Shortcut {
  keys: string[];
  what: string;
}

export interface ShortcutHost {
  pages: { name: string; key: string; label: string }[];
  show(page: string): void;
  focusComposer(): void;
  /** True when Esc had something to stop. */
  stop(): boolean;
  sessions(): string[];
  current(): string;
  switchTo(key: string): void;
}

/** Not a shortcut while the user types text (plain keys only; Ctrl/Meta chords still work). */
function typing(ev: KeyboardEvent): boolean {
  const el = ev.target as HTMLElement | null;
  if (!el) return false;
  return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
}

export class Shortcuts {
  private help = $("help") as HTMLDialogElement;
  private picker = $("picker") as HTMLDialogElement;
  private filter = $("picker-filter") as HTMLInputElement;
  private list = $("picker-list");
  private pendingG = 0; // "g" was pressed: the next key picks a page

  constructor(private host: ShortcutHost) {
    this.renderHelp();
    document.addEventListener("keydown", (ev) => this.onKey(ev));
    $("help-open").addEventListener("click", () => this.openHelp());
    $("help-close").addEventListener("click", () => this.help.close());
    $("picker-close").addEventListener("click", () => this.picker.close());
    this.filter.addEventListener("input", () => this.renderPicker());
    this.filter.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowDown") {
        ev.preventDefault();
        this.list.querySelector<HTMLButtonElement>("button")?.focus();
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        this.list.querySelector<HTMLButtonElement>("button")?.click();
      }
    });
    this.list.addEventListener("keydown", (ev) => {
      const buttons = [...this.list.querySelectorAll<HTMLButtonElement>("button")];
      const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
      if (ev.key === "ArrowDown" && i >= 0) {
        ev.preventDefault();
        buttons[Math.min(i + 1, buttons.length - 1)]?.focus();
      } else if (ev.key === "ArrowUp" && i >= 0) {
        ev.preventDefault();
        if (i === 0) this.filter.focus();
        else buttons[i - 1]?.focus();
      }
    });
  }

  shortcuts(): Shortcut[] {
    return [
      { keys: ["/"], what: "Focus the message box" },
      { keys: ["Esc"], what: "Stop the running reply (or close an overlay)" },
      { keys: ["Ctrl", "K"], what: "Pick a session (⌘K on a Mac)" },
      { keys: ["Enter"], what: "Send the message" },
      { keys: ["Shift", "Enter"], what: "New line in the message" },
      { keys: ["?"], what: "Show this help" },
      ...this.host.pages.map((p) => ({ keys: ["g", p.key], what: `Go to ${p.label}` })),
    ];
  }

  private renderHelp(): void {
    $("help-body").replaceChildren(
      h(
        "table",
        { class: "shortcuts" },
        h("caption", { class: "sr-only" }, "Keyboard shortcuts"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Keys"), h("th", { scope: "col" }, "Does"))),
        h(
          "tbody",
          {},
          ...this.shortcuts().map((s) =>
            h(
              "tr",
              {},
              h("td", {}, ...s.keys.flatMap((k, i) => [i ? (s.keys[0] === "g" ? " then " : " + ") : "", h("kbd", {}, k)])),
              h("td", {}, s.what),
            ),
          ),
        ),
      ),
    );
  }

  openHelp(): void {
    if (!this.help.open) this.help.showModal();
  }

  openPicker(): void {
    if (this.picker.open) return;
    this.filter.value = "";
    this.renderPicker();
    this.picker.showModal();
    this.filter.focus();
  }

  private renderPicker(): void {
    const q = this.filter.value.trim();
    const all = this.host.sessions();
    const shown = all.filter((k) => k.toLowerCase().includes(q.toLowerCase())).slice(0, 50);
    const items = shown.map((k) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: k === this.host.current() ? "session current" : "session",
            "aria-current": k === this.host.current() ? "true" : false,
            onclick: () => this.pick(k),
          },
          k,
        ),
      ),
    );
    if (q && !all.includes(q)) {
      items.push(h("li", {}, h("button", { type: "button", class: "session new", onclick: () => this.pick(q) }, `Open new session "${q}"`)));
    }
    this.list.replaceChildren(...(items.length ? items : [h("li", { class: "muted" }, "No session matches.")]));
  }

  private pick(key: string): void {
    this.picker.close();
    this.host.switchTo(key);
  }

  private onKey(ev: KeyboardEvent): void {
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === "k") {
      ev.preventDefault();
      this.openPicker();
      return;
    }
    if (this.help.open || this.picker.open) return; // the dialog handles its own keys (Esc closes)
    if (ev.key === "Escape") {
      if (this.host.stop()) ev.preventDefault();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev)) return;
    if (this.pendingG) {
      window.clearTimeout(this.pendingG);
      this.pendingG = 0;
      const page = this.host.pages.find((p) => p.key === ev.key.toLowerCase());
      if (page) {
        ev.preventDefault();
        this.host.show(page.name);
      }
      return;
    }
    if (ev.key === "/") {
      ev.preventDefault();
      this.host.focusComposer();
    } else if (ev.key === "?") {
      ev.preventDefault();
      this.openHelp();
    } else if (ev.key === "g") {
      this.pendingG = window.setTimeout(() => (this.pendingG = 0), 1500);
    }
  }
}
