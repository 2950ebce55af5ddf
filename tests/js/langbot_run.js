// Runs the seed's LangBot browser-console snippet (tests/js/langbot_console.js, verbatim)
// under node with globalThis.WebSocket = require('ws').
// Usage: node langbot_run.js <base ws url> <pipeline uuid> [timeoutMs]
// The snippet hard-codes ws://localhost:8000 and a literal <uuid>; the harness's WebSocket
// substitutes both, captures console.log, and prints one JSON line {logs} after the final chunk.
'use strict';
const fs = require('fs');
const path = require('path');

const [base, pipeline] = [process.argv[2], process.argv[3]];
const timeoutMs = Number(process.argv[4] || 15000);
const WS = require(path.join(__dirname, '..', 'npm', 'node_modules', 'ws'));
let finished = false;

globalThis.WebSocket = class extends WS {
  constructor(url, ...rest) {
    super(url.replace('ws://localhost:8000', base).replace('<uuid>', pipeline), ...rest);
    this.addEventListener('message', (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === 'response' && msg.data.is_final) finished = true;
    });
  }
};

const logs = [];
const seedConsole = { log: (...args) => logs.push(args), error: (...args) => logs.push(['error', ...args.map(String)]) };
const code = fs.readFileSync(path.join(__dirname, 'langbot_console.js'), 'utf8');
new Function('console', code)(seedConsole);

const started = Date.now();
const timer = setInterval(() => {
  if (finished || Date.now() - started > timeoutMs) {
    clearInterval(timer);
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ logs, timedOut: !finished }) + '\n');
      process.exit(0);
    }, 100);
  }
}, 20);
