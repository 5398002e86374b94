// Sync agent bench: buffer N messages while the cloud broker is down, then bring it
// up and measure the drain to it, with a live message every 100 ms during the drain.
// Figures: buffering rate, drain msgs/s, live-message latency (p50/p99/max), RSS of
// outpostd while buffered and while draining.
//
//   npm run build && node bench/sync/run.mjs [--messages 200000] [--payload 100]
//     [--envelope] [--in-flight 1000] [--drain-rate 0] [--board minimal-128mb|none]
//     [--prefill] [--no-drain]
//
// --prefill writes the backlog straight into the outbox table (the rows the bridge would write,
// in 100,000-row transactions, while outpostd is stopped) instead of publishing it over MQTT: for
// backlogs of millions, where buffering over MQTT would take longer than the drain itself.
// --no-drain stops after measuring RSS with the backlog buffered.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { MOSQUITTO_BIN, REPO_ROOT, loadBoardProfile } from '../lib/brokers.mjs';
import { cpuMsOf, freePort, memOf, stopChild, waitForPort } from '../lib/proc.mjs';
import { benchArgs } from '../lib/args.mjs';

const args = benchArgs(`usage: node bench/sync/run.mjs [options]

Messages buffered while the cloud broker is down, then the drain to it once it is up, with a
live message every 100 ms meanwhile: buffering rate, drain msgs/s, live latency, RSS.`, {
  messages: { type: 'string', default: '200000', help: 'messages buffered' },
  payload: { type: 'string', default: '100', help: 'payload bytes' },
  envelope: { type: 'boolean', default: false, help: 'the rule wraps payloads in the id envelope (id: envelope) instead of sending them raw' },
  'in-flight': { type: 'string', default: '1000', help: 'cloud.mqtt.maxInFlight' },
  'drain-rate': { type: 'string', default: '0', help: 'sync.drainRate, messages per second; 0: unlimited' },
  board: { type: 'string', default: 'minimal-128mb', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it; "none": bare' },
  prefill: { type: 'boolean', default: false, help: 'write the backlog straight into the outbox table while outpostd is stopped (for millions)' },
  'no-drain': { type: 'boolean', default: false, help: 'stop after measuring RSS with the backlog buffered' },
});
// The board profile's V8 flags and environment, as systemd would run the daemon there.
const board = args.board === 'none' ? undefined : await loadBoardProfile(args.board);
if (board) Object.assign(process.env, board.environment);
const N = Number(args.messages);
const PAYLOAD = Buffer.alloc(Number(args.payload), 'x');
const TARGET_DRAIN = 20_000;
const TARGET_LIVE_P99_MS = 1000;
const MiB = 1024 * 1024;
const mb = (bytes) => (bytes === null ? '?' : `${(bytes / MiB).toFixed(1)} MB`);

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-sync-'));
chmodSync(dir, 0o777); // mosquitto started as root runs as user "mosquitto"
const cloudPort = await freePort();
writeFileSync(join(dir, 'mosquitto.conf'), `listener ${cloudPort} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nlog_dest none\n`);

const daemonOptions = {
  dir,
  nodeArgs: [...(board?.nodeOptions ?? []), ...(process.env.SYNC_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/syncprof'] : [])],
  timeoutMs: 600_000,
  config: {
    log: { level: 'warn', format: 'json' },
    mqtt: { host: '127.0.0.1', port: 0, allowAnonymous: true, maxQueuedMessages: 1000 },
    http: { port: 0 },
    s3: { host: '127.0.0.1', port: 0 },
    cloud: { mqtt: { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'bench-gw', reconnectMinMs: 100, reconnectMaxMs: 200, maxInFlight: Number(args['in-flight']) } },
    sync: {
      maxBytes: 8 * 1024 * MiB,
      drainRate: Number(args['drain-rate']),
      outbound: [{ name: 'bench', from: 'bench/#', to: 'cloud/${topic}', id: args.envelope ? 'envelope' : 'none' }],
    },
  },
};
let outpostd = await spawnOutpostd(daemonOptions);
const outpost = (...command) => execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'bin', 'outpost.js'), '--socket', outpostd.socket, ...command], { encoding: 'utf8' });
let mosquitto;
const cleanup = async () => {
  if (mosquitto) await stopChild(mosquitto).catch(() => {});
  await stopChild(outpostd.child).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
};

/**
 * The rows OutboundBridge would commit for N publishes on bench/backlog (same columns, sizes, boot
 * id and monotonic clock), written while outpostd is stopped; it has created the tables and
 * registered this boot on its first start.
 */
async function prefillOutbox(dbFile) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbFile);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const [cloudTopic, localTopic] = ['cloud/bench/backlog', 'bench/backlog'];
  const bytes = Buffer.byteLength(cloudTopic) + Buffer.byteLength(localTopic) + PAYLOAD.length + 64;
  const insert = db.prepare(`INSERT INTO sync_outbox (kind, rule, priority, live, cloud_topic, local_topic, payload, qos, envelope, bytes, boot_id, enqueued_mono, expires_mono, enqueued_wall)
    VALUES ('message', 'bench', 5, 1, ?, ?, ?, 1, ?, ?, ?, ?, NULL, ?)`);
  const batch = db.transaction((count) => {
    const mono = Number(process.hrtime.bigint() / 1_000_000n);
    const wall = Date.now();
    for (let i = 0; i < count; i++) insert.run(cloudTopic, localTopic, PAYLOAD, args.envelope ? 1 : 0, bytes, bootId, mono, wall);
  });
  for (let written = 0; written < N; written += 100_000) batch(Math.min(100_000, N - written));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

try {
  let bufferSeconds;
  let bufferedRss;
  let restartSeconds = 0;
  const bufferStart = performance.now();
  if (args.prefill) {
    await stopChild(outpostd.child);
    await prefillOutbox(join(outpostd.dataDir, 'outpost.db'));
    bufferSeconds = (performance.now() - bufferStart) / 1000;
    const restartStart = performance.now();
    outpostd = await spawnOutpostd(daemonOptions);
    restartSeconds = (performance.now() - restartStart) / 1000;
  }
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${outpostd.port('mqtt')}`, { clientId: 'bench-device', protocolVersion: 4 });
  // 1. Buffer: QoS 1 with a window of 1000 unacknowledged publishes; a PUBACK means "in the outbox".
  if (!args.prefill) await new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < N && sent - acked < 1000) {
        sent++;
        device.publish('bench/backlog', PAYLOAD, { qos: 1 }, (error) => {
          if (error) return reject(error);
          acked++;
          if (acked === N) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  bufferSeconds ??= (performance.now() - bufferStart) / 1000;
  await sleep(args.prefill ? 5000 : 500);
  bufferedRss = memOf(outpostd.pid).rss;
  const dbBytes = statSync(join(outpostd.dataDir, 'outpost.db')).size;
  const how = args.prefill ? `prefilled into the outbox table in ${bufferSeconds.toFixed(1)} s, outpostd restarted on it in ${restartSeconds.toFixed(1)} s`
    : `buffering (cloud down) ${(N / bufferSeconds).toFixed(0)} msgs/s (${bufferSeconds.toFixed(1)} s)`;
  console.log(`sync bench: ${N} messages of ${PAYLOAD.length} B, ${args.envelope ? 'envelope' : 'raw payload'}, ${args['in-flight']} in flight, drainRate ${args['drain-rate'] === '0' ? 'unlimited' : args['drain-rate']}, board ${board?.name ?? 'none'}`);
  console.log(`  ${how}`);
  console.log(`  RSS with ${N} buffered   ${mb(bufferedRss)} (database ${mb(dbBytes)})`);

  if (args['no-drain']) device.end(true);
  else {
    // 2. Drain: the cloud comes up; a subscriber there counts the backlog and times the live messages.
    // Sending is paused until that subscriber is there, so that it sees everything.
    outpost('sync', 'pause');
    mosquitto = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    await waitForPort(cloudPort);
    const cloud = await mqtt.connectAsync(`mqtt://127.0.0.1:${cloudPort}`, { clientId: 'bench-cloud', protocolVersion: 4 });
    let received = 0;
    let firstAt = 0;
    let lastAt = 0;
    const latencies = [];
    cloud.on('message', (topic, payload) => {
      const now = performance.now();
      if (topic === 'cloud/bench/live') {
        const sentAt = Number(args.envelope ? JSON.parse(payload.toString()).payload : payload.toString());
        latencies.push(now - sentAt);
        return;
      }
      if (received === 0) firstAt = now;
      received++;
      lastAt = now;
    });
    await cloud.subscribeAsync('cloud/#', { qos: 0 });
    await sleep(500); // the gateway reconnects
    const drainStart = performance.now();
    const drainCpuStart = cpuMsOf(outpostd.pid);
    outpost('sync', 'resume');
    let peakRss = 0;
    const live = setInterval(() => {
      device.publish('bench/live', String(performance.now()), { qos: 1 });
      peakRss = Math.max(peakRss, memOf(outpostd.pid).rss ?? 0);
    }, 100);
    const deadline = Date.now() + Math.max(60_000, N / 2);
    while (received < N && Date.now() < deadline) await sleep(50);
    clearInterval(live);
    const drainCpuMs = cpuMsOf(outpostd.pid) - drainCpuStart;
    await sleep(300);
    device.end(true);
    cloud.end(true);

    const drainSeconds = (lastAt - drainStart) / 1000;
    const drainRate = received / Math.max(0.001, (lastAt - firstAt) / 1000);
    latencies.sort((a, b) => a - b);
    const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1) : '-');
    const p99 = latencies.length ? Number(pct(99)) : Infinity;
    const status = JSON.parse(outpost('sync', 'status', '--json'));
    console.log(`  drain to mosquitto       ${received}/${N} in ${drainSeconds.toFixed(1)} s from cloud start; ${drainRate.toFixed(0)} msgs/s first→last  ${drainRate >= TARGET_DRAIN ? 'PASS' : 'MISS'} (target ≥ ${TARGET_DRAIN})`);
    console.log(`  live latency in drain    n=${latencies.length} p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms  ${p99 <= TARGET_LIVE_P99_MS ? 'PASS' : 'MISS'} (target p99 ≤ ${TARGET_LIVE_P99_MS} ms)`);
    console.log(`  RSS peak while draining  ${mb(peakRss)}`);
    console.log(`  daemon CPU in drain      ${((drainCpuMs * 1000) / Math.max(1, received)).toFixed(1)} µs per message (utime+stime, all threads; load-independent)`);
    console.log(`  outbox after             ${status.outbox.items} items; dropped ${status.rules[0].dropped}, dead-lettered ${status.rules[0].deadLettered}`);
  }
} finally {
  await cleanup();
}
