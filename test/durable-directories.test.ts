import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { straceWorks } from './helpers/strace.js';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { addKey, s3Client } from './helpers/objects.js';

interface Trace {
  /** Directories made, in order. */
  made: Array<{ path: string; line: number }>;
  /** Paths fsynced (files and directories), with the trace line of each. */
  synced: Array<{ path: string; line: number }>;
  /** Files removed. */
  unlinked: Array<{ path: string; line: number }>;
}

/** The daemon's mkdir and fsync calls, all threads, from `strace -f -y` (descriptors shown as their paths). */
function readTrace(file: string): Trace {
  const trace: Trace = { made: [], synced: [], unlinked: [] };
  readFileSync(file, 'utf8').split('\n').forEach((text, line) => {
    const made = /\bmkdir(?:at)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)", [^)]*\) = 0/.exec(text);
    if (made) trace.made.push({ path: made[1], line });
    const synced = /\b(?:fsync|fdatasync)\(\d+<([^>]+)>\) = 0/.exec(text);
    if (synced) trace.synced.push({ path: synced[1], line });
    const unlinked = /\bunlink(?:at)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)"(?:, 0)?\) = 0/.exec(text);
    if (unlinked) trace.unlinked.push({ path: unlinked[1], line });
  });
  return trace;
}

function syncedAfter(trace: Trace, path: string, line: number): boolean {
  return trace.synced.some((synced) => synced.path === path && synced.line > line);
}


// A power cut keeps a new directory (and the files renamed into it) only if the directory holding
// its entry was fsynced. The daemon runs under strace; the test reads which calls it made.
describe.skipIf(!straceWorks)('durable directories (strace of the daemon)', () => {
  const work = mkdtempSync(join(tmpdir(), 'outpost-durable-'));
  const traceFile = join(work, 'trace');
  const dataDir = join(work, 'data');
  const code = writePackage({
    'template.yaml': template('Durable', { Handler: 'app.handler', CodeUri: 'src/' }),
    'src/app.js': 'exports.handler = async () => require("./lib/answer.js");\n',
    'src/lib/answer.js': 'module.exports = 42;\n',
  });
  let daemon: TestDaemon;
  let trace: Trace;

  beforeAll(async () => {
    mkdirSync(dataDir);
    daemon = await TestDaemon.start({
      dataDir, config: { s3: { share: { settleMs: 200 } } }, startTimeoutMs: 60_000,
      wrapper: ['strace', '-f', '-y', '-qq', '-e', 'trace=mkdir,mkdirat,fsync,fdatasync,unlink,unlinkat', '-o', traceFile],
    });
    const client = s3Client(daemon, await addKey(daemon));
    await client.send(new CreateBucketCommand({ Bucket: 'durable' }));
    // a body larger than a small object's (held in SQLite): its file is renamed into new directories
    await client.send(new PutObjectCommand({ Bucket: 'durable', Key: 'x/y/large.bin', Body: Buffer.alloc(1 << 20, 1) }));
    await client.send(new PutObjectCommand({ Bucket: 'durable', Key: 'x/y/deleted.bin', Body: Buffer.alloc(1 << 20, 2) }));
    await client.send(new DeleteObjectCommand({ Bucket: 'durable', Key: 'x/y/deleted.bin' }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: 'durable', Key: 'parts.bin' }));
    // a local program's file, which the share adopts
    writeFileSync(join(dataDir, 'share', 'durable', 'x', 'local.txt'), 'written by a local program');
    await eventually(() => client.send(new HeadObjectCommand({ Bucket: 'durable', Key: 'x/local.txt' })).then(() => true, () => false), 10_000);
    const deployed = await outpost(daemon.socket, ['deploy', code.dir]);
    expect(deployed.code, deployed.stderr).toBe(0);
    // strace writes its lines as the calls return; the last answer above may be ahead of its file
    await eventually(() => /functions\/Durable>/.test(readFileSync(traceFile, 'utf8')), 10_000);
    trace = readTrace(traceFile);
  }, 120_000);

  afterAll(async () => {
    if (!daemon) return;
    const pid = Number(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/children`, 'utf8').trim().split(' ')[0]);
    if (pid) process.kill(pid, 'SIGTERM');
    await daemon.stop();
    rmSync(work, { recursive: true, force: true });
    code.remove();
  }, 30_000);

  it('syncs the data directory once the database and its log exist', () => {
    expect(trace.synced.map((synced) => synced.path)).toContain(dataDir);
  });

  it('syncs the parent of every directory it makes under the data directory, after making it', () => {
    const made = trace.made.filter((entry) => entry.path.startsWith(`${dataDir}/`));
    const paths = made.map((entry) => entry.path);
    // the bucket's share directory, the key's directories, the upload's part directory, a function's staging
    expect(paths).toEqual(expect.arrayContaining([join(dataDir, 'share', 'durable'), join(dataDir, 'share', 'durable', 'x', 'y')]));
    expect(paths.some((path) => dirname(path).endsWith('/uploads') || path.includes('/uploads/'))).toBe(true);
    expect(paths.some((path) => path.includes('/functions/Durable/.staging-'))).toBe(true);
    const unsynced = made.filter((entry) => !syncedAfter(trace, dirname(entry.path), entry.line)).map((entry) => entry.path);
    expect(unsynced).toEqual([]);
  });

  it('syncs the directory of a deleted object\'s file before the delete is acknowledged', () => {
    const file = join(dataDir, 'share', 'durable', 'x', 'y', 'deleted.bin');
    const unlinked = trace.unlinked.find((entry) => entry.path === file);
    expect(unlinked).toBeDefined();
    expect(syncedAfter(trace, dirname(file), unlinked!.line)).toBe(true);
  });

  it('syncs a file a local program wrote into the share, and its directory, before it becomes an object', () => {
    const file = join(dataDir, 'share', 'durable', 'x', 'local.txt');
    expect(trace.synced.map((synced) => synced.path)).toEqual(expect.arrayContaining([file, dirname(file)]));
  });

  it('syncs a new function version\'s files and directories before it is recorded', () => {
    const staged = trace.synced.filter((synced) => synced.path.includes('/functions/Durable/.staging-')).map((synced) => synced.path.replace(/\.staging-[^/]+/, 'STAGING'));
    expect(staged).toEqual(expect.arrayContaining([
      expect.stringMatching(/STAGING\/app\.js$/), expect.stringMatching(/STAGING\/lib\/answer\.js$/),
      expect.stringMatching(/STAGING\/lib$/), expect.stringMatching(/STAGING$/),
    ]));
    expect(trace.synced.map((synced) => synced.path)).toContain(join(dataDir, 'functions', 'Durable'));
  });
});
