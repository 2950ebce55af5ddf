import "./style.css";
import { ChatPage } from "./chat";
import { ControlPages } from "./control";
import { $ } from "./dom";
import { Gateway } from "./gateway";

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

// -- navigation -----------------------------------------------------------------
function show(page: string): void {
  document.querySelectorAll<HTMLElement>("main > section").forEach((s) => (s.hidden = s.id !== `page-${page}`));
  document.querySelectorAll<HTMLElement>("nav [data-page]").forEach((b) => {
    if (b.dataset.page === page) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  });
  if (control.has(page)) void control.show(page);
  else control.hide();
}
document.querySelectorAll<HTMLElement>("nav [data-page]").forEach((b) =>
  b.addEventListener("click", () => show(b.dataset.page!)),
);
document.querySelectorAll<HTMLElement>("[data-refresh]").forEach((b) =>
  b.addEventListener("click", () => void control.show(b.dataset.refresh!)),
);

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

renderStatus();
show("chat");
gw.start();
(window as unknown as { agenthub: unknown }).agenthub = { gw, chat, control };
