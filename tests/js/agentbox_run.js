// Runs the seed's AgentBoxGateway class, unmodified, against a real gateway.
// Usage: node agentbox_run.js <scenario> '<json config>'; prints one JSON result line.
// The class text (tests/js/agentbox_gateway.js) is a verbatim copy of the seed's,
// checked against the seed by tests/e2e/test_agentbox.py.
'use strict';
const fs = require('fs');
const path = require('path');

globalThis.WebSocket = require(path.join(__dirname, '..', 'npm', 'node_modules', 'ws'));
const classText = fs.readFileSync(path.join(__dirname, 'agentbox_gateway.js'), 'utf8');
const AgentBoxGateway = new Function(`${classText}\nreturn AgentBoxGateway;`)();

const TASK_EVENTS = ['task.started', 'agent.thinking', 'agent.message', 'agent.tool_call',
  'task.completed', 'task.failed', 'task.cancelled'];
const SYSTEM_EVENTS = ['task.created', 'agent.created', 'session.created', 'batch.created', 'alert'];

function record(gw) {
  const events = [];
  for (const type of [...TASK_EVENTS, ...SYSTEM_EVENTS]) {
    gw.on(type, (data, payload) => events.push({ at: Date.now(), ...payload }));
  }
  return events;
}

async function until(pred, timeoutMs = 15000, poll = null) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    if (poll) await poll();
    await new Promise((r) => setTimeout(r, poll ? 50 : 5));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const has = (events, type, taskId, turnId) => events.find((e) => e.event_type === type &&
  e.topic === taskId && (turnId === undefined || e.data.turn_id === turnId));

async function createTask(cfg, token, body) {
  const res = await fetch(`${cfg.http}/api/v1/tasks`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create task: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).task_id;
}

const scenarios = {
  // Two devices of one user and one other user; the owner's devices get everything.
  async complete(cfg) {
    const a1 = new AgentBoxGateway(cfg.url, cfg.tokenA);
    const a2 = new AgentBoxGateway(cfg.url, cfg.tokenA);
    const b = new AgentBoxGateway(cfg.url, cfg.tokenB);
    const auth = await a1.connect();
    await a2.connect();
    await b.connect();
    const logs = { a1: record(a1), a2: record(a2), b: record(b) };
    const subscribed = await a1.subscribe('task');
    await a2.subscribe('task');
    await b.subscribe('task');
    await a1.subscribe('system', ['tasks']);
    await b.subscribe('system');
    const taskId = await createTask(cfg, cfg.tokenA, { prompt: cfg.prompt });
    await until(() => has(logs.a1, 'task.completed', taskId) && has(logs.a2, 'task.completed', taskId));
    await sleep(300); // anything misrouted to b would have arrived by now
    for (const g of [a1, a2, b]) g.disconnect();
    return { taskId, auth, subscribed, ...logs };
  },

  // Cancel mid-stream; time from sending the cancel to receiving task.cancelled.
  async cancel(cfg) {
    const gw = new AgentBoxGateway(cfg.url, cfg.tokenA);
    await gw.connect();
    const events = record(gw);
    const taskId = await createTask(cfg, cfg.tokenA, { prompt: '[long] tell me a story' });
    await gw.subscribe('task', [taskId]);
    await until(() => has(events, 'agent.message', taskId));
    const sentAt = Date.now();
    const reply = await gw.cancelTask(taskId);
    await until(() => has(events, 'task.cancelled', taskId), 5000);
    const cancelledAt = has(events, 'task.cancelled', taskId).at;
    await sleep(200);
    const after = events.filter((e) => e.at > cancelledAt && e.event_type === 'agent.message').length;
    gw.disconnect();
    return { taskId, reply, cancelMs: cancelledAt - sentAt, messagesAfterCancel: after, events };
  },

  // A follow-up turn in the same task: its events arrive under the same topic.
  async append(cfg) {
    const gw = new AgentBoxGateway(cfg.url, cfg.tokenA);
    await gw.connect();
    const events = record(gw);
    await gw.subscribe('task');
    const taskId = await createTask(cfg, cfg.tokenA, { prompt: 'my name is Ada' });
    await until(() => has(events, 'task.completed', taskId));
    const reply = await gw.appendTurn(taskId, 'what is 2+2');
    await until(() => has(events, 'task.completed', taskId, reply.turn_id));
    gw.disconnect();
    return { taskId, reply, events };
  },

  // The seed's usage example: subscribe to a task by id after creating it (here: after it finished).
  async late(cfg) {
    const gw = new AgentBoxGateway(cfg.url, cfg.tokenA);
    await gw.connect();
    const events = record(gw);
    const taskId = await createTask(cfg, cfg.tokenA, { prompt: cfg.prompt });
    let status = null;
    await until(() => status === 'completed', 15000, async () => {
      const res = await fetch(`${cfg.http}/api/v1/tasks/${taskId}`, { headers: { Authorization: `Bearer ${cfg.tokenA}` } });
      status = (await res.json()).status;
    });
    const subscribed = await gw.subscribe('task', [taskId]);
    await until(() => has(events, 'task.completed', taskId), 5000);
    gw.disconnect();
    return { taskId, subscribed, events };
  },

  // No HTTP at all (the seed's "no separate HTTP API needed"): the class's own send() creates the
  // tasks (the create_task extension), subscribe('session') streams both tasks of one session,
  // and subscribe('system', ['stats']) gets a snapshot at once.
  async socketOnly(cfg) {
    const gw = new AgentBoxGateway(cfg.url, cfg.tokenA);
    await gw.connect();
    const events = record(gw);
    const stats = [];
    gw.on('stats', (data) => stats.push(data));
    const first = await gw.send('create_task', { prompt: cfg.prompt });
    const subscribed = await gw.subscribe('session', [first.session_id]);
    const second = await gw.send('create_task', { prompt: 'what is 6*7', session_id: first.session_id });
    await until(() => has(events, 'task.completed', first.session_id) &&
      events.filter((e) => e.event_type === 'task.completed').length === 2);
    await gw.subscribe('system', ['stats']);
    await until(() => stats.length >= 1);
    const onDemand = await gw.send('stats', {});
    gw.disconnect();
    return { first, second, subscribed, events, stats, onDemand };
  },

  // Errors reject the pending promise with the server's message (the seed's client contract).
  async errors(cfg) {
    const gw = new AgentBoxGateway(cfg.url, cfg.tokenA);
    await gw.connect();
    const messages = [];
    for (const call of [() => gw.cancelTask('task-nope'), () => gw.subscribe('nope'),
      () => gw.subscribe('system', ['weather'])]) {
      try {
        await call();
        messages.push(null);
      } catch (err) {
        messages.push(err.message);
      }
    }
    const stillUsable = await gw.subscribe('system', ['alerts']);
    gw.disconnect();
    let badAuth = null;
    try {
      await new AgentBoxGateway(cfg.url, 'ab_000000000000_wrong').connect();
    } catch (err) {
      badAuth = err.message;
    }
    return { messages, stillUsable, badAuth };
  },
};

(async () => {
  const [scenario, config] = process.argv.slice(2);
  const result = await scenarios[scenario](JSON.parse(config));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
})().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
