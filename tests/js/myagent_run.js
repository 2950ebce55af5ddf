// Runs the seed's MyAgent Node.js client (tests/js/myagent_client.js, verbatim, main() included)
// against a real gateway. Usage: node myagent_run.js <ws url> [timeoutMs]
// The seed hard-codes ws://localhost:8080; the harness's `ws` redirects that to <ws url>,
// records every frame the client receives, captures its console, and prints one JSON line
// {logs, received} once the final answer has been handled.
'use strict';
const fs = require('fs');
const path = require('path');

const target = process.argv[2];
const timeoutMs = Number(process.argv[3] || 15000);
const WS = require(path.join(__dirname, '..', 'npm', 'node_modules', 'ws'));
const received = [];
const logs = [];

class RedirectedWebSocket extends WS {
  constructor(url, ...rest) {
    super(url.replace('ws://localhost:8080', target), ...rest);
    this.on('message', (data) => received.push(JSON.parse(data.toString())));
  }
}

const capture = (level) => (...args) => logs.push({ level, args: args.map((a) => (a instanceof Error ? String(a) : a)) });
const seedConsole = { log: capture('log'), error: capture('error') };
const seedRequire = (name) => (name === 'ws' ? RedirectedWebSocket : require(name));
const code = fs.readFileSync(path.join(__dirname, 'myagent_client.js'), 'utf8');
new Function('require', 'console', code)(seedRequire, seedConsole);

const started = Date.now();
const timer = setInterval(() => {
  const done = received.some((m) => m.event === 'agent.final_answer' || m.event === 'agent.error');
  if (done || Date.now() - started > timeoutMs) {
    clearInterval(timer);
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ logs, received, timedOut: !done }) + '\n');
      process.exit(0);
    }, 100);
  }
}, 20);
