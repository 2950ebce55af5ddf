// One WebSocket to the gateway, native protocol: challenge -> connect -> hello-ok,
// req/res matching with timeouts, events fanned out to handlers, a 30 s heartbeat,
// and reconnection forever with exponential backoff and jitter.

export type Status = "connecting" | "connected" | "reconnecting" | "down";

export interface ErrorShape {
  code: string;
  message: string;
  details?: { code?: string; [k: string]: unknown } | null;
  retryable?: boolean;
}

export interface EventFrame {
  type: "event";
  event: string;
  payload: any;
  seq?: number;
}

export class RpcError extends Error {
  constructor(public shape: ErrorShape) {
    super(shape.message);
  }
  get code(): string {
    return this.shape.code;
  }
  get detailCode(): string | undefined {
    return this.shape.details?.code ?? undefined;
  }
  /** True when the gateway does not know this method (an optional feature). */
  get unknownMethod(): boolean {
    return this.shape.code === "INVALID_REQUEST" && /unknown method/i.test(this.shape.message);
  }
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  timer: number;
}

type Handler = (frame: EventFrame) => void;

export interface GatewayOptions {
  url: string;
  token: () => string;
  requestTimeoutMs?: number;
  heartbeatMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

const AUTH_CODES = new Set(["AUTH_TOKEN_MISMATCH", "AUTH_TOKEN_MISSING"]);

export function newId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Gateway {
  status: Status = "connecting";
  lastError = "";
  authFailed = false;
  hello: any = null;
  /** Connection-level event seq of the current socket (resets per connection). */
  lastSeq = 0;
  connections = 0;

  private ws: WebSocket | null = null;
  private pending = new Map<string, Pending>();
  private handlers = new Map<string, Set<Handler>>();
  private statusListeners = new Set<() => void>();
  private openListeners = new Set<(resumed: boolean) => void>();
  private gapListeners = new Set<(reason: string) => void>();
  private attempt = 0;
  private n = 0;
  private retryTimer = 0;
  private heartbeatTimer = 0;
  private stopped = false;
  private readonly opts: Required<GatewayOptions>;

  constructor(opts: GatewayOptions) {
    this.opts = {
      requestTimeoutMs: 15000,
      heartbeatMs: 30000,
      backoffBaseMs: 300,
      backoffMaxMs: 15000,
      ...opts,
    };
  }

  onStatus(fn: () => void): void {
    this.statusListeners.add(fn);
  }
  onOpen(fn: (resumed: boolean) => void): void {
    this.openListeners.add(fn);
  }
  onGap(fn: (reason: string) => void): void {
    this.gapListeners.add(fn);
  }
  on(event: string, fn: Handler): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  start(): void {
    this.stopped = false;
    this.authFailed = false;
    this.open();
  }

  /** Drop the socket and connect again now (e.g. after the token changed). */
  restart(): void {
    window.clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.authFailed = false;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
      this.failPending("connection restarted");
    }
    this.open();
  }

  private setStatus(s: Status, error?: string): void {
    this.status = s;
    if (error !== undefined) this.lastError = error;
    this.statusListeners.forEach((fn) => fn());
  }

  private open(): void {
    this.setStatus(this.connections === 0 && this.attempt === 0 ? "connecting" : this.status);
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch (e) {
      this.scheduleReconnect(String(e));
      return;
    }
    this.ws = ws;
    let connectId = "";
    ws.onmessage = (msg) => {
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
        if (frame.ok) this.opened(frame.payload);
        else this.rejected(frame.error as ErrorShape);
        return;
      }
      this.receive(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      window.clearInterval(this.heartbeatTimer);
      this.failPending("connection closed");
      if (this.stopped || this.authFailed) return;
      const why = ev.reason ? `closed (${ev.code}): ${ev.reason}` : `connection lost (${ev.code})`;
      this.scheduleReconnect(why);
    };
  }

  private connectParams(): Record<string, unknown> {
    const params: Record<string, unknown> = {
      minProtocol: 3,
      maxProtocol: 4,
      client: { id: "agenthub-ui", version: "0.1.0", platform: "web", mode: "webchat", displayName: "Control UI" },
      role: "operator",
      scopes: ["operator.read", "operator.write", "operator.admin"],
      userAgent: navigator.userAgent.slice(0, 500),
    };
    const token = this.opts.token();
    if (token) params.auth = { token };
    return params;
  }

  private opened(hello: any): void {
    const resumed = this.connections > 0;
    this.hello = hello;
    this.connections += 1;
    this.attempt = 0;
    this.lastSeq = 0;
    this.setStatus("connected", "");
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = window.setInterval(() => this.heartbeat(), this.opts.heartbeatMs);
    this.openListeners.forEach((fn) => fn(resumed));
  }

  private rejected(err: ErrorShape): void {
    const code = err.details?.code ?? err.code;
    if (code && AUTH_CODES.has(code)) {
      this.authFailed = true;
      const msg =
        code === "AUTH_TOKEN_MISSING"
          ? "This gateway needs a token: enter it under Settings."
          : "Wrong gateway token: check it under Settings.";
      this.setStatus("down", msg);
      this.ws?.close();
      return;
    }
    this.lastError = `connect refused: ${err.message}`;
    // The socket closes next and onclose schedules the retry.
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
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  private failPending(why: string): void {
    for (const [id, p] of this.pending) {
      window.clearTimeout(p.timer);
      p.reject(new RpcError({ code: "UNAVAILABLE", message: why }));
      this.pending.delete(id);
    }
  }

  private receive(frame: any): void {
    if (frame.type === "res") {
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      window.clearTimeout(p.timer);
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

  call<T = any>(method: string, params: unknown = {}, timeoutMs?: number): Promise<T> {
    const ws = this.ws;
    if (!ws || this.status !== "connected") {
      return Promise.reject(new RpcError({ code: "UNAVAILABLE", message: "not connected" }));
    }
    const id = `ui${++this.n}`;
    return new Promise<T>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError({ code: "UNAVAILABLE", message: `${method} timed out`, retryable: true }));
      }, timeoutMs ?? this.opts.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }
}
