// The TypeScript client against a real agenthub gateway (a Python process on a free loopback port).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import { GatewayClient, RpcError } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..", "..");
const python = process.env.AGENTHUB_PYTHON ?? join(root, ".venv", "bin", "python");
const gateways = [];

/** Start `python -m agenthub gateway` and resolve with its port once it says ready. */
function startGateway({ args = [], port = 0, dataDir } = {}) {
  assert.ok(existsSync(python), `${python} is missing: run make test (or set AGENTHUB_PYTHON)`);
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "agenthub-ts-"));
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ demo: { word_delay_ms: 15 } }));
  const proc = spawn(python, ["-m", "agenthub", "gateway", "--port", String(port), "--data-dir", dir, "--config", config, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  gateways.push(proc);
  let log = "";
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${log}`)), 30000);
    const read = (chunk) => {
      log += chunk;
      const m = /ready on ws:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolvePort({ proc, port: Number(m[1]), url: `ws://127.0.0.1:${m[1]}`, dir, log: () => log });
      }
    };
    proc.stdout.on("data", read);
    proc.stderr.on("data", read);
    proc.on("exit", (code) => reject(new Error(`gateway exited (${code}):\n${log}`)));
  });
}

function stop(proc) {
  return new Promise((r) => {
    if (proc.exitCode !== null) return r(proc.exitCode);
    proc.once("exit", (code) => r(code));
    proc.kill("SIGTERM");
  });
}

after(async () => {
  for (const proc of gateways) await stop(proc);
});

async function collect(iterator, onItem = () => {}) {
  const items = [];
  for await (const item of iterator) {
    items.push(item);
    onItem(item, items);
  }
  return items;
}

function agentSeqs(items) {
  return items.filter((i) => i.type === "event" && i.event === "agent").map((i) => i.payload.seq);
}

test("connects, calls and gets typed errors", async () => {
  const gw = await startGateway();
  const client = new GatewayClient({ url: gw.url });
  await client.start();
  try {
    assert.equal(client.status, "connected");
    assert.equal(client.hello.type, "hello-ok");
    assert.ok(client.hello.features.methods.includes("agent.replay"));
    const health = await client.call("health");
    assert.equal(health.ok, true);
    const history = await client.call("chat.history", { sessionKey: "main" });
    assert.equal(history.sessionKey, "agent:main:main");
    await assert.rejects(client.call("no.such.method"), (e) => e instanceof RpcError && e.code === "INVALID_REQUEST");
    await assert.rejects(
      client.call("agent.wait", { runId: "no-such-run", timeoutMs: 10 }),
      (e) => e instanceof RpcError && e.detailCode === "RUN_NOT_FOUND",
    );
  } finally {
    client.close();
  }
});

test("runAgent streams a run: accepted, events in order, result last", async () => {
  const gw = await startGateway();
  const client = new GatewayClient({ url: gw.url });
  await client.start();
  try {
    const items = await collect(client.runAgent("what is 12*7?", { sessionKey: "ts-stream" }));
    assert.equal(items[0].type, "accepted");
    const last = items.at(-1);
    assert.equal(last.type, "result");
    assert.equal(last.status, "ok");
    assert.match(last.summary, /84/);
    const seqs = agentSeqs(items);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    const final = items.filter((i) => i.event === "chat").at(-1);
    assert.equal(final.payload.state, "final");
  } finally {
    client.close();
  }
});

test("a dropped socket mid-run: reconnects and replays what it missed, nothing twice", async () => {
  const gw = await startGateway();
  const client = new GatewayClient({ url: gw.url, backoffBaseMs: 50 });
  await client.start();
  try {
    let dropped = false;
    const items = await collect(client.runAgent("tell me about the gateway", { sessionKey: "ts-replay" }), (item) => {
      if (!dropped && item.type === "event" && item.event === "agent" && item.payload.seq === 3) {
        dropped = true;
        // Hold this client's loop (the gateway is another process and keeps streaming into the old
        // socket) so the run surely publishes while the socket is gone, then drop it: what the old
        // socket still holds is discarded and must come back through agent.replay.
        const until = Date.now() + 300;
        while (Date.now() < until) {
          // busy: no timer may run, no message may be read
        }
        client.reconnect();
      }
    });
    assert.ok(dropped);
    assert.equal(client.connections, 2);
    assert.equal(items.at(-1).type, "result");
    assert.equal(items.at(-1).status, "ok");
    const seqs = agentSeqs(items);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "every agent seq once, in order");
    assert.ok(items.some((i) => i.replayed === true), "some events came from agent.replay");
    assert.ok(!items.some((i) => i.type === "gap"));
  } finally {
    client.close();
  }
});

test("a gateway restart: the client reconnects by itself", async () => {
  const gw = await startGateway();
  const client = new GatewayClient({ url: gw.url, backoffBaseMs: 50, backoffMaxMs: 500 });
  await client.start();
  const resumed = new Promise((r) => client.onOpen((again) => again && r(true)));
  try {
    await stop(gw.proc);
    await startGateway({ port: gw.port, dataDir: gw.dir });
    assert.equal(await resumed, true);
    assert.equal((await client.call("health")).ok, true);
  } finally {
    client.close();
  }
});

test("a wrong token stops with the gateway's error instead of retrying forever", async () => {
  const gw = await startGateway({ args: ["--token", "ts-test-token-0123456789"] });
  const client = new GatewayClient({ url: gw.url, token: "wrong" });
  await assert.rejects(client.start(), (e) => e instanceof RpcError && e.detailCode === "AUTH_TOKEN_MISMATCH");
  assert.equal(client.status, "down");
  assert.equal(client.authFailed, true);
  client.close();
  const good = new GatewayClient({ url: gw.url, token: () => "ts-test-token-0123456789" });
  await good.start();
  assert.equal((await good.call("health")).ok, true);
  good.close();
});
