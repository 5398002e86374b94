// Objects bench: 4 KiB PUT and GET ops/s at 16 connections and 64 MiB PUT and GET MB/s, outpostd
// against s3rver (npm) started here, with the same client; large transfers against the raw
// sequential disk throughput measured on the same file size; RSS growth over a 1 GiB PUT and GET;
// the first ListObjectsV2 page in a bucket of 1,000,000 keys. Runs dist/bin/outpostd.js (npm run
// build first). Prints figures and PASS/MISS against the targets; exits 0 whatever the figures are.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { cpuMsOf, cpuTicks, stolenPercent, freePort, memOf, stopChild, track, installExitHooks, waitForIdle, waitForPort } from '../lib/proc.mjs';
import { spawnOutpostd } from '../lib/outpostd.mjs';
import { loadBoardProfile } from '../lib/brokers.mjs';
import { benchArgs } from '../lib/args.mjs';
import { S3BenchClient, streamedBody } from './s3-client.mjs';

const options = benchArgs(`usage: node bench/objects/run.mjs [options]

4 KiB PUT and GET ops/s, 64 MiB PUT and GET MB/s, RSS over a 1 GiB PUT and GET and the first
ListObjectsV2 page of 1,000,000 keys, outpostd against s3rver with the same client (README.md).`, {
  seconds: { type: 'string', default: '5', help: 'seconds of each small round, measured' },
  // a server in JavaScript (outpostd, s3rver) compiles its hot code in its first seconds, which is not what it does for months
  warmup: { type: 'string', default: '5', help: 'seconds of each small round\'s operations first, not counted' },
  connections: { type: 'string', default: '16', help: 'concurrent connections of the small rounds' },
  'large-mib': { type: 'string', default: '64', help: 'size of the large objects, MiB' },
  'large-rounds': { type: 'string', default: '2', help: 'large PUTs and GETs per server, timed together' },
  'large-warmup': { type: 'string', default: '1', help: 'large PUTs and GETs per server before those, timed apart (shown as "first")' },
  'rss-mib': { type: 'string', default: '1024', help: 'size of the object whose PUT and GET RSS growth is measured, MiB; 0: not measured' },
  'list-keys': { type: 'string', default: '1000000', help: 'keys in the bucket listed; 0: not measured' },
  servers: { type: 'string', default: 'outpostd,s3rver', help: 'servers to measure, comma-separated' },
  // the host's speed drifts within a minute here (s3rver's PUT rate moved 760-1,900 between runs):
  // rounds of the two servers in turn put the drift on both sides of the ratio
  pairs: { type: 'string', default: '4', help: 'pairs of small rounds with outpostd and s3rver in turn (order alternating), for the ratios; 0: none' },
  'pair-seconds': { type: 'string', default: '3', help: 'seconds of each paired round' },
  json: { type: 'boolean', default: false, help: 'print one JSON document instead of the tables' },
  dist: { type: 'string', help: 'another build of outpostd to measure (e.g. an earlier commit\'s dist/)' },
  'node-args': { type: 'string', default: '', help: 'node flags for outpostd, space-separated (e.g. "--max-semi-space-size=1")' },
  board: { type: 'string', default: 'minimal-128mb', help: 'outpostd as board profile firmware-configs/boards/NAME.yaml runs it; "none": bare' },
});
const SECONDS = Number(options.seconds);
const WARMUP_SECONDS = Number(options.warmup);
const CONNECTIONS = Number(options.connections);
const LARGE = Number(options['large-mib']) * 1024 * 1024;
const LARGE_ROUNDS = Number(options['large-rounds']);
const LARGE_WARMUP = Number(options['large-warmup']);
const RSS_BYTES = Number(options['rss-mib']) * 1024 * 1024;
const LIST_KEYS = Number(options['list-keys']);
const SERVERS = options.servers.split(',');
const PAIRS = SERVERS.includes('outpostd') && SERVERS.includes('s3rver') ? Number(options.pairs) : 0;
const PAIR_SECONDS = Number(options['pair-seconds']);
const BOARD = options.board === 'none' ? null : await loadBoardProfile(options.board);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (line) => process.stderr.write(`${line}\n`);
const SMALL = randomBytes(4096);
const CHUNK = randomBytes(1024 * 1024);
const READ_BUFFER = Buffer.alloc(CHUNK.length);
installExitHooks();

async function startOutpostd(dir) {
  const daemon = await spawnOutpostd({ dir, ...(options.dist ? { dist: options.dist } : {}), board: BOARD, nodeArgs: options['node-args'].split(' ').filter(Boolean), config: {
    log: { level: 'warn', format: 'json' },
    mqtt: { host: '127.0.0.1', port: 0 }, http: { port: 0 }, s3: { host: '127.0.0.1', port: 0 },
  } });
  // the key the daemon keeps for its CLI: full access
  const endpoint = await daemon.admin('/v1/s3/endpoint');
  return { name: 'outpostd', pid: daemon.pid, child: daemon.child, dir, port: daemon.port('s3'), accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey };
}

async function startS3rver(dir) {
  const port = await freePort();
  const child = track(spawn(process.execPath, [join(ROOT, 'bench', 'objects', 's3rver-child.mjs'), String(port), dir], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT }));
  await waitForPort(port);
  return { name: 's3rver', pid: child.pid, child, dir, port, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
}

/**
 * `connections` loops doing `operation(worker, i)` for `seconds`; ops/s of the 2xx answers, and the
 * server's CPU milliseconds per operation (a figure that holds on a busy machine), counted until
 * the server is idle again: what it does after answering (outpostd's share copies of small
 * objects, at most 1,024 behind) is the round's too, and not the next round's.
 */
/**
 * The quiet that ends a round's work: the share copies of small PUTs follow their answers, and the
 * file share looks at each path a copy changed once it has settled (`s3.share.settleMs`, 2 s), so
 * half a second without CPU is not the end of a PUT round's work.
 */
const ROUND_QUIET_MS = 2500;

async function closedLoop(pid, operation, seconds = SECONDS) {
  const cpuBefore = cpuMsOf(pid);
  const ticksBefore = cpuTicks();
  const until = Date.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, async (_, worker) => {
    for (let i = 0; Date.now() < until; i++) {
      const { status } = await operation(worker, i);
      if (status >= 200 && status < 300) ok++;
      else failed++;
    }
  }));
  const opsPerSecond = Math.round(ok / ((Date.now() - started) / 1000));
  const stolen = stolenPercent(ticksBefore, cpuTicks());
  await waitForIdle(pid, { quietMs: ROUND_QUIET_MS, maxCpuMs: 20 });
  return { opsPerSecond, cpuMsPerOp: Math.round(((cpuMsOf(pid) - cpuBefore) / Math.max(1, ok)) * 100) / 100, failed, stolen };
}

const writeLarge = (size) => streamedBody(size, CHUNK);

/**
 * `warmup` × a PUT and a GET of `size` bytes, timed apart, then `rounds` × the same, each right after
 * the same transfer by a plain program (rawWrite, rawRead) in the server's directory: the raw figure
 * is taken on the same file system at the same moment, so the load of a shared machine weighs on
 * both alike. The first large transfers of either server run code the small rounds did not warm
 * (outpostd: its first 64 MiB PUT took twice the time of the next ones, 321-333 against 158-166 ms),
 * which the small rounds' warm-up leaves out of their figures too.
 */
async function largeTransfers(client, pid, dir, size, rounds, warmup) {
  const ms = { put: 0, get: 0, rawWrite: 0, rawRead: 0, coldPut: 0, coldGet: 0 };
  const cpuMs = { put: 0, get: 0 };
  const timed = async (name, work) => {
    const started = process.hrtime.bigint();
    const cpuBefore = name in cpuMs ? cpuMsOf(pid) : 0;
    const result = await work();
    ms[name] += Number(process.hrtime.bigint() - started) / 1e6;
    if (name in cpuMs) cpuMs[name] += cpuMsOf(pid) - cpuBefore;
    return result;
  };
  const put = async (key) => {
    const { status } = await client.request('PUT', key, { body: writeLarge(size), length: size });
    if (status !== 200) throw new Error(`large PUT answered ${status}`);
  };
  const get = async (key) => {
    const { bytes } = await client.download(key);
    if (bytes !== size) throw new Error(`large GET returned ${bytes} bytes`);
  };
  for (let round = 0; round < warmup; round++) {
    evictLargeFiles(dir, size);
    await timed('coldPut', () => put(`/bench/large-warm-${round}`));
    evictLargeFiles(dir, size);
    await timed('coldGet', () => get(`/bench/large-warm-${round}`));
  }
  for (let round = 0; round < rounds; round++) {
    const file = join(dir, `raw-${round}`);
    evictLargeFiles(dir, size);
    await timed('rawWrite', () => rawWrite(file, size));
    evictLargeFiles(dir, size);
    await timed('put', () => put(`/bench/large-${round}`));
    evictLargeFiles(dir, size);
    await timed('rawRead', () => rawRead(file));
    evictLargeFiles(dir, size);
    await timed('get', () => get(`/bench/large-${round}`));
    rmSync(file);
  }
  const mbps = (name, count = rounds) => (count > 0 ? Math.round((size * count) / 1e6 / (ms[name] / 1000)) : undefined);
  const perMiB = (name) => Math.round((cpuMs[name] / ((size * rounds) / 1048576)) * 100) / 100;
  return { md5MBps: md5MBps(size), putMBpsCold: mbps('coldPut', warmup), getMBpsCold: mbps('coldGet', warmup), putMBps: mbps('put'), getMBps: mbps('get'), rawWriteMBps: mbps('rawWrite'), rawReadMBps: mbps('rawRead'), putCpuMsPerMiB: perMiB('put'), getCpuMsPerMiB: perMiB('get') };
}

/**
 * MB/s of an MD5 over `size` bytes on one core of this machine: an object's ETag is the MD5 of its
 * content, taken as the body arrives, so no PUT outruns it (its three best of five runs).
 */
function md5MBps(size) {
  const times = [];
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint();
    const hash = createHash('md5');
    for (let hashed = 0; hashed < size; hashed += CHUNK.length) hash.update(CHUNK.subarray(0, Math.min(CHUNK.length, size - hashed)));
    hash.digest();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const best = times.sort((a, b) => a - b).slice(0, 3);
  return Math.round(size / 1e6 / (best.reduce((sum, ms) => sum + ms, 0) / best.length / 1000));
}

/**
 * CPU µs (mostly the kernel's) of creating a 4 KiB file as a share copy does (a new file written,
 * closed and renamed into place), 500 times in a directory of its own under `dir`: on this
 * machine's ext4 it is ~30-100 µs on a rested file system and up to ~700 µs within a few minutes of
 * mass deletions (ext4 passes over recently freed inodes), e.g. right after another bench run
 * deleted its files. Every small PUT of both servers creates such a file: a round's ops/s follow it.
 */
function fileCreationUs(dir) {
  const files = join(dir, 'file-creation');
  mkdirSync(files);
  const count = 500;
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const fd = openSync(join(files, `${i}.tmp`), 'wx');
    writeSync(fd, SMALL);
    closeSync(fd);
    renameSync(join(files, `${i}.tmp`), join(files, String(i)));
  }
  const used = process.cpuUsage(before);
  return Math.round((used.user + used.system) / count);
}

/** What the disk gives a plain program: `size` bytes written in 1 MiB chunks, then fsynced. */
function rawWrite(file, size) {
  const fd = openSync(file, 'w');
  for (let written = 0; written < size; written += CHUNK.length) writeSync(fd, CHUNK, 0, Math.min(CHUNK.length, size - written));
  fsyncSync(fd);
  closeSync(fd);
}

/**
 * Drops the page cache of every file of at least `size` bytes under `dir` (the raw file and the
 * object just PUT, whichever server keeps it where), so that reads come from the disk: a 64 MiB
 * object is not in the page cache of a 128 MB board either, and a read from the cache measures
 * memcpy, not the disk. GNU dd's iflag=nocache with count=0 is posix_fadvise(DONTNEED) on the
 * whole file; the pages are clean (both writers fsynced), so they go. Before a write, the pages
 * freed are the ones it writes into: in a virtual machine, memory the page cache has not used
 * lately costs a host fault on first write (10× the CPU of the copy, README.md), so each writer
 * gets pages alike.
 */
function evictLargeFiles(dir, size) {
  for (const name of readdirSync(dir, { recursive: true })) {
    const path = join(dir, name);
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats?.isFile() && stats.size >= size) execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
  }
}

/** The file read back in 1 MiB chunks, from the disk (evictLargeFiles), as the GET after it reads. */
function rawRead(file) {
  const fd = openSync(file, 'r');
  while (readSync(fd, READ_BUFFER, 0, READ_BUFFER.length, null) > 0);
  closeSync(fd);
}

/** Peak RSS growth of `pid` while `work` runs, sampled every 20 ms. */
async function rssGrowth(pid, work) {
  const before = memOf(pid).rss;
  let peak = before;
  const timer = setInterval(() => { peak = Math.max(peak, memOf(pid).rss ?? 0); }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.round((peak - before) / 1024 / 1024 * 10) / 10;
}

async function measure(server) {
  const client = new S3BenchClient({ port: server.port, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, connections: CONNECTIONS });
  const created = await client.request('PUT', '/bench');
  if (created.status !== 200 && created.status !== 409) throw new Error(`${server.name}: CreateBucket answered ${created.status}`);
  const fileCreationCpuUs = fileCreationUs(server.dir);
  log(`${server.name}: 4 KiB PUT for ${WARMUP_SECONDS} s (warm-up) and ${SECONDS} s at ${CONNECTIONS} connections`);
  const putRound = (prefix) => (worker, i) => client.request('PUT', `/bench/${prefix}/${worker}-${i}`, { body: SMALL });
  const putCold = WARMUP_SECONDS > 0 ? await closedLoop(server.pid, putRound('warm'), WARMUP_SECONDS) : undefined;
  const written = new Array(CONNECTIONS).fill(0);
  const put = await closedLoop(server.pid, (worker, i) => {
    written[worker] = i + 1;
    return putRound('small')(worker, i);
  });
  log(`${server.name}: 4 KiB GET for ${WARMUP_SECONDS} s (warm-up) and ${SECONDS} s`);
  const getRound = (worker, i) => client.request('GET', `/bench/small/${worker}-${i % Math.max(1, written[worker] - 1)}`);
  const getCold = WARMUP_SECONDS > 0 ? await closedLoop(server.pid, getRound, WARMUP_SECONDS) : undefined;
  const get = await closedLoop(server.pid, getRound);
  // the high-water mark of the small rounds: 16 connections of writes, their share copies, reads
  const smallPeakRssMiB = Math.round(Number(/VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]) / 1024 * 10) / 10;
  log(`${server.name}: ${LARGE / 1048576} MiB PUT and GET × ${LARGE_WARMUP} (warm-up) and × ${LARGE_ROUNDS}`);
  const large = await largeTransfers(client, server.pid, server.dir, LARGE, LARGE_ROUNDS, LARGE_WARMUP);
  const result = {
    putOps: put.opsPerSecond, getOps: get.opsPerSecond, putCpuMs: put.cpuMsPerOp, getCpuMs: get.cpuMsPerOp,
    putOpsCold: putCold?.opsPerSecond, getOpsCold: getCold?.opsPerSecond, putStolen: put.stolen, getStolen: get.stolen,
    failed: put.failed + get.failed + (putCold?.failed ?? 0) + (getCold?.failed ?? 0), smallPeakRssMiB, fileCreationCpuUs, ...large,
  };
  client.close();
  return result;
}

async function measureRss(server) {
  const client = new S3BenchClient({ port: server.port, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, connections: 1 });
  log(`${server.name}: RSS over a ${RSS_BYTES / 1048576} MiB PUT and GET`);
  const putMiB = await rssGrowth(server.pid, () => client.request('PUT', '/bench/huge', { body: writeLarge(RSS_BYTES), length: RSS_BYTES }));
  const getMiB = await rssGrowth(server.pid, () => client.download('/bench/huge'));
  await client.request('DELETE', '/bench/huge');
  client.close();
  return { putMiB, getMiB };
}

/**
 * Both servers up at once, warmed up, then PAIRS pairs of short PUT rounds and as many of GET
 * rounds, the two servers in turn (outpostd first in even pairs, s3rver first in odd ones): each
 * pair's ratio compares rounds a few seconds apart. The median of the pairs' ratios, and each pair's.
 */
async function pairedRatios(work) {
  const servers = [await startOutpostd(mkdtempSync(join(work, 'paired-outpostd-'))), await startS3rver(mkdtempSync(join(work, 'paired-s3rver-')))];
  const clients = servers.map((server) => new S3BenchClient({ port: server.port, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, connections: CONNECTIONS }));
  const written = servers.map(() => new Array(CONNECTIONS).fill(0));
  const put = (index, prefix) => (worker, i) => {
    if (prefix === 'small') written[index][worker] = i + 1;
    return clients[index].request('PUT', `/bench/${prefix}/${worker}-${i}`, { body: SMALL });
  };
  const get = (index) => (worker, i) => clients[index].request('GET', `/bench/small/${worker}-${i % Math.max(1, written[index][worker] - 1)}`);
  const figures = { put: [], get: [] };
  try {
    for (const client of clients) await client.request('PUT', '/bench');
    log(`paired rounds: warm-up of ${WARMUP_SECONDS} s each, then ${PAIRS} pairs of ${PAIR_SECONDS} s 4 KiB PUT rounds and of GET rounds, in turn`);
    for (const [index, server] of servers.entries()) if (WARMUP_SECONDS > 0) await closedLoop(server.pid, put(index, 'warm'), WARMUP_SECONDS);
    for (const op of ['put', 'get']) {
      // the GET path's code is compiled in a round of its own first
      if (op === 'get') for (const [index, server] of servers.entries()) await closedLoop(server.pid, get(index), PAIR_SECONDS);
      for (let pair = 0; pair < PAIRS; pair++) {
        const rates = [0, 0];
        for (const index of pair % 2 === 0 ? [0, 1] : [1, 0]) {
          const round = await closedLoop(servers[index].pid, op === 'put' ? put(index, 'small') : get(index), PAIR_SECONDS);
          rates[index] = round.opsPerSecond;
        }
        figures[op].push({ outpostd: rates[0], s3rver: rates[1], ratio: Math.round((rates[0] / rates[1]) * 100) / 100 });
      }
    }
  } finally {
    for (const client of clients) client.close();
    for (const server of servers) await stopChild(server.child);
  }
  const median = (pairs) => {
    const ratios = pairs.map((pair) => pair.ratio).sort((a, b) => a - b);
    const middle = ratios.length >> 1;
    return ratios.length % 2 ? ratios[middle] : Math.round(((ratios[middle - 1] + ratios[middle]) / 2) * 100) / 100;
  };
  return { put: { median: median(figures.put), pairs: figures.put }, get: { median: median(figures.get), pairs: figures.get } };
}

/** Fills a bucket's key index directly (the listing reads only the index), restarts, times the first page. */
async function measureList(server) {
  await stopChild(server.child);
  log(`outpostd: ${LIST_KEYS} keys into the index of bucket "million"`);
  const db = new Database(join(server.dir, 'data', 'outpost.db'));
  db.prepare('INSERT OR IGNORE INTO object_buckets (name, created_at) VALUES (?, ?)').run('million', Date.now());
  const insert = db.prepare(`INSERT OR REPLACE INTO objects (bucket, key, size, etag, content_type, metadata, last_modified, blob)
    VALUES ('million', ?, 4096, 'd41d8cd98f00b204e9800998ecf8427e', 'binary/octet-stream', NULL, ?, 'absent')`);
  db.transaction(() => {
    for (let i = 0; i < LIST_KEYS; i++) insert.run(`camera-${String(i % 100).padStart(2, '0')}/2026/${String(i).padStart(8, '0')}.jpg`, Date.now());
  })();
  db.close();
  const restarted = await startOutpostd(server.dir);
  const client = new S3BenchClient({ port: restarted.port, accessKeyId: restarted.accessKeyId, secretAccessKey: restarted.secretAccessKey, connections: 1 });
  // the daemon loads its S3 operations on the first request: not part of listing
  await client.request('HEAD', '/million');
  const times = [];
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint();
    const page = await client.request('GET', '/million', { query: 'list-type=2', keep: true });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    if ((page.body.match(/<Key>/g) ?? []).length !== 1000) throw new Error('the first page does not hold 1,000 keys');
  }
  client.close();
  return { ...restarted, firstMs: Math.round(times[0] * 10) / 10, medianMs: Math.round(times.sort((a, b) => a - b)[2] * 10) / 10 };
}

const verdict = (ok) => (ok ? 'PASS' : 'MISS');
const results = { board: BOARD?.name ?? 'none' };
const work = mkdtempSync(join(tmpdir(), 'outpost-bench-objects-'));
try {
  if (PAIRS > 0) results.paired = await pairedRatios(work);
  for (const name of SERVERS) {
    const dir = mkdtempSync(join(work, `${name}-`));
    let server = name === 'outpostd' ? await startOutpostd(dir) : await startS3rver(dir);
    results[name] = await measure(server);
    if (name === 'outpostd') {
      if (RSS_BYTES > 0) results.outpostdRss = await measureRss(server);
      if (LIST_KEYS > 0) {
        const listed = await measureList(server);
        server = listed;
        results.list = { keys: LIST_KEYS, firstMs: listed.firstMs, medianMs: listed.medianMs };
      }
    }
    await stopChild(server.child);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (options.json) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const o = results.outpostd;
  const s = results.s3rver;
  const lines = ['', `objects bench: ${CONNECTIONS} connections, ${SECONDS} s per small round after ${WARMUP_SECONDS} s of warm-up, ${LARGE / 1048576} MiB × ${LARGE_ROUNDS} large after ${LARGE_WARMUP} of warm-up, outpostd profile ${BOARD?.name ?? 'none'}`, ''];
  lines.push('| | outpostd | s3rver | ratio |', '| --- | --- | --- | --- |');
  const row = (label, a, b, unit) => lines.push(`| ${label} | ${a ?? '-'} ${unit} | ${b ?? '-'} ${unit} | ${a && b ? `${(a / b).toFixed(1)}×` : '-'} |`);
  row('4 KiB PUT', o?.putOps, s?.putOps, 'ops/s');
  row('4 KiB GET', o?.getOps, s?.getOps, 'ops/s');
  if (WARMUP_SECONDS > 0) {
    row(`4 KiB PUT, first ${WARMUP_SECONDS} s (warm-up)`, o?.putOpsCold, s?.putOpsCold, 'ops/s');
    row(`4 KiB GET, first ${WARMUP_SECONDS} s (warm-up)`, o?.getOpsCold, s?.getOpsCold, 'ops/s');
  }
  lines.push(`| 4 KiB PUT / GET, CPU stolen by the host | ${o?.putStolen ?? '-'} / ${o?.getStolen ?? '-'} % | ${s?.putStolen ?? '-'} / ${s?.getStolen ?? '-'} % | |`);
  lines.push(`| 4 KiB PUT, server CPU | ${o?.putCpuMs ?? '-'} ms/op | ${s?.putCpuMs ?? '-'} ms/op | |`, `| 4 KiB GET, server CPU | ${o?.getCpuMs ?? '-'} ms/op | ${s?.getCpuMs ?? '-'} ms/op | |`);
  row(`${LARGE / 1048576} MiB PUT`, o?.putMBps, s?.putMBps, 'MB/s');
  row(`${LARGE / 1048576} MiB GET`, o?.getMBps, s?.getMBps, 'MB/s');
  if (LARGE_WARMUP > 0) {
    row(`${LARGE / 1048576} MiB PUT, first ${LARGE_WARMUP} (warm-up)`, o?.putMBpsCold, s?.putMBpsCold, 'MB/s');
    row(`${LARGE / 1048576} MiB GET, first ${LARGE_WARMUP} (warm-up)`, o?.getMBpsCold, s?.getMBpsCold, 'MB/s');
  }
  lines.push(`| ${LARGE / 1048576} MiB PUT, server CPU | ${o?.putCpuMsPerMiB ?? '-'} ms/MiB | ${s?.putCpuMsPerMiB ?? '-'} ms/MiB | |`, `| ${LARGE / 1048576} MiB GET, server CPU | ${o?.getCpuMsPerMiB ?? '-'} ms/MiB | ${s?.getCpuMsPerMiB ?? '-'} ms/MiB | |`);
  const p = results.paired;
  if (p) {
    const show = (pairs) => pairs.map((pair) => `${pair.outpostd}/${pair.s3rver} = ${pair.ratio}×`).join(', ');
    lines.push('', `paired ${PAIR_SECONDS} s rounds, the two servers in turn (outpostd/s3rver ops/s): PUT ${show(p.put.pairs)}; GET ${show(p.get.pairs)}`);
    lines.push(`| 4 KiB PUT / GET, ratio of paired rounds (median of ${PAIRS}) | | | ${p.put.median}× / ${p.get.median}× |`);
  }
  lines.push('', ...SERVERS.filter((name) => results[name]).map((name) => `${name}: peak RSS through the small rounds ${results[name].smallPeakRssMiB} MiB`));
  lines.push('', ...SERVERS.filter((name) => results[name]).map((name) => `raw disk, same size, in ${name}'s directory between its transfers: write+fsync ${results[name].rawWriteMBps} MB/s, read ${results[name].rawReadMBps} MB/s`));
  lines.push(...SERVERS.filter((name) => results[name]).map((name) => `a 4 KiB file created and renamed into place in ${name}'s directory before its small rounds: ${results[name].fileCreationCpuUs} µs of CPU (each small PUT creates one)`));
  if (o) lines.push(`MD5 (the ETag) of ${LARGE / 1048576} MiB on one core of this machine: ${o.md5MBps} MB/s, ${Math.round((100 * o.md5MBps) / o.rawWriteMBps)} % of raw write${o.md5MBps < o.rawWriteMBps ? ': no PUT can be faster' : ''}`);
  lines.push('');
  if (o) {
    lines.push(`${verdict(o.putOps >= 3000)} 4 KiB PUT ≥ 3,000 ops/s (${o.putOps})`);
    lines.push(`${verdict(o.getOps >= 5000)} 4 KiB GET ≥ 5,000 ops/s (${o.getOps})`);
    if (p) lines.push(`${verdict(p.put.median >= 3 && p.get.median >= 3)} ≥ 3× s3rver, paired rounds (PUT ${p.put.median}×, GET ${p.get.median}×; the full rounds above, one server after the other: PUT ${s ? (o.putOps / s.putOps).toFixed(1) : '-'}×, GET ${s ? (o.getOps / s.getOps).toFixed(1) : '-'}×)`);
    else if (s) lines.push(`${verdict(o.putOps >= 3 * s.putOps && o.getOps >= 3 * s.getOps)} ≥ 3× s3rver (PUT ${(o.putOps / s.putOps).toFixed(1)}×, GET ${(o.getOps / s.getOps).toFixed(1)}×)`);
    lines.push(`${verdict(o.putMBps >= 0.8 * o.rawWriteMBps)} large PUT ≥ 80 % of raw write (${Math.round((100 * o.putMBps) / o.rawWriteMBps)} %)`);
    lines.push(`${verdict(o.getMBps >= 0.8 * o.rawReadMBps)} large GET ≥ 80 % of raw read (${Math.round((100 * o.getMBps) / o.rawReadMBps)} %)`);
    lines.push(`${verdict(o.smallPeakRssMiB <= 110)} RSS under the small rounds ≤ 110 MB (peak ${o.smallPeakRssMiB} MiB)`);
    if (o.failed) lines.push(`(${o.failed} small requests failed)`);
  }
  if (results.outpostdRss) lines.push(`${verdict(results.outpostdRss.putMiB <= 16 && results.outpostdRss.getMiB <= 16)} ${RSS_BYTES / 1048576} MiB PUT / GET raise RSS ≤ 16 MB (PUT +${results.outpostdRss.putMiB} MiB, GET +${results.outpostdRss.getMiB} MiB)`);
  if (results.list) lines.push(`${verdict(results.list.firstMs <= 50)} first ListObjectsV2 page of 1,000 in ${LIST_KEYS} keys ≤ 50 ms (first after a HeadBucket ${results.list.firstMs} ms, median of 5 ${results.list.medianMs} ms)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
process.exit(0);
