import "./style.css";
import { ChatPage } from "./chat";
import { ControlPages } from "./control";
import { $ } from "./dom";
import { Gateway } from "./gateway";
import { WebSocketClient } from "./langbot";
import { renderMarkdown } from "./markdown";
import { Shortcuts } from "./shortcuts";

const TOKEN_KEY = "agenthub.token";

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
const gw = new Gateway({ url: wsUrl, token: () => localStorage.getItem(TOKEN_KEY) ?? "" });
const chat = new ChatPage(gw);
const control = new ControlPages(gw);

// -- status dot -----------------------------------------------------------------
const LABEL = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", down: "Disconnected" };
function renderStatus(): void {
  const dot = $("status-dot");
  dot.dataset.state = gw.status;
  $("status-label").textContent = LABEL[gw.status];
  $("status-error").textContent = gw.lastError;
  const auth = $("auth-error");
  auth.hidden = !gw.authFailed;
  auth.textContent = gw.authFailed ? gw.lastError : "";
}
gw.onStatus(renderStatus);

// -- navigation (the page is also in the URL's hash, so a reload or a link keeps it) ---
const PAGES = [
  { name: "chat", key: "c", label: "Chat" },
  { name: "runs", key: "r", label: "Runs" },
  { name: "presence", key: "p", label: "Presence" },
  { name: "health", key: "h", label: "Health" },
  { name: "nodes", key: "n", label: "Nodes" },
  { name: "devices", key: "d", label: "Devices" },
  { name: "channels", key: "l", label: "Channels" },
  { name: "langbot", key: "b", label: "LangBot" },
  { name: "settings", key: "s", label: "Settings" },
];
let currentPage = "";

function show(page: string): void {
  if (!PAGES.some((p) => p.name === page)) page = "chat";
  const changed = page !== currentPage;
  currentPage = page;
  document.querySelectorAll<HTMLElement>("main > section").forEach((s) => (s.hidden = s.id !== `page-${page}`));
  document.querySelectorAll<HTMLElement>("nav [data-page]").forEach((b) => {
    if (b.dataset.page === page) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  });
  if (location.hash !== `#${page}`) history.replaceState(null, "", `#${page}`);
  document.title = page === "chat" ? "agenthub" : `${PAGES.find((p) => p.name === page)!.label} · agenthub`;
  if (control.has(page)) void control.show(page);
  else control.hide();
  if (changed && page !== "chat") $(`page-${page}`).querySelector<HTMLElement>("h2")?.focus();
}
document.querySelectorAll<HTMLElement>("nav [data-page]").forEach((b) =>
  b.addEventListener("click", () => show(b.dataset.page!)),
);
document.querySelectorAll<HTMLElement>("[data-refresh]").forEach((b) =>
  b.addEventListener("click", () => void control.show(b.dataset.refresh!)),
);
window.addEventListener("hashchange", () => {
  const page = location.hash.slice(1);
  if (PAGES.some((p) => p.name === page)) show(page);
});

// -- token ----------------------------------------------------------------------
const tokenInput = $("token-input") as HTMLInputElement;
tokenInput.value = localStorage.getItem(TOKEN_KEY) ?? "";
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = tokenInput.value.trim();
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
  $("token-saved").textContent = "Saved; reconnecting…";
  gw.restart();
});
gw.onOpen(() => ($("token-saved").textContent = ""));
gw.onStatus(() => {
  if (!gw.authFailed) return;
  $("token-saved").textContent = "";
  show("settings");
  tokenInput.focus();
});

// -- keyboard -------------------------------------------------------------------
const shortcuts = new Shortcuts({
  pages: PAGES,
  show,
  focusComposer: () => {
    show("chat");
    $("composer-input").focus();
  },
  stop: () => {
    if (currentPage !== "chat" || !chat.live) return false;
    void chat.abort();
    return true;
  },
  sessions: () => chat.sessions(),
  current: () => chat.sessionKey,
  switchTo: (key) => {
    show("chat");
    chat.switchTo(key);
  },
});
chat.onPick = () => shortcuts.openPicker();

renderStatus();
show(location.hash.slice(1) || "chat");
gw.start();
// For tests and the console: the live objects, and the seed's LangBot client class.
(window as unknown as { agenthub: unknown }).agenthub = { gw, chat, control, shortcuts, WebSocketClient, renderMarkdown };
