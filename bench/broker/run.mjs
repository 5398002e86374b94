#!/usr/bin/env node
// Broker throughput and memory: outpostd against mosquitto (and optionally a
// bare aedes) in the same run, with the same load generator.
//
//   node bench/broker/run.mjs [--broker outpostd,mosquitto] [--qos 0,1] [--rounds 3] [--json] …
//
// See bench/README.md for what is measured and how to read it. The bench
// prints PASS/MISS against the targets but exits 0 either way; it exits 1 only
// when it could not measure (a broker did not start, every round aborted).
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  BROKERS, MOSQUITTO_BIN, REPO_ROOT, buildOutpost, loadBoardProfile, outpostdBuildState, startBroker, useOutpostDist,
} from '../lib/brokers.mjs';
import { cpuMsOf, installExitHooks, killAll, machineCpuMs, memOf, spawnPinned } from '../lib/proc.mjs';

const HELP = `usage: node bench/broker/run.mjs [options]

  --broker LIST        brokers to measure, comma-separated: outpostd, mosquitto,
                       aedes-bare, or "all" (default: outpostd,mosquitto)
  --qos LIST           QoS levels to run (default: 0,1)
  --rounds N           measured rounds per (broker, QoS); the median is reported (default: 3)
  --warmup N           unmeasured rounds per (broker, QoS) first (default: 1)
  --publishers N       publisher connections (default: 10)
  --messages N         messages per publisher (default: 5000)
  --size BYTES         payload size (default: 100)
  --window N           QoS 1: PUBLISHes in flight per publisher awaiting PUBACK (default: 100)
  --refill N           QoS 1: top the window up only once N PUBACKs freed slots (default: 1,
                       i.e. publish again as soon as any PUBACK arrives)
  --batch N            QoS 0: PUBLISHes per socket write (default: 50)
  --sub MODE           subscriber in the load generator's process ("same") or its own ("separate") (default: same)
  --parser P           subscriber's parser: "fast" frame splitter or full "mqtt-packet" (default: fast)
  --pin MODE           "none", or "split": taskset brokers to CPU 0 and the load generator to the
                       other CPU(s) (default: none)
  --timeout SECONDS    a round not finished by then is aborted and reported (default: 60)
  --drain MS           after the last publish, stop waiting once nothing arrived for MS (default: 1000)
  --settle SECONDS     idle time after start before the idle RSS reading (default: 15: V8's memory
                       reducer returns the young generation grown during start-up about 8-12 s in)
  --quiet-cpu SHARE    before each round wait until the machine's CPU use (brokers idle) is at most
                       SHARE of one core, sampled over 250 ms (default: 0.15) …
  --quiet-wait SECONDS …but no longer than this; 0 turns the wait off (default: 10)
  --disturbed-cpu SHARE a round during which the rest of the machine used more than SHARE of one
                       core is "disturbed" and run again (default: 0.25) …
  --retry-disturbed N  …at most N times; then it is kept and marked (default: 2)
  --persistent-session subscriber connects with cleanSession=false
  --build              run \`npm run build\` first (outpostd)
  --dist DIR           run outpostd from DIR/bin/outpostd.js (another build) instead of ./dist
  --board NAME         run outpostd as board profile firmware-configs/boards/NAME.yaml sets it up
                       (its NODE_OPTIONS, environment and config); "none" runs it bare, with Node's
                       defaults and the embedded configuration (default: minimal-128mb, the profile
                       the installer falls back to and the one the targets are for)
  --keep-tmp           keep the brokers' temporary directories (configs, data, logs)
  --json               print one JSON document instead of the tables
  -h, --help           this text
`;

const TARGETS = { qos0: 0.8, qos1: 1.0, rssIdleMiB: 64, rssAfterMiB: 96 };

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      broker: { type: 'string', default: 'outpostd,mosquitto' },
      qos: { type: 'string', default: '0,1' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      publishers: { type: 'string', default: '10' },
      messages: { type: 'string', default: '5000' },
      size: { type: 'string', default: '100' },
      window: { type: 'string', default: '100' },
      refill: { type: 'string', default: '1' },
      batch: { type: 'string', default: '50' },
      sub: { type: 'string', default: 'same' },
      parser: { type: 'string', default: 'fast' },
      pin: { type: 'string', default: 'none' },
      timeout: { type: 'string', default: '60' },
      drain: { type: 'string', default: '1000' },
      settle: { type: 'string', default: '15' },
      'quiet-cpu': { type: 'string', default: '0.15' },
      'quiet-wait': { type: 'string', default: '10' },
      'disturbed-cpu': { type: 'string', default: '0.25' },
      'retry-disturbed': { type: 'string', default: '2' },
      'persistent-session': { type: 'boolean', default: false },
      build: { type: 'boolean', default: false },
      dist: { type: 'string' },
      board: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) { process.stdout.write(HELP); process.exit(0); }
  const int = (name, min, max) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name}: expected an integer ${min}..${max}, got "${values[name]}"`);
    return v;
  };
  const oneOf = (name, allowed) => {
    if (!allowed.includes(values[name])) throw new Error(`--${name}: expected one of ${allowed.join(', ')}, got "${values[name]}"`);
    return values[name];
  };
  const brokers = values.broker === 'all' ? [...BROKERS]
    : [...new Set(values.broker.split(',').map((s) => s.trim()).filter(Boolean))];
  for (const b of brokers) if (!BROKERS.includes(b)) throw new Error(`--broker: unknown broker "${b}" (expected ${BROKERS.join(', ')} or all)`);
  if (brokers.length === 0) throw new Error('--broker: no broker given');
  const qos = [...new Set(values.qos.split(',').map((s) => s.trim()))].map(Number);
  for (const q of qos) if (q !== 0 && q !== 1) throw new Error(`--qos: expected 0 and/or 1, got "${values.qos}"`);
  const opts = {
    brokers, qos,
    rounds: int('rounds', 1, 100),
    warmup: int('warmup', 0, 10),
    publishers: int('publishers', 1, 1000),
    messages: int('messages', 1, 10_000_000),
    size: int('size', 6, 65536),
    window: int('window', 1, 65535),
    refill: int('refill', 1, 65535),
    batch: int('batch', 1, 10000),
    sub: oneOf('sub', ['same', 'separate']),
    parser: oneOf('parser', ['fast', 'mqtt-packet']),
    pin: oneOf('pin', ['none', 'split']),
    timeoutMs: int('timeout', 1, 3600) * 1000,
    drainMs: int('drain', 10, 60000),
    settleMs: Math.round(Number(values.settle) * 1000),
    persistentSession: values['persistent-session'],
    quietCpu: Number(values['quiet-cpu']),
    quietWaitMs: Math.round(Number(values['quiet-wait']) * 1000),
    disturbedCpu: Number(values['disturbed-cpu']),
    retryDisturbed: int('retry-disturbed', 0, 10),
    build: values.build,
    dist: values.dist ?? null,
    board: values.board === 'none' ? null : values.board ?? 'minimal-128mb',
    keepTmp: values['keep-tmp'],
    json: values.json,
  };
  if (!(opts.quietCpu >= 0 && opts.quietCpu <= 64)) throw new Error(`--quiet-cpu: expected a share of one core ≥ 0, got "${values['quiet-cpu']}"`);
  if (!(opts.disturbedCpu >= 0)) throw new Error(`--disturbed-cpu: expected a share of one core ≥ 0, got "${values['disturbed-cpu']}"`);
  if (!(opts.quietWaitMs >= 0 && opts.quietWaitMs <= 600000)) throw new Error(`--quiet-wait: expected seconds 0..600, got "${values['quiet-wait']}"`);
  if (!(opts.settleMs >= 0 && opts.settleMs <= 600000)) throw new Error(`--settle: expected seconds 0..600, got "${values.settle}"`);
  if (opts.publishers * opts.messages > 100_000_000) throw new Error('--publishers × --messages: at most 100,000,000');
  const ncpu = os.availableParallelism?.() ?? os.cpus().length;
  if (opts.pin === 'split') {
    if (ncpu < 2) throw new Error('--pin split needs at least 2 CPUs');
    opts.brokerCpus = '0';
    opts.loadgenCpus = ncpu === 2 ? '1' : `1-${ncpu - 1}`;
  }
  return opts;
}

const LOADGEN = join(REPO_ROOT, 'bench', 'broker', 'loadgen.mjs');

const log = (msg) => process.stderr.write(`${msg}\n`);
const fmtInt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const mib = (bytes) => (bytes === null || bytes === undefined ? null : bytes / 1048576);
const fmtMiB = (bytes) => (bytes === null || bytes === undefined ? '—' : `${mib(bytes).toFixed(1)} MiB`);
const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${Math.round(x * 100)}%`);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One load-generator process; messages from it queue up until taken. */
function startLoadgen(role, broker, qos, opts) {
  const cfg = {
    role, host: broker.host, port: broker.port, username: broker.username, password: broker.password,
    qos, publishers: opts.publishers, messages: opts.messages, payloadSize: opts.size,
    window: opts.window, refill: opts.refill, batch: opts.batch, parser: opts.parser, persistentSession: opts.persistentSession,
    drainMs: opts.drainMs, clientIdPrefix: broker.clientIdPrefix, topicPrefix: 'bench',
  };
  const child = spawnPinned(process.execPath, [LOADGEN, JSON.stringify(cfg)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: REPO_ROOT }, opts.loadgenCpus);
  const inbox = [];
  let waiter = null;
  const deliver = (msg) => {
    if (waiter) { const w = waiter; waiter = null; w(msg); } else inbox.push(msg);
  };
  child.on('message', deliver);
  child.once('exit', (code, sig) => deliver({ type: 'exit', role, code, sig }));
  child.on('error', (err) => deliver({ type: 'error', role, message: err.message }));
  return {
    role, child,
    send: (msg) => { if (child.connected) child.send(msg); },
    next: () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => { waiter = r; })),
  };
}

/** Multiplexes several load-generator processes into one stream of events. */
function mux(procs) {
  const queue = [];
  let waiter = null;
  for (const p of procs) {
    (async () => {
      for (;;) {
        const msg = await p.next();
        if (waiter) { const w = waiter; waiter = null; w(msg); } else queue.push(msg);
        if (msg.type === 'exit') return;
      }
    })();
  }
  return (timeoutMs) => {
    if (queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve) => {
      const t = setTimeout(() => { waiter = null; resolve({ type: 'timeout' }); }, Math.max(0, timeoutMs));
      waiter = (msg) => { clearTimeout(t); resolve(msg); };
    });
  };
}

/**
 * On a shared machine, wait (bounded) until the CPUs are quiet before a round: the
 * busy share over a 250 ms sample (brokers idle, no load generator yet) must fall
 * under --quiet-cpu of one core. Returns the share seen last and the time waited.
 */
async function waitQuiet(opts) {
  const t0 = Date.now();
  let share = null;
  if (opts.quietWaitMs <= 0) return { share, waitedMs: 0 };
  for (;;) {
    const a = machineCpuMs();
    await sleep(250);
    const b = machineCpuMs();
    if (!a || !b) return { share: null, waitedMs: Date.now() - t0 };
    share = (b.busyMs - a.busyMs) / 250;
    if (share <= opts.quietCpu || Date.now() - t0 >= opts.quietWaitMs) return { share, waitedMs: Date.now() - t0 };
  }
}

async function runRound(broker, qos, opts) {
  const quiet = await waitQuiet(opts);
  const procs = opts.sub === 'same'
    ? [startLoadgen('both', broker, qos, opts)]
    : [startLoadgen('sub', broker, qos, opts), startLoadgen('pub', broker, qos, opts)];
  const subProc = procs[0];
  const next = mux(procs);
  const result = {
    broker: broker.name, qos, ok: false, aborted: false, error: null,
    busyBeforeShare: quiet.share, quietWaitMs: quiet.waitedMs,
    quietTimedOut: quiet.share !== null && quiet.share > opts.quietCpu,
  };
  const cleanup = async () => {
    for (const p of procs) p.send({ cmd: 'exit' });
    const deadline = Date.now() + 3000;
    for (const p of procs) {
      while (p.child.exitCode === null && p.child.signalCode === null && Date.now() < deadline) await sleep(20);
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  };
  try {
    // 1. connect: subscriber subscribed, publishers connected
    const need = new Set(['sub', 'pub']);
    const readyDeadline = Date.now() + 20000;
    while (need.size) {
      const msg = await next(readyDeadline - Date.now());
      if (msg.type === 'ready') need.delete(msg.role);
      else if (msg.type === 'timeout') throw new Error('load generator not connected within 20 s');
      else if (msg.type === 'error') throw new Error(`${msg.role}: ${msg.message}`);
      else if (msg.type === 'exit') throw new Error(`load generator (${msg.role}) exited early (${msg.sig ?? `code ${msg.code}`})`);
    }
    // 2. go
    const brokerCpu0 = cpuMsOf(broker.pid);
    const machine0 = machineCpuMs();
    const wall0 = process.hrtime.bigint();
    for (const p of procs) p.send({ cmd: 'go' });
    const deadline = Date.now() + opts.timeoutMs;
    let pubdone = null;
    let subdone = null;
    // The subscriber can finish before the last PUBACKs reach the publishers: wait for both.
    while (!subdone || !pubdone) {
      const msg = await next(deadline - Date.now());
      if (msg.type === 'pubdone') { pubdone = msg; subProc.send({ cmd: 'pubdone' }); }
      else if (msg.type === 'subdone') subdone = msg;
      else if (msg.type === 'error') throw new Error(`${msg.role}: ${msg.message}`);
      else if (msg.type === 'exit') throw new Error(`load generator (${msg.role}) exited early (${msg.sig ?? `code ${msg.code}`})`);
      else if (msg.type === 'timeout') {
        result.aborted = true;
        if (!subdone) {
          subProc.send({ cmd: 'finish' });
          const late = await next(2000);
          if (late.type === 'subdone') subdone = late;
          if (late.type === 'pubdone') pubdone = late;
        }
        break;
      }
    }
    const brokerCpu1 = cpuMsOf(broker.pid);
    const machine1 = machineCpuMs();
    const wall1 = process.hrtime.bigint();
    Object.assign(result, summarise(pubdone, subdone, opts, qos));
    result.brokerCpuMs = brokerCpu0 !== null && brokerCpu1 !== null ? brokerCpu1 - brokerCpu0 : null;
    result.roundWallS = Number(wall1 - wall0) / 1e9;
    if (machine0 && machine1) {
      // CPU the rest of the machine used meanwhile (other processes, plus kernel work not
      // charged to either side): a busy neighbour makes the round less trustworthy.
      result.machineBusyMs = machine1.busyMs - machine0.busyMs;
      result.stealMs = machine1.stealMs - machine0.stealMs;
    }
    if (result.aborted) result.error = `aborted after ${opts.timeoutMs / 1000} s: ${pubdone ? 'publishers done' : 'publishers not done'}, subscriber ${subdone ? `had ${subdone.unique}/${subdone.expected}` : 'silent'}`;
    result.ok = !result.aborted && subdone !== null && pubdone !== null;
    // CPU over the active window (first publish → last delivery, or → end if longer)
    const active = result.activeS;
    if (active > 0) {
      result.loadgenCpuShare = result.loadgenCpuMs / 1000 / active;
      result.brokerCpuShare = result.brokerCpuMs === null ? null : result.brokerCpuMs / 1000 / active;
    }
    if (result.machineBusyMs !== undefined && result.brokerCpuMs !== null) {
      result.otherCpuMs = Math.max(0, result.machineBusyMs - result.brokerCpuMs - result.loadgenCpuMs);
      result.otherCpuShare = result.otherCpuMs / 1000 / result.roundWallS;
    }
  } catch (err) {
    result.error = err.message;
  } finally {
    await cleanup();
  }
  return result;
}

function summarise(pub, sub, opts, qos) {
  const r = {};
  if (sub) {
    Object.assign(r, {
      expected: sub.expected, received: sub.received, unique: sub.unique, missing: sub.missing,
      duplicates: sub.duplicates, reordered: sub.reordered, foreign: sub.foreign, grantedQos: sub.grantedQos,
      subReads: sub.chunks,
    });
  }
  if (pub) Object.assign(r, { sent: pub.sent, acked: pub.acked, badAcks: pub.badAcks, pubWrites: pub.writes });
  if (pub && sub && BigInt(sub.tLast) > 0n) {
    const t0 = BigInt(pub.t0);
    const tLast = BigInt(sub.tLast);
    r.elapsedS = Number(tLast - t0) / 1e9;
    r.msgsPerS = r.elapsedS > 0 ? sub.unique / r.elapsedS : null;
    r.publishS = Number(BigInt(pub.tEnd) - t0) / 1e9;
    r.activeS = Math.max(r.elapsedS, r.publishS);
    r.firstDeliveryMs = Number(BigInt(sub.tFirst) - t0) / 1e6;
  } else if (pub) {
    r.activeS = Number(BigInt(pub.tEnd) - BigInt(pub.t0)) / 1e9;
  }
  // Load generator CPU: one process (both roles) or publisher + subscriber processes.
  const cpuMs = (m) => (m ? (m.cpuUserUs + m.cpuSystemUs) / 1000 : 0);
  if (opts.sub === 'same') {
    const last = sub ?? pub;
    r.loadgenCpuMs = cpuMs(last);
    r.loadgenCpuUserMs = last ? last.cpuUserUs / 1000 : 0;
    r.loadgenElu = last && r.activeS > 0 ? Math.min(1, last.eluActiveMs / 1000 / r.activeS) : null;
  } else {
    r.loadgenCpuMs = cpuMs(pub) + cpuMs(sub);
    r.loadgenCpuUserMs = ((pub?.cpuUserUs ?? 0) + (sub?.cpuUserUs ?? 0)) / 1000;
    r.loadgenPubCpuMs = cpuMs(pub);
    r.loadgenSubCpuMs = cpuMs(sub);
    // the busier of the two event loops, over the whole active window
    r.loadgenElu = r.activeS > 0 ? Math.min(1, Math.max(pub?.eluActiveMs ?? 0, sub?.eluActiveMs ?? 0) / 1000 / r.activeS) : null;
  }
  // QoS 1 must deliver everything exactly once to a subscriber that stayed connected.
  // A lost message counts only in a round that ran to the end (publishers done, subscriber drained).
  r.complete = sub ? sub.missing === 0 : false;
  r.lost = sub && pub && !sub.aborted ? sub.missing : null;
  r.qosViolation = qos === 1 && r.lost > 0;
  return r;
}

function describeRound(tag, r) {
  if (!r.ok && r.msgsPerS === undefined) return `${tag} FAILED: ${r.error}`;
  const parts = [
    `${fmtInt(r.unique)}/${fmtInt(r.expected)} in ${r.elapsedS?.toFixed(3) ?? '—'} s = ${fmtInt(r.msgsPerS)} msg/s`,
  ];
  if (r.grantedQos !== undefined && r.grantedQos !== r.qos) parts.push(`SUBACK granted QoS ${r.grantedQos}, not ${r.qos}`);
  if (r.subReads) parts.push(`subscriber ${(r.received / r.subReads).toFixed(1)} msgs/read`);
  if (r.lost) parts.push(`lost ${fmtInt(r.lost)}`);
  if (r.duplicates) parts.push(`dup ${fmtInt(r.duplicates)}`);
  if (r.reordered) parts.push(`reordered ${fmtInt(r.reordered)}`);
  parts.push(`loadgen CPU ${fmtInt(r.loadgenCpuMs)} ms (${pct(r.loadgenCpuShare)} of a core, event loop ${pct(r.loadgenElu)} busy)`);
  parts.push(`broker CPU ${fmtInt(r.brokerCpuMs)} ms (${pct(r.brokerCpuShare)})`);
  if (r.otherCpuMs !== undefined) parts.push(`rest of machine ${fmtInt(r.otherCpuMs)} ms`);
  if (r.quietTimedOut) parts.push(`machine still ${pct(r.busyBeforeShare)} busy when the round started`);
  else if (r.quietWaitMs >= 1000) parts.push(`waited ${(r.quietWaitMs / 1000).toFixed(1)} s for a quiet machine`);
  let line = `${tag} ${parts.join(', ')}`;
  if (r.error) line += ` — ${r.error}`;
  return line;
}

function padTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')).join('\n');
}

function mosquittoVersion() {
  try {
    const out = execFileSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n')[0].trim();
  } catch (err) {
    return String(err.stdout ?? '').split('\n')[0].trim() || null;
  }
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  installExitHooks();
  const started = new Date();

  if (opts.dist) {
    if (opts.build) throw new Error('--build and --dist exclude each other');
    useOutpostDist(opts.dist);
  }
  if (opts.brokers.includes('outpostd') && !opts.dist) {
    const st = outpostdBuildState();
    if (opts.build || !st.built) {
      if (!opts.build) log('dist/ missing: outpostd needs a build (pass --build, or run `npm run build`)');
      else await buildOutpost(log);
    }
  }

  log(`bench:broker — ${opts.publishers} publishers × ${fmtInt(opts.messages)} msgs of ${opts.size} B → 1 subscriber on bench/#; `
    + `QoS ${opts.qos.join(',')}; ${opts.rounds} rounds (+${opts.warmup} warm-up); window ${opts.window}; `
    + `subscriber ${opts.sub === 'same' ? 'in the load generator process' : 'in its own process'}, ${opts.parser} parser; `
    + `pinning ${opts.pin === 'split' ? `brokers→CPU ${opts.brokerCpus}, load generator→CPU ${opts.loadgenCpus}` : 'none'}; `
    + `outpostd profile ${opts.board ?? 'none'}`);

  const board = opts.board ? await loadBoardProfile(opts.board) : null;
  if (board) log(`outpostd board profile ${board.name}: NODE_OPTIONS="${board.nodeOptions.join(' ')}" ${Object.entries(board.environment).map(([k, v]) => `${k}=${v}`).join(' ')}`);

  // Start every broker up front so rounds can alternate between them.
  const brokers = [];
  const startErrors = {};
  for (const name of opts.brokers) {
    try {
      log(`starting ${name}…`);
      const b = await startBroker(name, { cpus: opts.brokerCpus, keepTmp: opts.keepTmp, log, board });
      log(`  ${name} pid ${b.pid} on 127.0.0.1:${b.port}${b.username ? ' (auth on)' : ''}`);
      brokers.push(b);
    } catch (err) {
      startErrors[name] = err.message;
      log(`  ${name} did not start: ${err.message}`);
    }
  }
  const data = {};
  for (const name of opts.brokers) data[name] = { rounds: { 0: [], 1: [] }, warmup: { 0: [], 1: [] }, mem: {}, startError: startErrors[name] ?? null };

  try {
    if (brokers.length) {
      await sleep(opts.settleMs);
      for (const b of brokers) data[b.name].mem.idle = memOf(b.pid);
      for (const b of brokers) log(`  ${b.name} idle RSS ${fmtMiB(data[b.name].mem.idle.rss)}`);

      for (let w = 0; w < opts.warmup; w++) {
        for (const qos of opts.qos) {
          for (const b of brokers) {
            const r = await runRound(b, qos, opts);
            data[b.name].warmup[qos].push(r);
            log(describeRound(`[warm-up ${b.name} QoS ${qos}]`, r));
          }
        }
      }
      // Measured rounds: alternate brokers (rotating who goes first) so drift hits all alike.
      for (let round = 0; round < opts.rounds; round++) {
        for (const qos of opts.qos) {
          const order = brokers.map((_, i) => brokers[(i + round) % brokers.length]);
          for (const b of order) {
            if (b.isDead()) {
              data[b.name].rounds[qos].push({ broker: b.name, qos, ok: false, error: `broker exited (${b.exitedHow()})` });
              continue;
            }
            const tag = `[${b.name} QoS ${qos} round ${round + 1}/${opts.rounds}]`;
            let r;
            for (let attempt = 0; ; attempt++) { // bounded by --retry-disturbed
              r = await runRound(b, qos, opts);
              r.disturbed = r.otherCpuShare !== undefined && r.otherCpuShare > opts.disturbedCpu;
              r.reruns = attempt;
              if (!r.disturbed || attempt >= opts.retryDisturbed) break;
              log(`${describeRound(tag, r)} — disturbed (rest of machine ${pct(r.otherCpuShare)} of a core), running it again`);
            }
            data[b.name].rounds[qos].push(r);
            log(`${describeRound(tag, r)}${r.disturbed ? ' — disturbed, kept' : ''}`);
          }
        }
      }
      for (const b of brokers) data[b.name].mem.after = memOf(b.pid);
    }
  } finally {
    for (const b of brokers) {
      const alive = !b.isDead();
      const how = await b.stop();
      if (!alive) data[b.name].exitedDuringRun = b.exitedHow();
      else if (how === 'SIGKILL') log(`  ${b.name} ignored SIGTERM for 5 s and was killed`);
      if (!alive && b.logTail()) data[b.name].logTail = b.logTail();
    }
  }

  // ------------------------------------------------------------ report
  const report = {
    bench: 'broker',
    startedAt: started.toISOString(),
    machine: {
      cpus: os.availableParallelism?.() ?? os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null,
      node: process.version, mosquitto: opts.brokers.includes('mosquitto') ? mosquittoVersion() : undefined,
    },
    config: { ...opts, json: undefined },
    targets: TARGETS,
    brokers: {},
    summary: [],
  };
  for (const name of opts.brokers) {
    const d = data[name];
    const entry = {
      startError: d.startError,
      exitedDuringRun: d.exitedDuringRun ?? null,
      rssIdleBytes: d.mem.idle?.rss ?? null,
      rssAfterBytes: d.mem.after?.rss ?? null,
      rssPeakBytes: d.mem.after?.hwm ?? d.mem.idle?.hwm ?? null,
      qos: {},
    };
    for (const qos of opts.qos) {
      const rounds = d.rounds[qos];
      const good = rounds.filter((r) => r.ok && r.msgsPerS);
      const rates = good.map((r) => r.msgsPerS);
      entry.qos[qos] = {
        medianMsgsPerS: median(rates),
        minMsgsPerS: rates.length ? Math.min(...rates) : null,
        maxMsgsPerS: rates.length ? Math.max(...rates) : null,
        roundsOk: good.length,
        roundsFailed: rounds.length - good.length,
        lostTotal: rounds.reduce((a, r) => a + (r.lost ?? 0), 0),
        duplicatesTotal: rounds.reduce((a, r) => a + (r.duplicates ?? 0), 0),
        qosViolations: rounds.filter((r) => r.qosViolation).length,
        reruns: rounds.reduce((a, r) => a + (r.reruns ?? 0), 0),
        disturbedKept: rounds.filter((r) => r.disturbed).length,
        medianLoadgenCpuShare: median(good.map((r) => r.loadgenCpuShare).filter((x) => x != null)),
        medianLoadgenElu: median(good.map((r) => r.loadgenElu).filter((x) => x != null)),
        medianBrokerCpuShare: median(good.map((r) => r.brokerCpuShare).filter((x) => x != null)),
        rounds,
        warmup: d.warmup[qos],
      };
    }
    report.brokers[name] = entry;
  }
  const subject = opts.brokers.includes('outpostd') ? 'outpostd' : opts.brokers.find((b) => b !== 'mosquitto');
  const hasRef = opts.brokers.includes('mosquitto');
  for (const qos of opts.qos) {
    const line = { qos, subject: subject ?? null, reference: hasRef ? 'mosquitto' : null };
    const s = subject ? report.brokers[subject].qos[qos].medianMsgsPerS : null;
    const m = hasRef ? report.brokers.mosquitto.qos[qos].medianMsgsPerS : null;
    line.subjectMsgsPerS = s;
    line.mosquittoMsgsPerS = m;
    line.ratio = s && m ? s / m : null;
    line.target = subject === 'outpostd' ? TARGETS[`qos${qos}`] : null;
    line.verdict = line.target === null ? null : line.ratio === null ? 'NOT MEASURED' : line.ratio >= line.target ? 'PASS' : 'MISS';
    report.summary.push(line);
  }
  if (opts.brokers.includes('outpostd')) {
    const o = report.brokers.outpostd;
    report.memoryVerdict = {
      idle: o.rssIdleBytes === null ? 'NOT MEASURED' : mib(o.rssIdleBytes) <= TARGETS.rssIdleMiB ? 'PASS' : 'MISS',
      after: o.rssAfterBytes === null ? 'NOT MEASURED' : mib(o.rssAfterBytes) <= TARGETS.rssAfterMiB ? 'PASS' : 'MISS',
    };
  }

  const couldNotMeasure = Object.keys(startErrors).length > 0
    || opts.brokers.some((n) => opts.qos.every((q) => report.brokers[n].qos[q].roundsOk === 0));

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    printTables(report, opts, subject, hasRef);
  }
  return couldNotMeasure ? 1 : 0;
}

function printTables(report, opts, subject, hasRef) {
  const out = [];
  const rows = [['broker', 'QoS', 'msg/s (median)', 'min', 'max', 'rounds ok', 'lost', 'dup', 'loadgen CPU', 'loadgen loop', 'broker CPU']];
  for (const [name, e] of Object.entries(report.brokers)) {
    if (e.startError) { rows.push([name, '—', 'did not start', '', '', '', '', '', '', '', '']); continue; }
    for (const qos of opts.qos) {
      const q = e.qos[qos];
      rows.push([name, qos, fmtInt(q.medianMsgsPerS), fmtInt(q.minMsgsPerS), fmtInt(q.maxMsgsPerS),
        `${q.roundsOk}/${q.roundsOk + q.roundsFailed}`, fmtInt(q.lostTotal), fmtInt(q.duplicatesTotal),
        pct(q.medianLoadgenCpuShare), pct(q.medianLoadgenElu), pct(q.medianBrokerCpuShare)]);
    }
  }
  out.push(padTable(rows));
  out.push('');
  const mrows = [['broker', 'RSS idle', 'RSS after', 'peak RSS']];
  for (const [name, e] of Object.entries(report.brokers)) {
    mrows.push([name, fmtMiB(e.rssIdleBytes), fmtMiB(e.rssAfterBytes), fmtMiB(e.rssPeakBytes)]);
  }
  out.push(padTable(mrows));
  out.push('');
  for (const line of report.summary) {
    const parts = [];
    if (line.subject) parts.push(`${line.subject} ${fmtInt(line.subjectMsgsPerS)} msg/s`);
    if (hasRef) parts.push(`mosquitto ${fmtInt(line.mosquittoMsgsPerS)} msg/s`);
    let s = `QoS ${line.qos}: ${parts.join(', ')}`;
    if (line.subject && hasRef) {
      s += `, ratio ${line.ratio === null ? '—' : line.ratio.toFixed(2)}`;
      s += line.target === null ? ' (reference, no target)' : ` (target ≥ ${line.target}: ${line.verdict})`;
    }
    out.push(s);
  }
  if (report.memoryVerdict) {
    const o = report.brokers.outpostd;
    out.push(`RSS: outpostd idle ${fmtMiB(o.rssIdleBytes)} (target ≤ ${TARGETS.rssIdleMiB} MiB: ${report.memoryVerdict.idle}), `
      + `after the run ${fmtMiB(o.rssAfterBytes)} (target ≤ ${TARGETS.rssAfterMiB} MiB: ${report.memoryVerdict.after})`
      + (report.brokers.mosquitto ? `; mosquitto ${fmtMiB(report.brokers.mosquitto.rssIdleBytes)} / ${fmtMiB(report.brokers.mosquitto.rssAfterBytes)}` : ''));
  }
  for (const [name, e] of Object.entries(report.brokers)) {
    if (e.startError) out.push(`${name} did not start: ${e.startError.split('\n')[0]}`);
    if (e.exitedDuringRun) out.push(`${name} exited during the run (${e.exitedDuringRun})`);
    for (const qos of opts.qos) {
      const q = e.qos[qos];
      if (q.reruns || q.disturbedKept) {
        out.push(`${name} QoS ${qos}: ${q.reruns} round(s) re-run because the rest of the machine was busy`
          + (q.disturbedKept ? `; ${q.disturbedKept} kept although still disturbed — treat these figures with care` : ''));
      }
      if (q.qosViolations) out.push(`${name} QoS 1: ${q.qosViolations} round(s) lost messages — a delivery bug, not a speed figure`);
      for (const r of q.rounds) if (!r.ok) out.push(`${name} QoS ${qos}: round failed: ${r.error}`);
    }
  }
  // The load generator was the limit if its event loop was saturated while the broker had CPU to spare.
  for (const [name, e] of Object.entries(report.brokers)) {
    for (const qos of opts.qos) {
      const q = e.qos[qos];
      if (!q || q.medianLoadgenElu === null || q.medianLoadgenElu === undefined) continue;
      if (q.medianLoadgenElu > 0.9 && (q.medianBrokerCpuShare ?? 1) < 0.9) {
        out.push(`note: ${name} QoS ${qos}: the load generator's event loop was ${pct(q.medianLoadgenElu)} busy while the broker used ${pct(q.medianBrokerCpuShare)} of a core — the load generator may have been the limit`);
      }
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then((code) => { process.exitCode = code; }, (err) => {
  log(`bench:broker: ${err.message}`);
  killAll('SIGKILL');
  process.exitCode = 1;
});
