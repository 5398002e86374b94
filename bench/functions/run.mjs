// Functions bench: warm synchronous invoke latency of a no-op Node.js handler over the admin API,
// cold-start latency after fresh deploys, MQTT-triggered throughput through the durable async
// queue with 2 instances, and the daemon's RSS per idle warm instance. Runs dist/bin/outpostd.js
// (npm run build first). Prints figures and PASS/MISS against the targets; exits 0 whatever the
// figures are (1 only when the daemon or a deploy fails).
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { connectPacket, FrameSplitter, PACKET } from '../lib/mqtt-raw.mjs';
import { cpuMsOf, memOf, stopChild } from '../lib/proc.mjs';
import { spawnOutpostd } from '../lib/outpostd.mjs';

const { values: options } = parseArgs({ options: {
  invokes: { type: 'string', default: '10000' },
  warmup: { type: 'string', default: '3000' },
  deploys: { type: 'string', default: '15' },
  'python-deploys': { type: 'string', default: '5' },
  messages: { type: 'string', default: '20000' },
  'max-instances': { type: 'string', default: '2' },
  'queue-length': { type: 'string', default: '25000' },
  settle: { type: 'string', default: '2000' },
  'drain-timeout': { type: 'string', default: '120' },
  dist: { type: 'string' },
  phases: { type: 'string', default: 'memory,warm,mqtt,cold,python' },
  'cpu-prof-dir': { type: 'string' },
  'node-args': { type: 'string', default: '' },
  'keep-tmp': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} });
if (options.help) {
  process.stdout.write(`node bench/functions/run.mjs [--invokes 10000] [--warmup 3000] [--deploys 15] [--python-deploys 5] [--messages 20000]
  [--max-instances 2] [--queue-length 25000] [--settle 2000 (ms)] [--drain-timeout 120 (s)] [--dist DIR] [--keep-tmp] [--json]
  [--phases memory,warm,mqtt,cold,python (a subset, in that order)] [--cpu-prof-dir DIR (the daemon runs with --cpu-prof)]
  [--node-args "--trace-gc ..." (more options for the daemon's node)]\n`);
  process.exit(0);
}
const INVOKES = Number(options.invokes);
const WARMUP = Number(options.warmup);
const DEPLOYS = Number(options.deploys);
const PYTHON_DEPLOYS = Number(options['python-deploys']);
const MESSAGES = Number(options.messages);
const PHASES = new Set(options.phases.split(','));
const SETTLE_MS = Number(options.settle);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = resolve(options.dist ?? join(ROOT, 'dist'));
const OUTPOSTD = join(DIST, 'bin', 'outpostd.js');
const OUTPOST = join(DIST, 'bin', 'outpost.js');
const FIXTURE = join(ROOT, 'bench', 'functions', 'fixture');
const NAME = 'BenchNoop';
const PYTHON_FIXTURE = join(ROOT, 'bench', 'functions', 'fixture-python');
const PYTHON_NAME = 'BenchPyNoop';
// The interpreter itself, not a shim on PATH: a function's environment is only PATH and Lambda's variables.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
const TOPIC = 'bench/fn/noop';
const TARGETS = { warmP50Ms: 0.2, warmP99Ms: 1, coldP50Ms: 30, pythonColdP50Ms: 150, eventsPerS: 10000, rssPerInstanceMiB: 10 };
const log = (line) => process.stderr.write(`${line}\n`);
const MiB = 1024 * 1024;

// ---------------------------------------------------------------- daemon and admin API

async function startDaemon(dir) {
  const daemon = await spawnOutpostd({
    dir,
    dist: DIST,
    nodeArgs: [
      ...(options['cpu-prof-dir'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(options['cpu-prof-dir'])] : []),
      ...options['node-args'].split(' ').filter(Boolean),
    ],
    config: {
      s3: { port: 0 },
      mqtt: { host: '127.0.0.1', port: 0, allowAnonymous: true },
      http: { port: 0 },
      log: { level: 'warn' },
      functions: {
        maxInstances: Number(options['max-instances']),
        queueLength: Number(options['queue-length']),
        logFileBytes: 256 * MiB, // REPORT lines of the whole run in one file
        pythonPath: PYTHON,
      },
    },
  });
  return { ...daemon, mqttPort: daemon.port('mqtt'), httpPort: daemon.port('http') };
}

const agentFor = (socketPath) => new http.Agent({ keepAlive: true, maxSockets: 4 });

/** One JSON request over the admin socket; resolves with {status, body}. */
function admin(daemon, method, path, body) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolveReq, reject) => {
    const req = http.request({
      socketPath: daemon.socket, agent: daemon.agent, path, method, timeout: 15000,
      headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { raw: text }; }
        resolveReq({ status: res.statusCode, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function invoke(daemon, name = NAME) {
  const r = await admin(daemon, 'POST', `/v1/functions/${name}/invocations`, { payload: {}, invocationType: 'RequestResponse' });
  if (r.status !== 200 || r.body.functionError) throw new Error(`invoke failed: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function deploy(daemon, dir) {
  return new Promise((resolveDeploy, reject) => {
    execFile(process.execPath, [OUTPOST, '--socket', daemon.socket, 'deploy', dir], { timeout: 60000, cwd: ROOT },
      (err, stdout, stderr) => (err ? reject(new Error(`outpost deploy ${dir} failed: ${stderr || stdout || err.message}`)) : resolveDeploy(stdout)));
  });
}

function httpGet(port, path) {
  return new Promise((resolveGet, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolveGet(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

/** The named figures of the bench function from one scrape of /metrics (each scrape costs the daemon CPU). */
async function metrics(daemon, ...names) {
  const text = await httpGet(daemon.httpPort, '/metrics');
  return names.map((name) => {
    const m = text.match(new RegExp(`^${name}\\{function="${NAME}"\\} ([0-9.e+]+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  });
}

/** Daemon-side figures from the function log: requestId → {durationMs, initMs}. */
function reportLines(daemon, name = NAME) {
  const file = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
  const reports = new Map();
  const texts = [`${file}.1`, file].filter(existsSync).map((f) => readFileSync(f, 'utf8'));
  for (const line of texts.join('').split('\n')) {
    const m = line.match(/^REPORT RequestId: (\S+)\tDuration: ([0-9.]+) ms.*?(?:Init Duration: ([0-9.]+) ms)?$/);
    if (m) reports.set(m[1], { durationMs: Number(m[2]), initMs: m[3] === undefined ? undefined : Number(m[3]) });
  }
  return reports;
}

const rssOf = (pid) => memOf(pid).rss;
/** CPU time of the daemon: the whole process (worker threads included) and its main thread alone, in ms. */
const daemonCpu = (pid) => ({ processMs: cpuMsOf(pid), mainMs: cpuMsOf(`${pid}/task/${pid}`) });
/** Daemon CPU µs per operation between two daemonCpu readings. */
const cpuPerOp = (before, after, ops) => ({
  processUs: ((after.processMs - before.processMs) * 1000) / ops,
  mainThreadUs: ((after.mainMs - before.mainMs) * 1000) / ops,
});

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), min: sorted[0], max: sorted[sorted.length - 1] };
}

const hrMs = (start) => Number(process.hrtime.bigint() - start) / 1e6;

// ---------------------------------------------------------------- phases

/** 4. RSS after the deploy (no instance) vs. one and two warm instances idle for SETTLE_MS each. */
async function memory(daemon) {
  await sleep(SETTLE_MS);
  const before = rssOf(daemon.pid);
  await invoke(daemon);
  await sleep(SETTLE_MS);
  const one = rssOf(daemon.pid);
  await Promise.all([invoke(daemon), invoke(daemon)]); // two at once: a second instance
  await sleep(SETTLE_MS);
  const two = rssOf(daemon.pid);
  // Two concurrent requests may still be served one after the other by one instance: ask.
  const info = await admin(daemon, 'GET', `/v1/functions/${NAME}`);
  const instances = info.body.instances;
  return { rssBeforeBytes: before, rssOneInstanceBytes: one, rssTwoInstancesBytes: two, instancesAfterConcurrent: instances,
    perInstanceMiB: (one - before) / MiB, perInstanceOfTwoMiB: instances?.idle === 2 ? (two - before) / 2 / MiB : null };
}

/** 1. Sequential RequestResponse invokes on a warm instance, one keep-alive connection. */
async function warm(daemon) {
  for (let i = 0; i < WARMUP; i++) await invoke(daemon);
  const client = [];
  const ids = [];
  const cpu0 = daemonCpu(daemon.pid);
  for (let i = 0; i < INVOKES; i++) {
    const t0 = process.hrtime.bigint();
    const body = await invoke(daemon);
    client.push(hrMs(t0));
    ids.push(body.requestId);
  }
  const cpu = cpuPerOp(cpu0, daemonCpu(daemon.pid), INVOKES);
  await sleep(500); // the runtime's log lines go out in 10 ms batches, written asynchronously
  const reports = reportLines(daemon);
  const daemonSide = ids.map((id) => reports.get(id)?.durationMs).filter((d) => d !== undefined);
  return { client: stats(client), report: daemonSide.length ? stats(daemonSide) : null, cpu };
}

/** 3. QoS 0 publishes on the trigger topic from one raw socket; completions from /metrics. */
async function mqttThroughput(daemon) {
  const sock = net.connect(daemon.mqttPort, '127.0.0.1');
  sock.setNoDelay(true);
  let connack;
  const connected = new Promise((r) => { connack = r; });
  const splitter = new FrameSplitter((type) => { if (type === PACKET.CONNACK) connack(); });
  sock.on('data', (chunk) => splitter.push(chunk));
  sock.on('error', (err) => log(`publisher socket: ${err.message}`));
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  sock.write(connectPacket({ clientId: 'bench-fn-pub' }));
  await Promise.race([connected, sleep(10000).then(() => { throw new Error('no CONNACK in 10 s'); })]);

  const one = mqttPacket.generate({ cmd: 'publish', topic: TOPIC, payload: Buffer.from('{}'), qos: 0, retain: false, dup: false });
  const BATCH = 50;
  const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
  const [invocations0, throttles0] = await metrics(daemon, 'outpost_function_invocations_total', 'outpost_function_throttles_total');
  let maxDepth = 0;
  const cpu0 = daemonCpu(daemon.pid);
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    const n = Math.min(BATCH, MESSAGES - sent);
    const ok = sock.write(n === BATCH ? batch : batch.subarray(0, one.length * n));
    if (!ok) await new Promise((r) => sock.once('drain', r));
  }
  const publishMs = hrMs(started);

  // Poll until every message ran, or nothing moved for 5 s, or the drain timeout.
  let done = 0;
  let doneAtMs = publishMs;
  let lastChange = process.hrtime.bigint();
  const deadline = Date.now() + Number(options['drain-timeout']) * 1000;
  while (Date.now() < deadline) {
    const [now, depth] = await metrics(daemon, 'outpost_function_invocations_total', 'outpost_function_async_queue_depth');
    maxDepth = Math.max(maxDepth, depth);
    if (now - invocations0 !== done) { done = now - invocations0; doneAtMs = hrMs(started); lastChange = process.hrtime.bigint(); }
    if (done >= MESSAGES || hrMs(lastChange) > 5000) break;
    await sleep(50);
  }
  const cpu = cpuPerOp(cpu0, daemonCpu(daemon.pid), Math.max(1, done));
  const throttled = (await metrics(daemon, 'outpost_function_throttles_total'))[0] - throttles0;
  sock.end(mqttPacket.generate({ cmd: 'disconnect' }));
  return { published: MESSAGES, publishMs, completed: done, completedMs: doneAtMs,
    perSecond: done / (doneAtMs / 1000), maxQueueDepth: maxDepth, throttled, cpu };
}

/** 2. Deploy a changed Environment N times; time the first invoke of each new version. */
async function coldStarts(daemon, dir, { fixture = FIXTURE, name = NAME, deploys = DEPLOYS } = {}) {
  const copy = join(dir, `cold-${name}`);
  cpSync(fixture, copy, { recursive: true });
  const template = readFileSync(join(fixture, 'template.yaml'), 'utf8');
  if (!template.includes('      Timeout: 3\n')) throw new Error('fixture template changed: no "Timeout: 3" line to add Environment after');
  const client = [];
  const ids = [];
  for (let i = 1; i <= deploys; i++) {
    writeFileSync(join(copy, 'template.yaml'), template.replace('      Timeout: 3\n',
      `      Timeout: 3\n      Environment:\n        Variables: { BENCH_COLD: "${Date.now()}-${i}" }\n`));
    await deploy(daemon, copy);
    const t0 = process.hrtime.bigint();
    const body = await invoke(daemon, name);
    client.push(hrMs(t0));
    ids.push(body.requestId);
  }
  await sleep(500);
  const reports = reportLines(daemon, name);
  const daemonSide = ids.map((id) => reports.get(id)).filter((r) => r?.initMs !== undefined).map((r) => r.initMs + r.durationMs);
  const initOnly = ids.map((id) => reports.get(id)?.initMs).filter((d) => d !== undefined);
  return { client: stats(client), report: daemonSide.length ? stats(daemonSide) : null, init: initOnly.length ? stats(initOnly) : null };
}

// ---------------------------------------------------------------- main

if (!existsSync(OUTPOSTD) || !existsSync(OUTPOST)) {
  log(`outpostd is not built: ${OUTPOSTD} or ${OUTPOST} is missing (run \`npm run build\`)`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-functions-'));
let daemon;
let exitCode = 0;
const cleanup = () => { try { daemon?.child.kill('SIGKILL'); } catch { /* gone */ } };
process.once('SIGINT', () => { cleanup(); if (!options['keep-tmp']) rmSync(dir, { recursive: true, force: true }); process.exit(130); });
try {
  daemon = await startDaemon(dir);
  daemon.agent = agentFor(daemon.socket);
  log(`outpostd pid ${daemon.pid}, mqtt ${daemon.mqttPort}, http ${daemon.httpPort}, tmp ${dir}`);
  await deploy(daemon, FIXTURE);
  const phase = async (name, line, run) => {
    if (!PHASES.has(name)) return null;
    log(line);
    return run();
  };
  const mem = await phase('memory', `memory: RSS after deploy, then 1 and 2 warm instances, ${SETTLE_MS} ms idle each`, () => memory(daemon));
  const w = await phase('warm', `warm: ${WARMUP} warm-up + ${INVOKES} sequential invokes`, () => warm(daemon));
  const m = await phase('mqtt', `mqtt: ${MESSAGES} QoS 0 messages on ${TOPIC}, maxInstances ${options['max-instances']}`, () => mqttThroughput(daemon));
  const c = await phase('cold', `cold: ${DEPLOYS} deploys with a changed environment, first invoke of each`, () => coldStarts(daemon, dir));
  const py = PYTHON_DEPLOYS > 0
    ? await phase('python', `cold python: ${PYTHON_DEPLOYS} deploys of ${PYTHON_NAME} (${PYTHON}), first invoke of each`,
      () => coldStarts(daemon, dir, { fixture: PYTHON_FIXTURE, name: PYTHON_NAME, deploys: PYTHON_DEPLOYS }))
    : null;

  const verdict = (ok) => (ok ? 'PASS' : 'MISS');
  const report = {
    config: { invokes: INVOKES, warmup: WARMUP, deploys: DEPLOYS, messages: MESSAGES, maxInstances: Number(options['max-instances']), queueLength: Number(options['queue-length']), node: process.version },
    targets: TARGETS,
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
    warm: w && { ...w,
      verdictClient: verdict(w.client.p50 <= TARGETS.warmP50Ms && w.client.p99 <= TARGETS.warmP99Ms),
      verdictDaemon: w.report ? verdict(w.report.p50 <= TARGETS.warmP50Ms && w.report.p99 <= TARGETS.warmP99Ms) : 'NOT MEASURED' },
    cold: c && { ...c, verdictClient: verdict(c.client.p50 <= TARGETS.coldP50Ms), verdictDaemon: c.report ? verdict(c.report.p50 <= TARGETS.coldP50Ms) : 'NOT MEASURED' },
    pythonCold: py && { ...py, verdictDaemon: py.report ? verdict(py.report.p50 <= TARGETS.pythonColdP50Ms) : 'NOT MEASURED' },
    mqtt: m && { ...m, verdict: verdict(m.completed === m.published && m.perSecond >= TARGETS.eventsPerS) },
    memory: mem && { ...mem, verdict: verdict(mem.perInstanceMiB <= TARGETS.rssPerInstanceMiB) },
  };
  const ms = (v) => `${v.toFixed(3)} ms`;
  const us = (v) => `${Math.round(v)} µs`;
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write([
    ...(w ? [
      `warm invoke, client end to end (admin API over the Unix socket, keep-alive; n=${w.client.n}): p50 ${ms(w.client.p50)}, p99 ${ms(w.client.p99)}, max ${ms(w.client.max)} (target p50 ≤ 0.2 ms, p99 ≤ 1 ms: ${report.warm.verdictClient})`,
      w.report
        ? `warm invoke, daemon side (REPORT Duration: pool dispatch → worker → response; n=${w.report.n}): p50 ${ms(w.report.p50)}, p99 ${ms(w.report.p99)}, max ${ms(w.report.max)} (target p50 ≤ 0.2 ms, p99 ≤ 1 ms: ${report.warm.verdictDaemon})`
        : 'warm invoke, daemon side: no REPORT lines found (NOT MEASURED)',
      `warm invoke, daemon CPU per invoke: ${us(w.cpu.mainThreadUs)} main thread, ${us(w.cpu.processUs)} whole process`,
    ] : []),
    ...(c ? [
      `cold start, client end to end (first invoke after each of ${c.client.n} deploys): p50 ${ms(c.client.p50)}, min ${ms(c.client.min)}, max ${ms(c.client.max)} (target p50 ≤ 30 ms: ${report.cold.verdictClient})`,
      c.report
        ? `cold start, daemon side (REPORT Init Duration + Duration; n=${c.report.n}): p50 ${ms(c.report.p50)}, max ${ms(c.report.max)}; init alone p50 ${ms(c.init.p50)} (target p50 ≤ 30 ms: ${report.cold.verdictDaemon})`
        : 'cold start, daemon side: no REPORT Init Duration found (NOT MEASURED)',
    ] : []),
    ...(py ? [py.report
      ? `Python cold start, daemon side (REPORT Init Duration + Duration; n=${py.report.n}): p50 ${ms(py.report.p50)}, max ${ms(py.report.max)}; client end to end p50 ${ms(py.client.p50)} (target p50 ≤ 150 ms: ${report.pythonCold.verdictDaemon})`
      : 'Python cold start: no REPORT Init Duration found (NOT MEASURED)'] : []),
    ...(m ? [
      `MQTT-triggered no-op, ${m.published} QoS 0 messages, ${report.config.maxInstances} instances: ${Math.round(m.perSecond).toLocaleString('en')} events/s (${m.completed} completed in ${(m.completedMs / 1000).toFixed(2)} s from the first publish; publisher wrote them all in ${m.publishMs.toFixed(1)} ms; peak queue depth seen ${m.maxQueueDepth}; throttled ${m.throttled}) (target ≥ 10,000/s: ${report.mqtt.verdict})`,
      `MQTT-triggered no-op, daemon CPU per event: ${us(m.cpu.mainThreadUs)} main thread, ${us(m.cpu.processUs)} whole process (workers included)`,
    ] : []),
    ...(mem ? [
      `idle warm Node instance, daemon RSS: ${(mem.rssBeforeBytes / MiB).toFixed(1)} MiB before → ${(mem.rssOneInstanceBytes / MiB).toFixed(1)} MiB with 1 instance (+${mem.perInstanceMiB.toFixed(1)} MiB) → ${(mem.rssTwoInstancesBytes / MiB).toFixed(1)} MiB after 2 concurrent invokes (${mem.perInstanceOfTwoMiB === null ? `still ${mem.instancesAfterConcurrent?.idle} idle instance(s): no 2-instance figure` : `2 instances, +${mem.perInstanceOfTwoMiB.toFixed(1)} MiB each`}) (target ≤ 10 MiB per instance: ${report.memory.verdict})`,
    ] : []),
    `load average: ${report.loadavg}`,
  ].join('\n') + '\n');
} catch (err) {
  log(`bench failed: ${err.stack ?? err.message}`);
  if (daemon) log(`--- outpostd output ---\n${daemon.output()}`);
  exitCode = 1;
} finally {
  daemon?.agent?.destroy();
  if (daemon) await stopChild(daemon.child, 5000);
  if (!options['keep-tmp']) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
}
process.exit(exitCode);
