// The control pages: one module each under pages/, shown one at a time, kept live.
//
// A page renders into its section's body. While it is shown it re-renders (debounced) on the
// events it names, every `pollMs` if it polls, and after a reconnect. Optional methods the
// gateway may not have answer INVALID_REQUEST "unknown method": those pages say "not available".

import { $, h } from "./dom";
import { Gateway, RpcError } from "./gateway";
import { ChannelsPage } from "./pages/channels";
import { DevicesPage } from "./pages/devices";
import { HealthPage } from "./pages/health";
import { LangBotPage } from "./pages/langbot";
import { NodesPage } from "./pages/nodes";
import { PresencePage } from "./pages/presence";
import { RunBoard, RunsPage } from "./pages/runs";
import { SettingsPage } from "./pages/settings";
import { errorText } from "./view";

export interface Page {
  /** Fill `out` (the section's body) with the page's current state. */
  render(out: HTMLElement): Promise<void>;
  /** Events that re-render the page while it is shown. */
  readonly events?: readonly string[];
  /** Re-render this often while shown (ms); 0: only on events. */
  readonly pollMs?: number;
  /** The page stopped being shown (close sockets, stop timers). */
  hidden?(): void;
  /** Set by ControlPages: re-render soon if the page is shown (after an action of its own). */
  refresh?: () => void;
}

export function notAvailable(method: string): Node {
  return h("p", { class: "empty not-available" }, `Not available: this gateway has no ${method} method.`);
}

/** `method`'s answer, or null when the gateway does not know the method. */
export async function optional<T = any>(gw: Gateway, method: string, params: unknown = {}): Promise<T | null> {
  try {
    return await gw.call<T>(method, params);
  } catch (e) {
    if (e instanceof RpcError && e.unknownMethod) return null;
    throw e;
  }
}

const RERENDER_DEBOUNCE_MS = 250;

export class ControlPages {
  readonly board: RunBoard;
  private current = "";
  private pages: Record<string, Page>;
  private pending = 0;
  private poll = 0;
  private rendering = new Map<string, Promise<void>>();

  constructor(gw: Gateway) {
    this.board = new RunBoard(gw);
    this.pages = {
      runs: new RunsPage(gw, this.board),
      presence: new PresencePage(gw),
      health: new HealthPage(gw),
      nodes: new NodesPage(gw),
      devices: new DevicesPage(gw),
      channels: new ChannelsPage(gw),
      langbot: new LangBotPage(gw),
      settings: new SettingsPage(gw),
    };
    for (const [name, page] of Object.entries(this.pages)) {
      page.refresh = () => {
        if (this.current === name) this.soon();
      };
    }
    const events = new Set(Object.values(this.pages).flatMap((p) => p.events ?? []));
    for (const name of events) {
      gw.on(name, () => {
        if (this.pages[this.current]?.events?.includes(name)) this.soon();
      });
    }
    this.board.onChange = () => {
      if (this.current === "runs") this.soon();
    };
    gw.onOpen(() => {
      if (this.current) void this.show(this.current);
    });
  }

  has(page: string): boolean {
    return page in this.pages;
  }

  page<T extends Page>(name: string): T {
    return this.pages[name] as T;
  }

  private soon(): void {
    window.clearTimeout(this.pending);
    this.pending = window.setTimeout(() => {
      if (this.current) void this.show(this.current);
    }, RERENDER_DEBOUNCE_MS);
  }

  async show(name: string): Promise<void> {
    if (this.current !== name) {
      this.hide();
      this.current = name;
    }
    const page = this.pages[name];
    if (!page) return;
    window.clearTimeout(this.poll);
    if (page.pollMs) {
      this.poll = window.setTimeout(() => {
        if (this.current === name) void this.show(name);
      }, page.pollMs);
    }
    // One render at a time per page: a burst of events does not interleave two renders.
    const before = this.rendering.get(name);
    if (before) await before;
    const out = $(`page-${name}-body`);
    const run = page
      .render(out)
      .catch((e) => {
        if (this.current === name) out.replaceChildren(h("p", { class: "error-text" }, `Could not load: ${errorText(e)}`));
      })
      .finally(() => this.rendering.delete(name));
    this.rendering.set(name, run);
    await run;
  }

  hide(): void {
    const page = this.pages[this.current];
    window.clearTimeout(this.poll);
    window.clearTimeout(this.pending);
    this.current = "";
    page?.hidden?.();
  }
}
