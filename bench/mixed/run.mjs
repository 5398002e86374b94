// Mixed-load memory bench: outpostd as a board profile runs it, with every service busy at once —
// MQTT publishers and subscribers (live, slow and offline persistent sessions), shadow updates,
// S3 PUTs and GETs (small, and large ones streamed), function invocations (Node.js and Python,
// over the admin API, an MQTT trigger and object events) and the sync agent, its cloud broker
// down for the first half of the load (the outbox fills to its bound) and up for the second
// (it drains). VmRSS/VmHWM sampled every 100 ms: the peak, what it is made of and the phase it
// fell in, against the board's budget (≤ 64 MB idle, ≤ 110 MB under load).
//
//   npm run build && node bench/mixed/run.mjs [--seconds 90] [--clients 50] [--board minimal-128mb]
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { benchArgs } from '../lib/args.mjs';
import { MOSQUITTO_BIN, REPO_ROOT, loadBoardProfile } from '../lib/brokers.mjs';
import { adminRequest, spawnOutpostd } from '../lib/outpostd.mjs';
import { freePort, installExitHooks, memOf, stopChild, track, waitForPort } from '../lib/proc.mjs';
import { S3BenchClient, streamedBody } from '../objects/s3-client.mjs';

const args = benchArgs(`usage: node bench/mixed/run.mjs [options]

outpostd's memory with every service busy at once, on a board profile: idle RSS, the peak under a
mixed load (and the phase it fell in), and RSS once the load has stopped.`, {
  seconds: { type: 'string', default: '90', help: 'seconds of load: the first half with the cloud broker down, the second with it up' },
  clients: { type: 'string', default: '50', help: 'MQTT clients (a fifth shadow clients, 4 live subscribers, 2 slow, 2 offline persistent sessions, the rest publishers)' },
  rate: { type: 'string', default: '4', help: 'messages per second per publisher (QoS 0 and 1 alternately by publisher)' },
  'large-mib': { type: 'string', default: '64', help: 'size of the large object PUT (streamed) and GET in turn, MiB; 0: none' },
  'outbox-bytes': { type: 'string', default: '524288', help: 'sync.maxBytes, small enough that the outbox reaches its bound while the cloud is down' },
  'large-every': { type: 'string', default: '10', help: 'seconds from the start of one large PUT+GET to the next (one at a time)' },
  skip: { type: 'string', default: '', help: 'load left out, comma-separated: publish, slow, shadows, functions, python, objects, large (to see what each costs)' },
  'idle-timeout': { type: 'string', default: '300', help: 'functions.idleTimeoutSeconds: below --settle, the phase after the load shows RSS without the warm function environments' },
  idle: { type: 'string', default: '60', help: 'seconds idle after start-up, before the load (the idle budget is for a daemon at rest: V8 gives the young generation start-up grew back some seconds after)' },
  settle: { type: 'string', default: '15', help: 'seconds idle after the load' },
  board: { type: 'string', default: 'minimal-128mb', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it; "none": bare' },
  'node-args': { type: 'string', default: '', help: 'more options for the daemon\'s node (e.g. "--heapsnapshot-signal=SIGUSR2")' },
  'heap-snapshots': { type: 'string', default: '', help: 'write a V8 heap snapshot of the daemon into this directory at the end of each idle phase (before and after the load)' },
  'keep-tmp': { type: 'boolean', default: false, help: 'keep the temporary directory (the daemon\'s data, mosquitto\'s config)' },
  json: { type: 'boolean', default: false, help: 'print one JSON document instead of the report' },
});
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const RATE = Number(args.rate);
const LARGE = Number(args['large-mib']) * 1024 * 1024;
const IDLE_MS = Number(args.idle) * 1000;
const SETTLE_MS = Number(args.settle) * 1000;
const SKIP = new Set(args.skip.split(',').filter(Boolean));
const TARGETS = { idleMiB: 64, loadMiB: 110 };
const MiB = 1024 * 1024;
const log = (line) => process.stderr.write(`${line}\n`);
const mib = (bytes) => (bytes === null || bytes === undefined ? '?' : (bytes / MiB).toFixed(1));
installExitHooks();

if (args['heap-snapshots']) mkdirSync(args['heap-snapshots'], { recursive: true });
const board = args.board === 'none' ? null : await loadBoardProfile(args.board);
const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-mixed-'));
chmodSync(dir, 0o777); // mosquitto started as root runs as user "mosquitto"
const cloudPort = await freePort();
writeFileSync(join(dir, 'mosquitto.conf'), `listener ${cloudPort} 127.0.0.1\nallow_anonymous true\nlog_dest none\n`);

// ---------------------------------------------------------------- memory sampling

/** Phases in order; the sampler charges each sample to the current one. */
const phases = [];
let phase;
function enterPhase(name) {
  phase = { name, startedMs: performance.now(), samples: [], peak: null };
  phases.push(phase);
  log(`[${new Date().toISOString().slice(11, 19)}] ${name}`);
}
/** Large transfers under way (their names), so that a peak says whether one was. */
const transfers = new Set();
/** The daemon's last V8 figures from /metrics (heap used and total, external memory), every 2 s. */
let heap = null;
let peak = null;
/**
 * The peak RSS of each minute of load (the load's phases together), in bytes: a long run shows
 * whether the daemon levels off or keeps growing (`--seconds 900`).
 */
const loadMinutePeaks = [];
let loadStartedMs = null;

function sample(pid) {
  const mem = memOf(pid);
  if (mem.rss === null) return;
  let threads = null;
  try { threads = readdirSync(`/proc/${pid}/task`).length; } catch { /* gone */ }
  const entry = { atMs: Math.round(performance.now()), ...mem, threads, transfers: [...transfers], heap };
  phase.samples.push(mem.rss);
  if (loadStartedMs !== null && phase.name.startsWith('load')) {
    const minute = Math.floor((entry.atMs - loadStartedMs) / 60_000);
    loadMinutePeaks[minute] = Math.max(loadMinutePeaks[minute] ?? 0, mem.rss);
  }
  if (!phase.peak || mem.rss > phase.peak.rss) phase.peak = entry;
  if (!peak || mem.rss > peak.rss) peak = { ...entry, phase: phase.name };
}

/**
 * The daemon's descendants (Python runtimes and the process above each, process environments):
 * their RSS summed, and their PSS summed (shared pages split among the processes sharing them, so
 * the interpreter's pages count once), in bytes.
 */
function descendantsMemory(pid) {
  const total = { rss: 0, pss: 0 };
  const walk = (parent, depth) => {
    if (depth > 6) return;
    let children = [];
    try { children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { return; }
    for (const child of children) {
      total.rss += memOf(child).rss ?? 0;
      try { total.pss += Number(readFileSync(`/proc/${child}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0) * 1024; } catch { /* gone */ }
      walk(child, depth + 1);
    }
  };
  walk(pid, 0);
  return total;
}

const metricValue = (text, name) => Number(text.match(new RegExp(`^${name} ([0-9.e+]+)$`, 'm'))?.[1] ?? NaN);
function httpText(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- the daemon and its admin API

const outpostd = await spawnOutpostd({
  dir,
  board,
  nodeArgs: [...args['node-args'].split(' ').filter(Boolean), ...(args['heap-snapshots'] ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${args['heap-snapshots']}`] : [])],
  config: {
    log: { level: 'warn', format: 'json' },
    mqtt: { host: '127.0.0.1', port: 0, allowAnonymous: true },
    http: { enabled: true, host: '127.0.0.1', port: 0 },
    s3: { host: '127.0.0.1', port: 0 },
    functions: { pythonPath: '/usr/bin/python3', idleTimeoutSeconds: Number(args['idle-timeout']) },
    cloud: { mqtt: { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'mix-gw', reconnectMinMs: 500, reconnectMaxMs: 1000 } },
    sync: { maxBytes: Number(args['outbox-bytes']), outbound: [{ name: 'telemetry', from: 'mix/telemetry/#', to: 'cloud/${topic}' }] },
  },
});
const startupHwm = memOf(outpostd.pid).hwm;
const mqttUrl = `mqtt://127.0.0.1:${outpostd.port('mqtt')}`;
const cleanup = async () => {
  await stopChild(outpostd.child).catch(() => {});
  if (!args['keep-tmp']) rmSync(dir, { recursive: true, force: true });
};

const admin = (method, path, body) => adminRequest(outpostd.socket, method, path, body);

function outpost(...command) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(REPO_ROOT, 'dist', 'bin', 'outpost.js'), '--socket', outpostd.socket, ...command], { timeout: 120000 },
      (error, stdout, stderr) => (error ? reject(new Error(`outpost ${command.join(' ')}: ${stderr || stdout || error.message}`)) : resolve(stdout)));
  });
}

// ---------------------------------------------------------------- load

/** Per activity: operations done and failed, with the last failure. */
const counts = {};
const count = (activity, error) => {
  const entry = (counts[activity] ??= { ok: 0, failed: 0, lastError: null });
  if (error) {
    entry.failed++;
    entry.lastError = String(error.message ?? error).slice(0, 200);
  } else entry.ok++;
};

/**
 * Runs `operation` every `everyMs` while the load lasts, never two at once (a tick that finds the
 * last one still running is skipped and counted), so a slow daemon gets less load, not a pile-up.
 */
const tickers = [];
function every(activity, everyMs, operation) {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return count(`${activity} (skipped: previous still running)`);
    busy = true;
    operation().then(() => count(activity), (error) => count(activity, error)).finally(() => { busy = false; });
  }, everyMs);
  tickers.push(timer);
}

const telemetry = (publisher, seq) => JSON.stringify({ publisher, seq, at: Date.now(), pad: 'x'.repeat(140) });

async function connectClients() {
  const shadows = Math.max(1, Math.round(CLIENTS / 5));
  const publishers = Math.max(1, CLIENTS - shadows - 8);
  const connect = (clientId, options = {}) => mqtt.connectAsync(mqttUrl, { clientId, protocolVersion: 4, reconnectPeriod: 0, ...options });
  const received = { live: 0, shadowAccepted: 0 };

  // Two offline persistent sessions: subscribed, then gone; their queues fill to mqtt.maxQueuedMessages.
  for (let i = 0; i < 2; i++) {
    const offline = await connect(`mix-offline-${i}`, { clean: false });
    await offline.subscribeAsync('mix/telemetry/#', { qos: 1 });
    await offline.endAsync();
  }
  const live = [];
  for (let i = 0; i < 4; i++) {
    const client = await connect(`mix-live-${i}`);
    client.on('message', () => { received.live++; });
    await client.subscribeAsync('mix/telemetry/#', { qos: 1 });
    live.push(client);
  }
  // Two slow subscribers: connected, subscribed to everything, and never reading their socket.
  const slow = [];
  for (let i = 0; i < (SKIP.has('slow') ? 0 : 2); i++) {
    const client = await connect(`mix-slow-${i}`, { keepalive: 0 });
    await client.subscribeAsync('mix/#', { qos: 1 });
    client.stream.pause();
    slow.push(client);
  }
  const shadowClients = [];
  for (let i = 0; i < shadows; i++) {
    const client = await connect(`mix-shadow-${i}`);
    client.on('message', () => { received.shadowAccepted++; });
    await client.subscribeAsync(`$aws/things/mix-thing-${i}/shadow/update/accepted`, { qos: 0 });
    shadowClients.push(client);
  }
  const publisherClients = [];
  for (let i = 0; i < publishers; i++) publisherClients.push(await connect(`mix-pub-${i}`));
  return { received, live, slow, shadowClients, publisherClients, all: [...live, ...slow, ...shadowClients, ...publisherClients] };
}

function startLoad(mqttClients, s3) {
  if (!SKIP.has('publish')) mqttClients.publisherClients.forEach((client, index) => {
    let seq = 0;
    every(index % 2 ? 'mqtt publish QoS 1' : 'mqtt publish QoS 0', 1000 / RATE, () => client.publishAsync(`mix/telemetry/${index}`, telemetry(index, seq++), { qos: index % 2 }));
  });
  if (!SKIP.has('shadows')) mqttClients.shadowClients.forEach((client, index) => {
    let seq = 0;
    every('shadow update', 500, () => client.publishAsync(`$aws/things/mix-thing-${index}/shadow/update`, JSON.stringify({ state: { reported: { seq: seq++, temperature: 20 + (seq % 7), at: Date.now() } } }), { qos: 1 }));
  });
  // Function events through the durable async queue (an MQTT trigger), and invocations over the admin API.
  let fnSeq = 0;
  if (!SKIP.has('functions')) every('function event over MQTT', 250, () => mqttClients.publisherClients[0].publishAsync(`mix/fn/${fnSeq % 4}`, JSON.stringify({ seq: fnSeq++ }), { qos: 1 }));
  const invoke = (name) => async () => {
    const response = await admin('POST', `/v1/functions/${name}/invocations`, { payload: { at: Date.now(), pad: 'y'.repeat(512) }, invocationType: 'RequestResponse' });
    if (response.status !== 200 || response.body.functionError) throw new Error(`${name}: HTTP ${response.status} ${JSON.stringify(response.body).slice(0, 120)}`);
  };
  if (!SKIP.has('functions')) every('invoke Node.js', 250, invoke('MixEcho'));
  if (!SKIP.has('python')) every('invoke Python', 500, invoke('MixPy'));
  // S3: small objects written and read back, objects that trigger MixOnObject, and a large one in turn.
  const small = Buffer.alloc(4096, 's');
  let smallSeq = 0;
  if (!SKIP.has('objects')) every('s3 4 KiB PUT+GET', 100, async () => {
    const key = `/mix/small/${smallSeq++ % 200}`;
    const put = await s3.request('PUT', key, { body: small });
    const got = await s3.request('GET', key);
    if (put.status !== 200 || got.status !== 200) throw new Error(`small: PUT ${put.status}, GET ${got.status}`);
  });
  let triggerSeq = 0;
  if (!SKIP.has('objects') && !SKIP.has('functions')) every('s3 PUT triggering a function', 500, async () => {
    const put = await s3.request('PUT', `/mix/trigger/${triggerSeq++}.json`, { body: Buffer.from(JSON.stringify({ seq: triggerSeq })) });
    if (put.status !== 200) throw new Error(`trigger: PUT ${put.status}`);
  });
  if (LARGE > 0 && !SKIP.has('large')) {
    const chunk = Buffer.alloc(MiB, 'L');
    every(`s3 ${args['large-mib']} MiB PUT+GET`, Number(args['large-every']) * 1000, async () => {
      transfers.add('large PUT');
      try {
        const put = await s3.request('PUT', '/mix/large', { body: streamedBody(LARGE, chunk), length: LARGE });
        if (put.status !== 200) throw new Error(`large: PUT ${put.status}`);
      } finally { transfers.delete('large PUT'); }
      transfers.add('large GET');
      try { await s3.download('/mix/large'); } finally { transfers.delete('large GET'); }
    });
  }
}

/** With --heap-snapshots: SIGUSR2 makes the daemon write one (the main thread's heap); the samples meanwhile are left out. */
async function heapSnapshot() {
  if (!args['heap-snapshots']) return;
  clearInterval(sampler);
  const before = readdirSync(args['heap-snapshots']).length;
  process.kill(outpostd.pid, 'SIGUSR2');
  for (let waited = 0; waited < 60 && readdirSync(args['heap-snapshots']).length === before; waited++) await sleep(500);
  await sleep(3000); // written in full
  sampler = setInterval(() => sample(outpostd.pid), 100);
}

const stopLoad = () => tickers.splice(0).forEach((timer) => clearInterval(timer));

// ---------------------------------------------------------------- run

let sampler;
let heapScraper;
const report = { config: { seconds: SECONDS, clients: CLIENTS, ratePerPublisher: RATE, largeMiB: Number(args['large-mib']), outboxBytes: Number(args['outbox-bytes']), board: board?.name ?? 'none', idleS: IDLE_MS / 1000, settleS: SETTLE_MS / 1000 } };
try {
  enterPhase('idle after start-up');
  sampler = setInterval(() => sample(outpostd.pid), 100);
  const childrenPeak = { rss: 0, pss: 0 };
  heapScraper = setInterval(() => {
    const children = descendantsMemory(outpostd.pid);
    childrenPeak.rss = Math.max(childrenPeak.rss, children.rss);
    childrenPeak.pss = Math.max(childrenPeak.pss, children.pss);
    httpText(outpostd.port('http'), '/metrics').then((text) => {
      heap = { usedMiB: Number(mib(metricValue(text, 'outpost_nodejs_heap_size_used_bytes'))), totalMiB: Number(mib(metricValue(text, 'outpost_nodejs_heap_size_total_bytes'))), externalMiB: Number(mib(metricValue(text, 'outpost_nodejs_external_memory_bytes'))) };
    }, () => {});
  }, 2000);
  await sleep(IDLE_MS);
  await heapSnapshot();

  enterPhase('setup');
  await outpost('deploy', join(REPO_ROOT, 'bench', 'mixed', 'fixture'));
  await outpost('buckets', 'create', 'mix');
  await outpost('buckets', 'notify', 'mix', '--function', 'MixOnObject', '--prefix', 'trigger/');
  const endpoint = await outpostd.admin('/v1/s3/endpoint');
  const s3 = new S3BenchClient({ port: outpostd.port('s3'), accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey, connections: 4 });
  const mqttClients = await connectClients();

  enterPhase('load, cloud down');
  loadStartedMs = performance.now();
  startLoad(mqttClients, s3);
  await sleep((SECONDS * 1000) / 2);
  report.syncCloudDown = (await admin('GET', '/v1/sync')).body;

  enterPhase('load, cloud up');
  const mosquitto = track(execFile(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')]));
  await waitForPort(cloudPort);
  await sleep((SECONDS * 1000) / 2);
  stopLoad();
  // what was still running finishes (a large transfer: some seconds)
  await sleep(2000);
  report.syncCloudUp = (await admin('GET', '/v1/sync')).body;
  report.functionInstances = {};
  for (const name of ['MixEcho', 'MixOnObject', 'MixPy']) report.functionInstances[name] = (await admin('GET', `/v1/functions/${name}`)).body.instances;
  const clientsNow = (await admin('GET', '/v1/clients')).body;
  await Promise.all(mqttClients.all.map((client) => client.endAsync(true).catch(() => {})));
  // The offline sessions come back: what they get is what their queue held, within its bound.
  const queued = [];
  for (let i = 0; i < 2; i++) {
    let got = 0;
    const client = await mqtt.connectAsync(mqttUrl, { clientId: `mix-offline-${i}`, clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    client.on('message', () => { got++; });
    await sleep(2000);
    await client.endAsync();
    queued.push(got);
  }

  enterPhase('idle after the load');
  await sleep(SETTLE_MS);
  await heapSnapshot();
  clearInterval(sampler);
  clearInterval(heapScraper);
  await stopChild(mosquitto).catch(() => {});

  const settled = (p) => {
    // the median of the phase's last 3 s: V8's memory reducer and glibc's trim have had their turn
    const last = p.samples.slice(-30).sort((a, b) => a - b);
    return last[Math.floor(last.length / 2)] ?? null;
  };
  const idle = phases[0];
  const after = phases.at(-1);
  Object.assign(report, {
    startupHwmBytes: startupHwm,
    idleRssBytes: settled(idle),
    afterRssBytes: settled(after),
    peak,
    childrenPeakRssBytes: childrenPeak.rss,
    childrenPeakPssBytes: childrenPeak.pss,
    phases: phases.map((p) => ({ name: p.name, seconds: Math.round((p.samples.length) / 10), peakRssBytes: p.peak?.rss ?? null, peakAnonBytes: p.peak?.anon ?? null, peakFileBytes: p.peak?.file ?? null, threadsAtPeak: p.peak?.threads ?? null, transfersAtPeak: p.peak?.transfers ?? [], heapAtPeak: p.peak?.heap ?? null })),
    load: { counts, liveMessagesReceived: mqttClients.received.live, shadowAccepted: mqttClients.received.shadowAccepted, offlineSessionsReceived: queued, clientsConnectedAtEnd: Array.isArray(clientsNow) ? clientsNow.length : clientsNow.clients?.length },
    hwmBytes: memOf(outpostd.pid).hwm,
    loadMinutePeakRssBytes: Array.from(loadMinutePeaks, (bytes) => bytes ?? null),
  });
  report.verdict = {
    idle: report.idleRssBytes / MiB <= TARGETS.idleMiB ? 'PASS' : 'MISS',
    load: peak.rss / MiB <= TARGETS.loadMiB ? 'PASS' : 'MISS',
  };

  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const out = [];
    out.push(`outpostd, board ${report.config.board}: ${CLIENTS} MQTT clients, ${RATE} msg/s per publisher, ${args['large-mib']} MiB objects, ${SECONDS} s of load`);
    out.push('');
    out.push('phase                        peak RSS   anon   file  threads  heap used/total  external  large transfer at peak');
    for (const p of report.phases) {
      const h = p.heapAtPeak;
      out.push(`${p.name.padEnd(27)} ${mib(p.peakRssBytes).padStart(9)} ${mib(p.peakAnonBytes).padStart(6)} ${mib(p.peakFileBytes).padStart(6)} ${String(p.threadsAtPeak ?? '?').padStart(8)}   ${h ? `${h.usedMiB}/${h.totalMiB}`.padStart(14) : '?'.padStart(14)} ${h ? String(h.externalMiB).padStart(9) : '?'.padStart(9)}  ${p.transfersAtPeak.join(', ') || '-'}`);
    }
    out.push('');
    out.push(`RSS (MiB): start-up peak ${mib(startupHwm)}, idle ${mib(report.idleRssBytes)} (target ≤ ${TARGETS.idleMiB}: ${report.verdict.idle}), peak under load ${mib(peak.rss)} in "${peak.phase}" (anon ${mib(peak.anon)}, file ${mib(peak.file)}; target ≤ ${TARGETS.loadMiB}: ${report.verdict.load}), idle after the load ${mib(report.afterRssBytes)}, VmHWM ${mib(report.hwmBytes)}`);
    out.push(`Peak RSS by minute of load (MiB): ${report.loadMinutePeakRssBytes.map(mib).join(', ')}`);
    out.push(`Function processes (Python runtimes), peak: RSS ${mib(childrenPeak.rss)} MiB summed, PSS ${mib(childrenPeak.pss)} MiB summed (not in the daemon's RSS)`);
    const outbox = (status) => `${status.outbox.items} items, ${status.outbox.bytes} of ${status.outbox.maxBytes} bytes; dropped ${status.rules.map((rule) => rule.dropped ?? 0).join('+')}`;
    out.push(`Outbox: end of cloud down ${outbox(report.syncCloudDown)}; end of load ${outbox(report.syncCloudUp)}`);
    out.push(`Function instances at the end of the load: ${Object.entries(report.functionInstances).map(([name, instances]) => `${name} ${JSON.stringify(instances)}`).join(', ')}`);
    out.push(`Offline persistent sessions got ${queued.join(' and ')} queued messages on return; live subscribers got ${mqttClients.received.live} messages, shadow clients ${mqttClients.received.shadowAccepted} accepted`);
    out.push('');
    out.push('operation                                  done   failed  last failure');
    for (const [activity, c] of Object.entries(counts)) out.push(`${activity.padEnd(42)} ${String(c.ok).padStart(5)} ${String(c.failed).padStart(7)}  ${c.lastError ?? ''}`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
} finally {
  clearInterval(sampler);
  clearInterval(heapScraper);
  stopLoad();
  await cleanup();
}
process.exit(0);
