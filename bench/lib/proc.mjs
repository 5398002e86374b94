// Process helpers for the benches: free ports, readiness, /proc figures and
// child bookkeeping so that no broker outlives the bench.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once host:port accepts a connection; rejects after timeoutMs or if isDead() turns true. */
export async function waitForPort(port, { host = '127.0.0.1', timeoutMs = 15000, isDead = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (isDead()) throw new Error('process exited before its port opened');
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port });
      const done = (v) => { s.destroy(); resolve(v); };
      s.setTimeout(1000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
    if (ok) return attempt;
    await sleep(50);
  }
  throw new Error(`port ${host}:${port} did not accept connections within ${timeoutMs} ms`);
}

/**
 * VmRSS / VmHWM of a pid in bytes, and what the RSS is made of: anonymous pages (heaps, stacks),
 * file-backed ones (the node binary, libraries) and shared memory (null if the process is gone).
 */
export function memOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => {
      const m = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) * 1024 : null;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
  } catch {
    return { rss: null, hwm: null, anon: null, file: null, shmem: null };
  }
}

/**
 * The machine's CPU ticks so far, all cores: `steal` is time the hypervisor gave this VM's virtual
 * CPUs to others (a shared host), `total` all of it; the share stolen over a round says how much
 * a figure from a shared machine may be off.
 */
export function cpuTicks() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return { steal: fields[7] ?? 0, total: fields.reduce((sum, ticks) => sum + ticks, 0) };
}

/** Per cent of the CPU time between two cpuTicks() that the hypervisor stole. */
export function stolenPercent(before, after) {
  return Math.round((100 * (after.steal - before.steal)) / Math.max(1, after.total - before.total));
}

let clkTck = 0;
/**
 * utime+stime in milliseconds of a whole process (all threads, also those that ended), or of one
 * of its threads (`tid`: the main thread's is the pid), or null.
 */
export function cpuMsOf(pid, tid) {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clkTck = 100; }
  }
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // fields after the parenthesised comm; utime and stime are fields 14 and 15
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return (ticks * 1000) / clkTck;
  } catch {
    return null;
  }
}

/**
 * Resolves once `pid` has used at most `maxCpuMs` of CPU over `quietMs` (work a server does after
 * its answers, e.g. outpostd's share copies of small objects, is done), or after `timeoutMs`.
 */
export async function waitForIdle(pid, { quietMs = 500, maxCpuMs = 10, timeoutMs = 15000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const before = cpuMsOf(pid);
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    if (cpuMsOf(pid) - before <= maxCpuMs) return;
  }
}

/**
 * CPU ms of each live thread of `pid`, by "main" for the main thread and "NAME/TID" for the others
 * (NAME: the thread's comm, "node" for Node.js 20's worker threads, libuv's pool and V8's helpers alike).
 */
export function cpuMsByThread(pid) {
  const byThread = new Map();
  let tids = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return byThread; }
  for (const tid of tids) {
    let name;
    try { name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(); } catch { continue; }
    const ms = cpuMsOf(pid, tid);
    if (ms !== null) byThread.set(Number(tid) === pid ? 'main' : `${name}/${tid}`, ms);
  }
  return byThread;
}

/** Machine-wide CPU time from /proc/stat in milliseconds: busy (not idle/iowait) and steal. */
export function machineCpuMs() {
  if (!clkTck) cpuMsOf(process.pid);
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    return { busyMs: (busy * 1000) / clkTck, stealMs: ((f[7] ?? 0) * 1000) / clkTck };
  } catch {
    return null;
  }
}

/** Children to kill on any exit path. */
const children = new Set();

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killAll(signal = 'SIGKILL') {
  for (const c of children) {
    try { c.kill(signal); } catch { /* already gone */ }
  }
}

const exitCleanups = new Set();
/** A synchronous cleanup to run at process exit (e.g. removing a temporary directory). */
export function onExit(fn) {
  exitCleanups.add(fn);
  return () => exitCleanups.delete(fn);
}

let hooksInstalled = false;
/** On exit, Ctrl-C or an uncaught error: SIGKILL every tracked child. */
export function installExitHooks(onSignal) {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    for (const fn of exitCleanups) { try { fn(); } catch { /* best effort */ } }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (onSignal) onSignal(sig);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves with how it ended. */
export async function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return 'already exited';
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig ?? `code ${code}`)));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const how = await exited;
  clearTimeout(t);
  return how;
}

/** Keeps the last `max` characters written to a stream (for error reports). */
export function tail(stream, max = 8192) {
  let buf = '';
  stream?.setEncoding?.('utf8');
  stream?.on('data', (d) => { buf = (buf + d).slice(-max); });
  return () => buf;
}

/** spawn(), optionally under `taskset -c <cpus>` (taskset execs, so child.pid is the program's). */
export function spawnPinned(cmd, args, opts, cpus) {
  if (cpus === undefined || cpus === null || cpus === '') return track(spawn(cmd, args, opts));
  return track(spawn('taskset', ['-c', String(cpus), cmd, ...args], opts));
}
