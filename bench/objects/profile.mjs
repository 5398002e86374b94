// CPU profile of outpostd under PUTs or GETs (4 KiB on 16 connections unless --size/--connections): runs the daemon with
// --cpu-prof, drives `--op` for `--seconds`, stops it and prints the functions with the most self
// time and the daemon's CPU per operation. `node bench/objects/profile.mjs --op put|get`.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMsByThread, cpuMsOf, installExitHooks, onExit, stopChild, tail, track, waitForIdle } from '../lib/proc.mjs';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { loadBoardProfile } from '../lib/brokers.mjs';
import { S3BenchClient } from './s3-client.mjs';
import { benchArgs } from '../lib/args.mjs';

/**
 * The daemon's read and write system calls so far (all threads: SQLite's pages, sockets, files) and
 * bytes written: counts, unlike CPU time, that a shared machine does not blur.
 */
function ioCounts(pid) {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)[1]);
  return { reads: field('syscr'), writes: field('syscw'), written: field('wchar') };
}

const options = benchArgs(`usage: node bench/objects/profile.mjs [options]

A CPU profile of outpostd under PUTs or GETs: the functions with the most self time, the
inclusive time per operation, and the daemon's CPU per operation (by thread with --plain).`, {
  op: { type: 'string', default: 'put', help: 'put or get' },
  seconds: { type: 'string', default: '4', help: 'seconds of operations, measured' },
  top: { type: 'string', default: '30', help: 'functions listed' },
  // the daemon's JIT compiles its hot code in the first seconds
  warmup: { type: 'string', default: '0', help: 'seconds of the same operations first, not measured' },
  under: { type: 'string', help: 'also the self time under this function of the daemon (e.g. commitBatch), or in and under the functions of this file of dist/ (e.g. objects/share/file-share.js), with its total' },
  dist: { type: 'string', help: 'another build to measure (e.g. an earlier commit\'s dist/)' },
  plain: { type: 'boolean', default: false, help: 'no profiler: only the CPU per operation, without the profiler\'s own cost' },
  size: { type: 'string', default: '4096', help: 'body bytes (e.g. 67108864 with --connections 1 for large PUTs)' },
  connections: { type: 'string', default: '16', help: 'concurrent connections' },
  s3: { type: 'string', default: '{}', help: 'JSON merged into the s3 config section, e.g. \'{"share":{"watch":false}}\'' },
  board: { type: 'string', default: 'none', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it, as run.mjs does; "none": bare' },
  'node-args': { type: 'string', default: '', help: 'more node flags for outpostd, space-separated; one starting with dashes needs "=" (--node-args=--perf-basic-prof)' },
  'sync-ms': { type: 'string', default: '0', help: 'each fsync and fdatasync of the daemon made to take this long more, as on an SD card (strace attached to it: every system call costs more, so compare only runs made with it)' },
});
installExitHooks();

/** Attaches strace to every thread of `pid`, delaying its fsyncs and fdatasyncs by `ms`; resolves once attached. */
async function slowSyncs(pid, ms) {
  const strace = track(spawn('strace', ['-f', '-qq', '-p', String(pid), '-o', '/dev/null', '-e', 'trace=fsync,fdatasync', '-e', `inject=fsync,fdatasync:delay_enter=${ms * 1000}`], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const errors = tail(strace.stderr);
  // strace says nothing once attached with -qq: give it the time to seize the threads
  await sleep(1000);
  if (strace.exitCode !== null) throw new Error(`strace could not attach to the daemon: ${errors()}`);
}
const work = mkdtempSync(join(tmpdir(), 'outpost-profile-objects-'));
// at every exit (--plain's too): large PUTs leave gigabytes in it
onExit(() => rmSync(work, { recursive: true, force: true }));
const profiles = join(work, 'profiles');
const board = options.board === 'none' ? null : await loadBoardProfile(options.board);
// the HTTP port (off on small boards) only for the probe of the event loop (probedWhile)
const daemon = await spawnOutpostd({ dir: work, ...(options.dist ? { dist: options.dist } : {}), board, nodeArgs: [...options['node-args'].split(' ').filter(Boolean), ...(options.plain ? [] : ['--cpu-prof', `--cpu-prof-dir=${profiles}`])], config: {
  log: { level: 'warn', format: 'json' }, mqtt: { host: '127.0.0.1', port: 0 }, http: { enabled: true, host: '127.0.0.1', port: 0 }, s3: { host: '127.0.0.1', port: 0, ...JSON.parse(options.s3) },
} });
if (Number(options['sync-ms']) > 0) await slowSyncs(daemon.pid, Number(options['sync-ms']));
/**
 * How long the daemon's event loop stops: a GET /healthz (no disk, no thread) every PROBE_MS over one
 * keep-alive connection while `work` runs, each answer's wait in ms (the longest, and the p99). A
 * stopped loop answers none until it runs again. (The daemon's own event-loop delay gauges sample
 * once a second, so they see a stop of tens of ms only when it happens to span a sample.)
 */
const PROBE_MS = 10;
const probedWhile = async (work) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const waits = [];
  let running = true;
  const probing = (async () => {
    while (running) {
      const started = performance.now();
      await new Promise((resolve, reject) => http.get({ agent, host: '127.0.0.1', port: daemon.port('http'), path: '/healthz' }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject));
      waits.push(performance.now() - started);
      await sleep(PROBE_MS);
    }
  })();
  try {
    return await work();
  } finally {
    running = false;
    await probing;
    agent.destroy();
    waits.sort((a, b) => a - b);
    probe.maxMs = waits.at(-1) ?? 0;
    probe.p99Ms = waits[Math.floor(waits.length * 0.99)] ?? 0;
  }
};
const probe = { maxMs: 0, p99Ms: 0 };
const endpoint = await daemon.admin('/v1/s3/endpoint');
const s3 = new S3BenchClient({ port: daemon.port('s3'), accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey });
await s3.request('PUT', '/bench');
const body = randomBytes(Number(options.size));
const connections = Number(options.connections);
// GETs read keys written first: up to 2,000, and no more than 256 MiB of them (4 of 64 MiB)
const keys = Math.max(connections, Math.min(2000, Math.floor(2 ** 28 / body.length)));
if (options.op === 'get') for (let i = 0; i < keys; i += connections) await Promise.all(Array.from({ length: connections }, (_, j) => s3.request('PUT', `/bench/k${i + j}`, { body })));
// the share copies of the keys just written, and the file share's look at them once settled (2 s),
// are the PUTs' work, not the GETs'
/** `connections` loops of the operation for `seconds`; the number of 2xx answers. */
const round = async (seconds, name) => {
  const until = Date.now() + seconds * 1000;
  let answered = 0;
  await Promise.all(Array.from({ length: connections }, async (_, worker) => {
    for (let i = 0; Date.now() < until; i++) {
      const key = `/bench/k${(worker * 7919 + i * connections) % keys}`;
      const { status } = options.op === 'get' ? await s3.request('GET', key) : await s3.request('PUT', `/bench/${name}${worker}-${i}`, { body });
      if (status < 300) answered++;
    }
  }));
  return answered;
};
// probed too, so that the probe's own first requests (and V8 optimising Node's HTTP code again for
// them) fall in the warm-up, not in the measured round
if (Number(options.warmup) > 0) await probedWhile(() => round(Number(options.warmup), 'warm'));
await waitForIdle(daemon.pid, { quietMs: 2500, maxCpuMs: 20 });
const cpuBefore = cpuMsOf(daemon.pid);
// each thread's, the main thread's among them; the rest of the process's CPU is its other threads'
// (libuv's pool: fsyncs, file I/O; V8's: GC, compilers; the worker threads, also those that ended meanwhile)
const threadsBefore = cpuMsByThread(daemon.pid);
const ioBefore = ioCounts(daemon.pid);
const clientBefore = process.cpuUsage();
const ok = await probedWhile(() => round(Number(options.seconds), 'w'));
const client = process.cpuUsage(clientBefore);
const clientUs = (client.user + client.system) / ok;
// a PUT's work goes on after its answer (the share copy of a small object, the file share's look
// at it once settled): counted until idle
await waitForIdle(daemon.pid, { quietMs: 2500, maxCpuMs: 20 });
const cpuMs = cpuMsOf(daemon.pid) - cpuBefore;
const threadsAfter = cpuMsByThread(daemon.pid);
const mainMs = threadsAfter.get('main') - threadsBefore.get('main');
// each live thread's, the busiest first (a thread that ended meanwhile is in "others" only)
const threadsPerOp = [...threadsAfter].map(([name, ms]) => [name, (ms - (threadsBefore.get(name) ?? 0)) * 1000 / ok]).filter(([, us]) => us >= 1).sort((a, b) => b[1] - a[1]).map(([name, us]) => `${name} ${us.toFixed(0)}`).join(', ');
const io = ioCounts(daemon.pid);
const ioPerOp = `read calls ${((io.reads - ioBefore.reads) / ok).toFixed(1)}, write calls ${((io.writes - ioBefore.writes) / ok).toFixed(1)}, written ${((io.written - ioBefore.written) / ok / 1024).toFixed(1)} KiB`;
const peakRss = /VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))?.[1];
const byThread = `main ${(mainMs * 1000 / ok).toFixed(0)}, others ${((cpuMs - mainMs) * 1000 / ok).toFixed(0)}`;
s3.close();
await stopChild(daemon.child);
if (options.plain) {
  console.log(`${options.op}: ${ok} ops in ${options.seconds} s, daemon CPU ${(cpuMs * 1000 / ok).toFixed(0)} µs/op (by thread: ${byThread}; each: ${threadsPerOp}), bench client ${clientUs.toFixed(0)} µs/op, daemon per op: ${ioPerOp}, daemon peak RSS ${(Number(peakRss) / 1024).toFixed(1)} MiB, event loop stopped (GET /healthz every ${PROBE_MS} ms) at most ${probe.maxMs.toFixed(1)} ms, p99 ${probe.p99Ms.toFixed(1)} ms; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  process.exit(0);
}
const file = readdirSync(profiles).find((name) => name.endsWith('.cpuprofile'));
const profile = JSON.parse(readFileSync(join(profiles, file), 'utf8'));
const self = new Map();
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
let total = 0;
for (const [id, micros] of dt) {
  const { callFrame } = byId.get(id);
  const name = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/(node_modules|dist|node:)/, '$1')}:${callFrame.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + micros);
  total += micros;
}
console.log(`${options.op}: ${ok} ops in ${options.seconds} s, daemon CPU ${(cpuMs * 1000 / ok).toFixed(0)} µs/op; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
for (const [name, micros] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(options.top))) {
  console.log(`${(100 * micros / total).toFixed(1).padStart(5)} %  ${name}`);
}
// inclusive time of the daemon's own functions (each counted once per sample, however deep the recursion)
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const inclusive = new Map();
for (const [id, micros] of dt) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const { callFrame } = byId.get(at);
    if (!/\/dist\//.test(callFrame.url)) continue;
    const name = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/dist\//, '')}:${callFrame.lineNumber + 1}`;
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + micros);
  }
}
if (options.under) {
  const underFile = options.under.endsWith('.js');
  const matches = (callFrame) => (underFile ? callFrame.url.endsWith(`/dist/${options.under}`) : callFrame.functionName === options.under);
  const under = new Map();
  let underTotal = 0;
  for (const [id, micros] of dt) {
    let inside = false;
    for (let at = underFile ? id : parent.get(id); at !== undefined && !inside; at = parent.get(at)) inside = matches(byId.get(at).callFrame);
    if (!inside) continue;
    underTotal += micros;
    const { callFrame } = byId.get(id);
    const name = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/(node_modules|dist|node:)/, '$1')}:${callFrame.lineNumber + 1}`;
    under.set(name, (under.get(name) ?? 0) + micros);
  }
  console.log(`\nself time under ${options.under}, per operation: ${(underTotal / ok).toFixed(1)} µs in all`);
  for (const [name, micros] of [...under].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(micros / ok).toFixed(0).padStart(6)} µs  ${name}`);
}
console.log('\ninclusive, per operation:');
for (const [name, micros] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(options.top))) {
  console.log(`${(micros / ok).toFixed(0).padStart(6)} µs  ${name}`);
}
process.exit(0);
