// Shadow bench: durable updates per second over MQTT from 20 clients across 1,000 things, and
// publish→/update/accepted latency at a steady 1,000 updates/s. Runs dist/bin/outpostd.js
// (npm run build first) with durability as shipped (synchronous=full). Prints figures and
// PASS/MISS against the targets; exits 0 whatever the figures are.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';

const { values: options } = parseArgs({ options: {
  clients: { type: 'string', default: '20' },
  things: { type: 'string', default: '1000' },
  updates: { type: 'string', default: '40000' },
  window: { type: 'string', default: '10' },
  rate: { type: 'string', default: '1000' },
  seconds: { type: 'string', default: '10' },
  json: { type: 'boolean', default: false },
} });
const CLIENTS = Number(options.clients);
const THINGS = Number(options.things);
const UPDATES = Number(options.updates);
const WINDOW = Number(options.window);
const RATE = Number(options.rate);
const SECONDS = Number(options.seconds);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (line) => process.stderr.write(`${line}\n`);

async function startDaemon() {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-shadows-'));
  const config = join(dir, 'outpost.yaml');
  // JSON is YAML: anonymous loopback clients limited to the $aws topics, free ports.
  writeFileSync(config, JSON.stringify({
    log: { level: 'info', format: 'json' },
    mqtt: { host: '127.0.0.1', port: 0, allowAnonymous: true, anonymousPolicy: { publish: ['$aws/#'], subscribe: ['$aws/#'] } },
    http: { port: 0 },
  }));
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bin', 'outpostd.js'), '--config', config, '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NOTIFY_SOCKET: '' } });
  const listeners = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error('outpostd not ready in 30 s')), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'outpostd ready') { clearTimeout(timer); resolveReady(entry.listeners); }
      } catch { /* not JSON */ }
    });
    child.once('exit', (code) => reject(new Error(`outpostd exited with ${code}`)));
  });
  const port = listeners.find((l) => l.name === 'mqtt').port;
  return { child, dir, port };
}

function connect(port, clientId) {
  return new Promise((resolveConnect, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, protocolVersion: 4 });
    client.once('connect', () => resolveConnect(client));
    client.once('error', reject);
  });
}

/** One bench client: its things (every CLIENTS-th), pending requests by clientToken. */
async function benchClient(port, index) {
  const client = await connect(port, `bench-${index}`);
  const things = [];
  for (let t = index; t < THINGS; t += CLIENTS) things.push(`bench-thing-${t}`);
  const pending = new Map();
  let rejected = 0;
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString());
    const done = pending.get(body.clientToken);
    if (!done) return;
    pending.delete(body.clientToken);
    if (topic.endsWith('/rejected')) rejected++;
    done();
  });
  await client.subscribeAsync(things.flatMap((thing) => [`$aws/things/${thing}/shadow/update/accepted`, `$aws/things/${thing}/shadow/update/rejected`]), { qos: 1 });
  let sequence = 0;
  const update = () => new Promise((resolveUpdate) => {
    const thing = things[sequence % things.length];
    const clientToken = `${index}-${sequence++}`;
    const sentAt = process.hrtime.bigint();
    pending.set(clientToken, () => resolveUpdate(Number(process.hrtime.bigint() - sentAt) / 1e6));
    client.publish(`$aws/things/${thing}/shadow/update`, JSON.stringify({ state: { reported: { temperature: 20 + (sequence % 10), seq: sequence } }, clientToken }), { qos: 1 });
  });
  return { client, update, rejected: () => rejected };
}

async function throughput(clients) {
  const perClient = Math.ceil(UPDATES / clients.length);
  const started = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    let sent = 0;
    const worker = async () => { while (sent < perClient) { sent++; await c.update(); } };
    await Promise.all(Array.from({ length: WINDOW }, worker));
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { updates: perClient * clients.length, seconds, perSecond: (perClient * clients.length) / seconds };
}

async function latency(clients) {
  const latencies = [];
  const total = RATE * SECONDS;
  const started = Date.now();
  const inFlight = [];
  for (let i = 0; i < total; i++) {
    // Open loop: request i is due at i/RATE seconds, whatever the answers do.
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(clients[i % clients.length].update().then((ms) => latencies.push(ms)));
  }
  await Promise.all(inFlight);
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { updates: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] };
}

const daemon = await startDaemon();
try {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => benchClient(daemon.port, i)));
  log(`warm-up: ${CLIENTS} clients, ${THINGS} things`);
  await Promise.all(clients.map((c) => c.update()));
  log(`throughput: ${UPDATES} updates, window ${WINDOW} per client`);
  const t = await throughput(clients);
  log(`latency: ${RATE}/s for ${SECONDS} s`);
  const l = await latency(clients);
  const rejected = clients.reduce((sum, c) => sum + c.rejected(), 0);
  const report = {
    throughput: { ...t, target: 20000, verdict: t.perSecond >= 20000 ? 'PASS' : 'MISS' },
    latency: { ...l, rate: RATE, targetP99Ms: 10, verdict: l.p99 <= 10 ? 'PASS' : 'MISS' },
    rejected,
  };
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write([
    `durable updates/s (${CLIENTS} clients, ${THINGS} things, window ${WINDOW}): ${Math.round(t.perSecond).toLocaleString('en')} (${t.updates} in ${t.seconds.toFixed(2)} s; target ≥ 20,000: ${report.throughput.verdict})`,
    `publish→/accepted at ${RATE}/s for ${SECONDS} s: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms (target p99 ≤ 10 ms: ${report.latency.verdict})`,
    `rejected: ${rejected}`,
  ].join('\n') + '\n');
  for (const c of clients) c.client.end(true);
} finally {
  daemon.child.kill('SIGTERM');
  await new Promise((r) => daemon.child.once('exit', r));
  rmSync(daemon.dir, { recursive: true, force: true });
}
