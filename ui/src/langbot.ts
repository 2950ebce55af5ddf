// LangBot's front-end WebSocketClient (seed 004), against agenthub's LangBot dialect.
//
// The seed's API:
//
//   const wsClient = new WebSocketClient(pipelineId, sessionType);
//   await wsClient.connect();
//   wsClient.onMessage((message) => { if (message.is_final) finalize(message); else update(message); });
//   wsClient.onBroadcast((broadcast) => ...);
//   wsClient.sendMessage([{ type: "Plain", text: "你好" }]);
//
// with the seed's behaviour: a heartbeat ping every 30 s, and after a dropped connection up to
// 5 reconnect attempts (backoff doubling from `reconnectDelayMs`). Refusals that retrying cannot
// fix (bad request, unauthorized, unknown pipeline) stop at once. `token` is a pipeline key or the
// gateway token, sent as `?token=` (agenthub's pipelines are private unless public).

export type SessionType = "person" | "group";

export interface MessageComponent {
  type: string;
  text?: string;
  [key: string]: unknown;
}

/** One streamed reply chunk: `content` is the whole answer so far; `is_final` marks the last one. */
export interface WebSocketMessage {
  id: number;
  role: "assistant" | "user";
  content: string;
  message_chain?: MessageComponent[];
  is_final: boolean;
  timestamp: string;
}

export interface BroadcastMessage {
  message: unknown;
  timestamp?: string;
}

export interface ConnectedInfo {
  connection_id: string;
  pipeline_uuid: string;
  session_type: SessionType;
}

export interface ErrorInfo {
  message: string;
  code?: string;
  retry_after_ms?: number;
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  /** Another attempt is scheduled. */
  willReconnect: boolean;
  /** The attempt that comes next (1..maxReconnectAttempts), or the last one made when giving up. */
  attempt: number;
  /** No attempt is left, or the refusal is final: the client stays disconnected. */
  gaveUp: boolean;
}

export interface WebSocketClientOptions {
  /** ws:// or wss:// origin of the gateway; default: the page's own. */
  baseUrl?: string;
  /** A pipeline key or the gateway token, sent as `?token=`. */
  token?: string;
  maxReconnectAttempts?: number;
  heartbeatIntervalMs?: number;
  /** First reconnect delay; each further attempt waits twice as long. */
  reconnectDelayMs?: number;
}

/** Close codes of refusals a retry cannot fix (agenthub's LangBot dialect). */
const FINAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4404]);

type Listener<T> = (value: T) => void;

class Listeners<T> {
  private set = new Set<Listener<T>>();
  add(fn: Listener<T>): () => void {
    this.set.add(fn);
    return () => this.set.delete(fn);
  }
  emit(value: T): void {
    for (const fn of [...this.set]) {
      try {
        fn(value);
      } catch (e) {
        console.error("WebSocketClient listener failed", e);
      }
    }
  }
}

function defaultBaseUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

export class WebSocketClient {
  readonly maxReconnectAttempts: number;
  readonly heartbeatIntervalMs: number;
  readonly reconnectDelayMs: number;
  /** Pongs received on the current connection (the heartbeat works). */
  pongs = 0;
  connectionId = "";

  private ws: WebSocket | null = null;
  private attempts = 0;
  private manualClose = false;
  private heartbeatTimer = 0;
  private reconnectTimer = 0;
  private lastHeard = 0;
  private retryAfterMs = 0;
  private readonly messages = new Listeners<WebSocketMessage>();
  private readonly broadcasts = new Listeners<BroadcastMessage>();
  private readonly connected = new Listeners<ConnectedInfo>();
  private readonly disconnected = new Listeners<DisconnectInfo>();
  private readonly errors = new Listeners<ErrorInfo>();

  constructor(
    readonly pipelineId: string,
    readonly sessionType: SessionType = "person",
    private readonly options: WebSocketClientOptions = {},
  ) {
    this.maxReconnectAttempts = options.maxReconnectAttempts ?? 5;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 1000;
  }

  get url(): string {
    const base = (this.options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
    const q = new URLSearchParams({ session_type: this.sessionType });
    if (this.options.token) q.set("token", this.options.token);
    return `${base}/api/v1/pipelines/${encodeURIComponent(this.pipelineId)}/ws/connect?${q}`;
  }

  get isConnected(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.connectionId !== "";
  }

  /** Reconnect attempts made since the last successful connection. */
  get reconnectAttempts(): number {
    return this.attempts;
  }

  onMessage(fn: Listener<WebSocketMessage>): () => void {
    return this.messages.add(fn);
  }
  onBroadcast(fn: Listener<BroadcastMessage>): () => void {
    return this.broadcasts.add(fn);
  }
  onConnected(fn: Listener<ConnectedInfo>): () => void {
    return this.connected.add(fn);
  }
  onDisconnected(fn: Listener<DisconnectInfo>): () => void {
    return this.disconnected.add(fn);
  }
  onError(fn: Listener<ErrorInfo>): () => void {
    return this.errors.add(fn);
  }

  /** Open the socket; resolves once the gateway said "connected", rejects if it closed first. */
  connect(): Promise<void> {
    this.manualClose = false;
    this.attempts = 0;
    window.clearTimeout(this.reconnectTimer);
    return this.open();
  }

  /** Close for good: no reconnect. */
  disconnect(): void {
    this.manualClose = true;
    window.clearTimeout(this.reconnectTimer);
    this.ws?.close(1000, "client disconnect");
  }

  /** Send a message chain (e.g. `[{type: "Plain", text: "hi"}]`); throws when not connected. */
  sendMessage(messageChain: MessageComponent[]): void {
    if (!this.isConnected) throw new Error("WebSocket is not connected");
    this.ws!.send(JSON.stringify({ type: "message", message: messageChain }));
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        reject(e);
        return;
      }
      this.ws = ws;
      this.connectionId = "";
      let opened = false;
      let refusal: ErrorInfo | null = null;
      ws.onmessage = (ev) => {
        this.lastHeard = Date.now();
        let frame: any;
        try {
          frame = JSON.parse(String(ev.data));
        } catch {
          return;
        }
        switch (frame?.type) {
          case "connected":
            opened = true;
            this.attempts = 0;
            this.connectionId = String(frame.data?.connection_id ?? "");
            this.startHeartbeat(ws);
            this.connected.emit(frame.data as ConnectedInfo);
            resolve();
            break;
          case "response":
            this.messages.emit(frame.data as WebSocketMessage);
            break;
          case "broadcast":
            this.broadcasts.emit(frame.data as BroadcastMessage);
            break;
          case "pong":
            this.pongs += 1;
            break;
          case "error":
            if (!opened) refusal = frame.data as ErrorInfo;
            if (typeof frame.data?.retry_after_ms === "number") this.retryAfterMs = frame.data.retry_after_ms;
            this.errors.emit(frame.data as ErrorInfo);
            break;
        }
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.connectionId = "";
        window.clearInterval(this.heartbeatTimer);
        if (!opened) reject(new Error(refusal?.message ?? (ev.reason || `connection closed (${ev.code})`)));
        this.closed(ev.code, ev.reason || refusal?.message || "");
      };
    });
  }

  private closed(code: number, reason: string): void {
    const final = this.manualClose || FINAL_CLOSE_CODES.has(code);
    const left = this.attempts < this.maxReconnectAttempts;
    if (final || !left) {
      this.disconnected.emit({ code, reason, willReconnect: false, attempt: this.attempts, gaveUp: !this.manualClose });
      return;
    }
    this.attempts += 1;
    const delay = Math.max(this.reconnectDelayMs * 2 ** (this.attempts - 1), this.retryAfterMs);
    this.retryAfterMs = 0;
    this.disconnected.emit({ code, reason, willReconnect: true, attempt: this.attempts, gaveUp: false });
    this.reconnectTimer = window.setTimeout(() => {
      this.open().catch(() => {
        /* onclose already scheduled the next attempt, or gave up */
      });
    }, delay);
  }

  private startHeartbeat(ws: WebSocket): void {
    this.pongs = 0;
    this.lastHeard = Date.now();
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = window.setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      // Nothing heard for two periods: the connection is dead even if the socket does not know yet.
      if (Date.now() - this.lastHeard > 2 * this.heartbeatIntervalMs) {
        ws.close(4000, "heartbeat timeout");
        return;
      }
      ws.send(JSON.stringify({ type: "ping" }));
    }, this.heartbeatIntervalMs);
  }
}
