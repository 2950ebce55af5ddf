// The agenthub gateway client (native protocol), grown from the Control UI's ui/src/gateway.ts:
// challenge -> connect -> hello-ok, req/res matching with timeouts, events fanned out to handlers, a
// heartbeat, reconnection forever with exponential backoff and jitter, and runAgent(), which streams a run
// and, across a reconnect, fetches what it missed with agent.replay (each agent/chat seq yielded once).
// Runs in browsers and in Node >= 22 (or 20 with --experimental-websocket), or with any WebSocket class.

import type {
  AgentAccepted,
  AgentEventPayload,
  ChatEventPayload,
  EventName,
  EventPayloads,
  HelloOk,
  ParamsOf,
  ResultOf,
  RunResult,
} from "./protocol.js";

export type Status = "connecting" | "connected" | "reconnecting" | "down" | "closed";

export interface ErrorShape {
  code: string;
  message: string;
  details?: { code?: string; reason?: string; [k: string]: unknown } | null;
  retryable?: boolean;
  retryAfterMs?: number;
}

export interface EventFrame<E extends string = string> {
  type: "event";
  event: E;
  payload: E extends EventName ? EventPayloads[E] : any;
  seq?: number;
  /** Set on events that came from agent.replay after a reconnect. */
  replayed?: boolean;
}

/** A failed request: the gateway's error shape (code, details), or a local UNAVAILABLE. */
export class RpcError extends Error {
  constructor(public readonly shape: ErrorShape) {
    super(shape.message);
    this.name = "RpcError";
  }
  get code(): string {
    return this.shape.code;
  }
  /** ``details.code`` (e.g. REPLAY_GAP, AUTH_TOKEN_MISMATCH) or ``details.reason`` (RUN_NOT_FOUND). */
  get detailCode(): string | undefined {
    return this.shape.details?.code ?? this.shape.details?.reason ?? undefined;
  }
  get retryable(): boolean {
    return this.shape.retryable === true;
  }
}

type Timer = ReturnType<typeof setTimeout>;

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

type Handler = (frame: EventFrame) => void;

/** The WebSocket class to use: the platform's by default (browsers, Node >= 22). */
export type WebSocketClass = new (url: string) => WebSocket;

export interface ClientOptions {
  url: string;
  /** The gateway token (or a function returning the current one); none on a loopback gateway without auth. */
  token?: string | (() => string | undefined);
  password?: string;
  clientId?: string;
  clientVersion?: string;
  scopes?: string[];
  requestTimeoutMs?: number;
  heartbeatMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  WebSocket?: WebSocketClass;
}

const AUTH_CODES = new Set(["AUTH_TOKEN_MISMATCH", "AUTH_TOKEN_MISSING", "AUTH_PASSWORD_MISMATCH"]);
const TERMINAL_CHAT = new Set(["final", "aborted", "error"]);

export function newId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What runAgent() yields, in order: accepted, the run's events, maybe a gap, then the result (always last). */
export type RunItem =
  | ({ type: "accepted" } & AgentAccepted)
  | EventFrame<"agent">
  | EventFrame<"chat">
  | { type: "gap"; runId: string; afterSeq: number; reason: string }
  | ({ type: "result" } & RunResult);

/** An async queue of frames for one runAgent() (null: the client closed). */
class Inbox {
  private items: (EventFrame | "reconnected" | null)[] = [];
  private wake: (() => void) | null = null;
  push(item: EventFrame | "reconnected" | null): void {
    this.items.push(item);
    this.wake?.();
  }
  async next(): Promise<EventFrame | "reconnected" | null> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
    return this.items.shift()!;
  }
}

export class GatewayClient {
  status: Status = "connecting";
  lastError = "";
  authFailed = false;
  hello: HelloOk | null = null;
  /** Connection-level event seq of the current socket (resets per connection). */
  lastSeq = 0;
  /** How many times a connect succeeded (1 after the first, 2 after one reconnect, ...). */
  connections = 0;

  private ws: WebSocket | null = null;
  private pending = new Map<string, Pending>();
  private handlers = new Map<string, Set<Handler>>();
  private statusListeners = new Set<(status: Status) => void>();
  private openListeners = new Set<(resumed: boolean) => void>();
  private gapListeners = new Set<(reason: string) => void>();
  private inboxes = new Set<Inbox>();
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private attempt = 0;
  private n = 0;
  private retryTimer: Timer | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly opts: Required<Omit<ClientOptions, "token" | "password">> &
    Pick<ClientOptions, "token" | "password">;

  constructor(opts: ClientOptions) {
    const ws = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (!ws) throw new Error("no WebSocket class: pass options.WebSocket (e.g. from the ws package)");
    this.opts = {
      clientId: "agenthub-ts",
      clientVersion: "0.1.0",
      scopes: ["operator.read", "operator.write", "operator.admin"],
      requestTimeoutMs: 15000,
      heartbeatMs: 30000,
      backoffBaseMs: 300,
      backoffMaxMs: 15000,
      ...opts,
      WebSocket: ws,
    };
  }

  // -- lifecycle ------------------------------------------------------------------------------------
  /** Connect; resolves once the first hello-ok arrived (rejects if the gateway refuses the credential). */
  start(): Promise<void> {
    this.stopped = false;
    this.authFailed = false;
    const ready = this.connected();
    this.open();
    return ready;
  }

  /** Close for good: pending calls fail, runAgent() iterators end with an error. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.failPending("client closed");
    this.inboxes.forEach((q) => q.push(null));
    this.setStatus("closed");
    this.waiters.splice(0).forEach((w) => w.reject(new RpcError({ code: "UNAVAILABLE", message: "client closed" })));
  }

  /** Drop the socket and connect again now (a new token, or a test of the reconnect path). */
  reconnect(): void {
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onerror = null;
      ws.onmessage = null; // what the old socket still receives is not ours: replay fetches it
      ws.close();
      clearInterval(this.heartbeatTimer);
      this.failPending("connection restarted");
    }
    this.setStatus("reconnecting");
    this.open();
  }

  /** Resolves when the client is connected (at once if it is). */
  connected(): Promise<void> {
    if (this.status === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  onStatus(fn: (status: Status) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }
  /** After each hello-ok; ``resumed`` is true after a reconnect (refresh what you show). */
  onOpen(fn: (resumed: boolean) => void): () => void {
    this.openListeners.add(fn);
    return () => this.openListeners.delete(fn);
  }
  /** Events were skipped on this connection (a slow reader's droppable events): refresh state. */
  onGap(fn: (reason: string) => void): () => void {
    this.gapListeners.add(fn);
    return () => this.gapListeners.delete(fn);
  }
  /** Every event of a family (``"*"``: all of them). */
  on<E extends EventName | "*">(event: E, fn: (frame: EventFrame<E extends EventName ? E : string>) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as Handler);
    return () => set!.delete(fn as Handler);
  }

  // -- requests -------------------------------------------------------------------------------------
  /** One request; rejects with RpcError (the gateway's error, or UNAVAILABLE when not connected / timed out). */
  call<M extends string>(method: M, params?: ParamsOf<M>, timeoutMs?: number): Promise<ResultOf<M>> {
    const ws = this.ws;
    if (!ws || this.status !== "connected") {
      return Promise.reject(new RpcError({ code: "UNAVAILABLE", message: "not connected", retryable: true }));
    }
    const id = `ts${++this.n}`;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError({ code: "UNAVAILABLE", message: `${method} timed out`, retryable: true }));
      }, timeoutMs ?? this.opts.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type: "req", id, method, params: params ?? {} }));
    });
  }

  /** ``call`` that waits out reconnects: for reads and idempotency-keyed writes. */
  async callRetrying<M extends string>(method: M, params?: ParamsOf<M>, timeoutMs?: number): Promise<ResultOf<M>> {
    const deadline = Date.now() + (timeoutMs ?? this.opts.requestTimeoutMs);
    for (;;) {
      await this.connected();
      try {
        return await this.call(method, params, Math.max(1, deadline - Date.now()));
      } catch (e) {
        const lost = e instanceof RpcError && e.code === "UNAVAILABLE" && /connection|not connected/.test(e.message);
        if (!lost || Date.now() >= deadline) throw e;
      }
    }
  }

  /**
   * Start a run and stream it: ``{type: "accepted"}``, its agent/chat event frames in order, then
   * ``{type: "result"}``. If the socket drops, the client reconnects and asks ``agent.replay`` for what came
   * after the last agent seq it yielded (replayed frames carry ``replayed: true``); nothing is yielded twice.
   * When the gateway no longer holds those events, ``{type: "gap"}`` is yielded and the result still follows.
   */
  async *runAgent(
    message: string,
    opts: { sessionKey?: string; idempotencyKey?: string; timeoutMs?: number } = {},
  ): AsyncGenerator<RunItem> {
    const inbox = new Inbox();
    this.inboxes.add(inbox);
    const timeoutMs = opts.timeoutMs ?? 600_000;
    try {
      const params: ParamsOf<"agent"> = { message, idempotencyKey: opts.idempotencyKey ?? newId() };
      if (opts.sessionKey) params.sessionKey = opts.sessionKey;
      // Idempotent: sent again after a lost connection, it answers with the same run.
      const accepted = (await this.callRetrying("agent", params, timeoutMs)) as unknown as AgentAccepted;
      const runId = accepted.runId;
      yield { type: "accepted", ...accepted };
      const last = { agent: 0, chat: 0 };
      const fresh = (event: "agent" | "chat", payload: { seq?: number }): boolean => {
        if (typeof payload.seq !== "number") return true;
        if (payload.seq <= last[event]) return false;
        last[event] = payload.seq;
        return true;
      };
      let ended = false;
      while (!ended) {
        const item = await inbox.next();
        if (item === null) throw new RpcError({ code: "UNAVAILABLE", message: "client closed during the run" });
        if (item === "reconnected") {
          let replay;
          try {
            replay = await this.call("agent.replay", { runId, afterSeq: last.agent });
          } catch (e) {
            if (e instanceof RpcError && e.detailCode === "REPLAY_GAP") {
              yield { type: "gap", runId, afterSeq: last.agent, reason: e.message };
              break;
            }
            if (e instanceof RpcError && e.code === "UNAVAILABLE") continue; // lost again: the next reconnect retries
            throw e;
          }
          for (const ev of replay.events) {
            const event = ev.event;
            const payload = ev.payload as AgentEventPayload & ChatEventPayload;
            if (!fresh(event, payload)) continue;
            yield { type: "event", event, payload, replayed: true } as EventFrame<"agent"> | EventFrame<"chat">;
            ended ||= event === "chat" && TERMINAL_CHAT.has(payload.state);
          }
          continue;
        }
        if (item.event !== "agent" && item.event !== "chat") continue;
        const payload = item.payload as AgentEventPayload & ChatEventPayload;
        if (payload.runId !== runId || !fresh(item.event, payload)) continue;
        yield item as EventFrame<"agent"> | EventFrame<"chat">;
        ended = item.event === "chat" && TERMINAL_CHAT.has(payload.state);
      }
      const result = await this.callRetrying("agent.wait", { runId, timeoutMs }, timeoutMs + this.opts.requestTimeoutMs);
      yield { type: "result", ...(result as RunResult) };
    } finally {
      this.inboxes.delete(inbox);
    }
  }

  /** Abort a session's run (and only ``runId`` when given). */
  abort(sessionKey: string, runId?: string): Promise<ResultOf<"chat.abort">> {
    return this.call("chat.abort", runId ? { sessionKey, runId } : { sessionKey });
  }

  // -- the socket -----------------------------------------------------------------------------------
  private setStatus(s: Status, error?: string): void {
    this.status = s;
    if (error !== undefined) this.lastError = error;
    this.statusListeners.forEach((fn) => fn(s));
  }

  private open(): void {
    let ws: WebSocket;
    try {
      ws = new this.opts.WebSocket(this.opts.url);
    } catch (e) {
      this.scheduleReconnect(String(e));
      return;
    }
    this.ws = ws;
    let connectId = "";
    ws.onmessage = (msg: MessageEvent) => {
      let frame: any;
      try {
        frame = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      if (frame.type === "event" && frame.event === "connect.challenge") {
        connectId = `connect-${newId().slice(0, 8)}`;
        ws.send(JSON.stringify({ type: "req", id: connectId, method: "connect", params: this.connectParams() }));
        return;
      }
      if (frame.type === "res" && frame.id === connectId) {
        connectId = "";
        if (frame.ok) this.opened(frame.payload as HelloOk);
        else this.rejected(frame.error as ErrorShape);
        return;
      }
      this.receive(frame);
    };
    const lost = (why: string): void => {
      if (this.ws !== ws) return; // already handled (or replaced by reconnect())
      this.ws = null;
      clearInterval(this.heartbeatTimer);
      this.failPending("connection closed");
      if (this.stopped || this.authFailed) return;
      this.scheduleReconnect(why);
    };
    ws.onclose = (ev: CloseEvent) => lost(ev.reason ? `closed (${ev.code}): ${ev.reason}` : `connection lost (${ev.code})`);
    // Node 20's WebSocket reports a refused connection with "error" and never "close": treat it as one.
    ws.onerror = () => {
      if (ws.readyState !== ws.OPEN) lost("cannot connect");
    };
  }

  private connectParams(): Record<string, unknown> {
    const params: Record<string, unknown> = {
      minProtocol: 3,
      maxProtocol: 4,
      client: { id: this.opts.clientId, version: this.opts.clientVersion, platform: "js", mode: "sdk" },
      role: "operator",
      scopes: this.opts.scopes,
    };
    const token = typeof this.opts.token === "function" ? this.opts.token() : this.opts.token;
    if (token) params.auth = { token };
    else if (this.opts.password) params.auth = { password: this.opts.password };
    return params;
  }

  private opened(hello: HelloOk): void {
    const resumed = this.connections > 0;
    this.hello = hello;
    this.connections += 1;
    this.attempt = 0;
    this.lastSeq = 0;
    this.setStatus("connected", "");
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
    this.waiters.splice(0).forEach((w) => w.resolve());
    if (resumed) this.inboxes.forEach((q) => q.push("reconnected"));
    this.openListeners.forEach((fn) => fn(resumed));
  }

  private rejected(err: ErrorShape): void {
    const code = err.details?.code ?? err.code;
    if (code && AUTH_CODES.has(code)) {
      // A wrong credential does not get better by retrying: stop, and say so.
      this.authFailed = true;
      this.setStatus("down", `connect refused: ${err.message}`);
      this.ws?.close();
      this.waiters.splice(0).forEach((w) => w.reject(new RpcError(err)));
      return;
    }
    this.lastError = `connect refused: ${err.message}`; // the socket closes next; onclose retries
  }

  private async heartbeat(): Promise<void> {
    const ws = this.ws;
    try {
      await this.call("health", {}, 10000);
    } catch (e) {
      if (this.ws === ws && ws) {
        this.lastError = `heartbeat failed: ${(e as Error).message}`;
        ws.close();
      }
    }
  }

  private scheduleReconnect(why: string): void {
    this.attempt += 1;
    const cap = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (this.attempt - 1));
    const delay = cap / 2 + Math.random() * (cap / 2); // "equal jitter"
    this.setStatus(this.attempt > 6 ? "down" : "reconnecting", why);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private failPending(why: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new RpcError({ code: "UNAVAILABLE", message: why, retryable: true }));
      this.pending.delete(id);
    }
  }

  private receive(frame: any): void {
    if (frame.type === "res") {
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      if (frame.ok) p.resolve(frame.payload);
      else p.reject(new RpcError(frame.error as ErrorShape));
      return;
    }
    if (frame.type !== "event") return;
    if (typeof frame.seq === "number") {
      if (this.lastSeq > 0 && frame.seq > this.lastSeq + 1) {
        const reason = `missed ${frame.seq - this.lastSeq - 1} event(s)`;
        this.gapListeners.forEach((fn) => fn(reason));
      }
      this.lastSeq = frame.seq;
    }
    this.inboxes.forEach((q) => q.push(frame as EventFrame));
    for (const key of [frame.event, "*"]) {
      this.handlers.get(key)?.forEach((fn) => {
        try {
          fn(frame);
        } catch (e) {
          console.error("event handler failed", e);
        }
      });
    }
  }
}
