import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { straceWorks } from './helpers/strace.js';

// A small object's share file is written after its commit and recorded later, after a sync of the
// share (syncfs), by the object's version (its body's row). A sync slowed (strace: 1.5 s) keeps a
// copy unrecorded while its key is deleted and PUT small again. The new body's row took the
// deleted one's id (SQLite reuses the largest rowid), so the late record of the deleted version's
// copy landed on the new version: the file share then removed the object acknowledged a moment
// before (ObjectRemoved:Delete), or adopted its file as a local program's, losing its Content-Type
// and metadata (the crash audit: 16 of 324 PUTs lost with every sync 100 ms slower).
const SLOW_SHARE_SYNCS = ['strace', '-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=syncfs', '-e', 'inject=syncfs:delay_enter=1500000'];
const BUCKET = 'versions';
const ROUNDS = 3;

describe.skipIf(!straceWorks)('small objects PUT again after a delete, copies recorded late', () => {
  let daemon: TestDaemon;
  let s3: S3Client;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { s3: { share: { settleMs: 300 } } }, wrapper: SLOW_SHARE_SYNCS, startTimeoutMs: 60_000 });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  }, 90_000);

  afterAll(async () => {
    if (daemon) {
      // strace's child is the daemon: stopping strace would leave it running
      const pid = Number(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      if (pid) process.kill(pid, 'SIGTERM');
      await daemon.cleanup();
    }
  }, 30_000);

  it('keeps each version acknowledged last, with its Content-Type and metadata', async () => {
    const acknowledged = new Map<string, string>();
    for (let round = 0; round < ROUNDS; round++) {
      const Key = `k${round}`;
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `first ${Key}`, ContentType: 'text/x-mine', Metadata: { version: '1' } }));
      // its copy placed, and its record waiting for the share's sync
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (round % 2) await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key }] } }));
      else await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `second ${Key}`, ContentType: 'text/x-mine', Metadata: { version: '2' } }));
      acknowledged.set(Key, `second ${Key}`);
      // the copies recorded, and the share's looks at them settled
      await new Promise((resolve) => setTimeout(resolve, 4000));
    }
    const found = await Promise.all([...acknowledged.keys()].map(async (Key) => {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key })).catch((error: Error) => error.name);
      if (typeof got === 'string') return [Key, got];
      return [Key, await got.Body!.transformToString(), got.ContentType, got.Metadata?.version];
    }));
    expect(found).toEqual([...acknowledged].map(([Key, body]) => [Key, body, 'text/x-mine', '2']));
  }, 120_000);
});
