// Shadow bench: durable updates per second over MQTT from 20 clients across 1,000 things, and
// publish→/update/accepted latency at a steady 1,000 updates/s. Runs dist/bin/outpostd.js
// (npm run build first) with durability as shipped (synchronous=full). Prints figures and
// PASS/MISS against the targets; exits 0 whatever the figures are.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMsOf } from '../lib/proc.mjs';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { ShadowClient } from './clients.mjs';
import { benchArgs } from '../lib/args.mjs';

const options = benchArgs(`usage: node bench/shadows/run.mjs [options]

Durable shadow updates per second over MQTT, and publish→/update/accepted latency at a steady rate.`, {
  clients: { type: 'string', default: '20', help: 'MQTT clients' },
  things: { type: 'string', default: '1000', help: 'things the updates are spread over' },
  updates: { type: 'string', default: '40000', help: 'updates of the throughput round (closed loop)' },
  window: { type: 'string', default: '10', help: 'updates in flight per client in the throughput round' },
  rate: { type: 'string', default: '1000', help: 'updates per second of the latency round (open loop)' },
  seconds: { type: 'string', default: '10', help: 'seconds of the latency round' },
  json: { type: 'boolean', default: false, help: 'print one JSON document instead of the tables' },
  'cpu-prof': { type: 'string', help: 'write a CPU profile of outpostd into this directory' },
});
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
  const daemon = await spawnOutpostd({
    dir,
    // Anonymous loopback clients limited to the $aws topics, free ports (S3's too, 9000 may be taken).
    config: {
      log: { level: 'warn', format: 'json' },
      mqtt: { host: '127.0.0.1', port: 0, allowAnonymous: true, anonymousPolicy: { publish: ['$aws/#'], subscribe: ['$aws/#'] } },
      http: { port: 0 },
      s3: { host: '127.0.0.1', port: 0 },
    },
    nodeArgs: options['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(options['cpu-prof'])}`] : [],
  });
  return { child: daemon.child, dir, port: daemon.port('mqtt') };
}

async function connectClients(port) {
  const clients = Array.from({ length: CLIENTS }, (_, index) => {
    const things = [];
    for (let t = index; t < THINGS; t += CLIENTS) things.push(`bench-thing-${t}`);
    return new ShadowClient(index, things);
  });
  await Promise.all(clients.map((client) => client.connect(port)));
  return clients;
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime of a process's main thread (where its JavaScript runs) in milliseconds. */
function mainThreadMs(pid) {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU time of the daemon and of this load generator over `run`, as shares of one core, and the
 * daemon's per update (all its threads, and its main thread alone): the figures that do not depend on
 * what else the machine runs. The main thread's is what bounds throughput.
 */
async function measured(daemonPid, run) {
  const started = process.hrtime.bigint();
  const daemon0 = cpuMsOf(daemonPid);
  const main0 = mainThreadMs(daemonPid);
  const self0 = process.cpuUsage();
  const result = await run();
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const self = process.cpuUsage(self0);
  const daemonMs = cpuMsOf(daemonPid) - daemon0;
  const mainMs = mainThreadMs(daemonPid) - main0;
  const share = (ms) => Math.round((100 * ms) / wallMs);
  return {
    ...result,
    cpu: { daemon: share(daemonMs), loadGenerator: share((self.user + self.system) / 1000), daemonUsPerUpdate: Math.round((1000 * daemonMs) / result.updates), daemonMainThreadUsPerUpdate: Math.round((1000 * mainMs) / result.updates) },
  };
}

/**
 * Fails the bench when answers stop coming while updates are in flight (a `/rejected` without a
 * clientToken, such as a 429, cannot be matched to its update) instead of waiting forever.
 */
function watchStalls(clients) {
  let answers = -1;
  let still = 0;
  let timer;
  const stalled = new Promise((_, reject) => {
    timer = setInterval(() => {
      const now = clients.reduce((sum, client) => sum + client.accepted + client.rejected, 0);
      const inFlight = clients.reduce((sum, client) => sum + client.inFlight, 0);
      still = now === answers && inFlight > 0 ? still + 1 : 0;
      answers = now;
      if (still >= 10) reject(new Error(`no answer for 10 s with ${inFlight} updates in flight`));
    }, 1000);
    timer.unref();
  });
  return { phase: (promise) => Promise.race([promise, stalled]), stop: () => clearInterval(timer) };
}

/** Closed loop: each client keeps `window` updates in flight until it had `perClient` answered. */
function closedLoop(clients, perClient, window) {
  return Promise.all(clients.map((client) => new Promise((resolveClient) => {
    let sent = 0;
    let answered = 0;
    client.onAnswer = () => {
      answered++;
      if (sent < perClient) {
        sent++;
        client.send();
      } else if (answered === perClient) resolveClient();
    };
    for (; sent < Math.min(window, perClient); sent++) client.send();
    client.flush();
  })));
}

async function throughput(clients) {
  const perClient = Math.ceil(UPDATES / clients.length);
  const accepted0 = clients.reduce((sum, client) => sum + client.accepted, 0);
  const started = process.hrtime.bigint();
  await closedLoop(clients, perClient, WINDOW);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const accepted = clients.reduce((sum, client) => sum + client.accepted, 0) - accepted0;
  return { updates: perClient * clients.length, accepted, seconds, perSecond: accepted / seconds };
}

/** Open loop: update i is due at i/RATE seconds, whatever the answers do; round-robin over the clients. */
async function latency(clients) {
  const latencies = [];
  const total = RATE * SECONDS;
  for (const client of clients) client.onAnswer = (ms) => latencies.push(ms);
  const started = process.hrtime.bigint();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - started) / 1e9) * RATE) + 1);
    const touched = new Set();
    for (; sent < due; sent++) {
      const client = clients[sent % clients.length];
      client.send();
      touched.add(client);
    }
    for (const client of touched) client.flush();
    await new Promise((r) => setTimeout(r, 1));
  }
  while (latencies.length < total) await new Promise((r) => setTimeout(r, 5));
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { updates: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] };
}

const daemon = await startDaemon();
try {
  const clients = await connectClients(daemon.port);
  const watch = watchStalls(clients);
  log(`warm-up: ${CLIENTS} clients, ${THINGS} things, one update each`);
  await watch.phase(closedLoop(clients, Math.ceil(THINGS / CLIENTS), WINDOW));
  log(`throughput: ${UPDATES} updates, window ${WINDOW} per client`);
  const t = await measured(daemon.child.pid, () => watch.phase(throughput(clients)));
  log(`latency: ${RATE}/s for ${SECONDS} s`);
  const l = await measured(daemon.child.pid, () => watch.phase(latency(clients)));
  const rejected = clients.reduce((sum, c) => sum + c.rejected, 0);
  const report = {
    throughput: { ...t, target: 20000, verdict: t.perSecond >= 20000 ? 'PASS' : 'MISS' },
    latency: { ...l, rate: RATE, targetP99Ms: 10, verdict: l.p99 <= 10 ? 'PASS' : 'MISS' },
    rejected,
  };
  const cpu = ({ cpu: c }) => `CPU: daemon ${c.daemon} % (${c.daemonUsPerUpdate} µs/update, main thread ${c.daemonMainThreadUsPerUpdate}), load generator ${c.loadGenerator} % of a core`;
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write([
    `durable updates/s (${CLIENTS} clients, ${THINGS} things, window ${WINDOW}): ${Math.round(t.perSecond).toLocaleString('en')} (${t.accepted} accepted in ${t.seconds.toFixed(2)} s; target ≥ 20,000: ${report.throughput.verdict}; ${cpu(t)})`,
    `publish→/accepted at ${RATE}/s for ${SECONDS} s: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms (target p99 ≤ 10 ms: ${report.latency.verdict}; ${cpu(l)})`,
    `rejected: ${rejected}`,
  ].join('\n') + '\n');
  watch.stop();
  for (const c of clients) c.close();
} finally {
  daemon.child.kill('SIGTERM');
  await new Promise((r) => daemon.child.once('exit', r));
  rmSync(daemon.dir, { recursive: true, force: true });
}
