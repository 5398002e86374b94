import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonWithBucket } from './helpers/objects.js';
import { eventually } from './helpers/eventually.js';
import type { TestDaemon } from './helpers/daemon.js';
import { steadyThreadCount, threadCount } from './helpers/threads.js';

// The object store hashes large bodies and writes the file share's copies of small ones in one
// worker thread (a V8 heap and a Node.js environment of ~6 MB each): a gateway taking camera files
// and sensor readings at once runs one, not two, and none once idle for 10 s. Large bodies are
// hashed off the event loop only on boards of two cores or more.
const BUCKET = 'one-thread';
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

describe.skipIf(availableParallelism() < 2)('objects: one worker thread for hashes and share copies', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let cleanup: () => Promise<void>;
  const threads = () => threadCount(daemon.process.pid!);

  beforeAll(async () => {
    ({ daemon, s3, cleanup } = await daemonWithBucket(BUCKET));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('hashes a large body and copies small ones in one thread, which ends once idle', async () => {
    const idle = await steadyThreadCount(daemon.process.pid!);
    const large = randomBytes(3 * 1024 * 1024);
    const small = Array.from({ length: 20 }, () => randomBytes(4096));
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'camera/large.bin', Body: large }));
    expect(put.ETag).toBe(`"${md5(large)}"`);
    for (const [index, body] of small.entries()) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `sensor/${index}.bin`, Body: body }));
    // the copies are written after the answers: each file in the share, whole
    await eventually(() => small.every((body, index) => {
      try {
        return md5(readFileSync(join(daemon.dataDir, 'share', BUCKET, 'sensor', `${index}.bin`))) === md5(body);
      } catch {
        return false;
      }
    }), 10_000);
    expect(threads()).toBe(idle + 1);
    // a second large body while the copies' thread is up: still the same thread
    const again = randomBytes(2 * 1024 * 1024);
    expect((await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'camera/again.bin', Body: again }))).ETag).toBe(`"${md5(again)}"`);
    expect(threads()).toBe(idle + 1);
    const read = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'camera/large.bin' }));
    expect(md5(await read.Body!.transformToByteArray())).toBe(md5(large));
    // 10 s after its last request the thread ends
    await eventually(() => threads() === idle, 20_000);
  }, 60_000);
});

// Boards of 1 GB or more set s3.writeBufferBytes to 1 MiB (their profiles), the smallest allowed is
// 64 KiB: a body's chunks land across buffer boundaries at any offset (the first one starts after
// the request's head), and each buffer is written and hashed in turn.
describe.each([1024 * 1024, 64 * 1024])('objects: large bodies through write buffers of %i bytes', (writeBufferBytes) => {
  let s3: S3Client;
  let cleanup: () => Promise<void>;
  const bucket = `buffers-${writeBufferBytes}`;

  beforeAll(async () => {
    ({ s3, cleanup } = await daemonWithBucket(bucket, { s3: { writeBufferBytes } }));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('keeps each body whole with the MD5 of its content as ETag, also two at once', async () => {
    const bodies = [randomBytes(5 * 1024 * 1024 + 12345), randomBytes(1024 * 1024 + 1), randomBytes(3 * 1024 * 1024 - 7)];
    const puts = await Promise.all(bodies.map((body, index) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `large-${index}.bin`, Body: body }))));
    expect(puts.map((put) => put.ETag)).toEqual(bodies.map((body) => `"${md5(body)}"`));
    for (const [index, body] of bodies.entries()) {
      const read = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `large-${index}.bin` }));
      expect(Buffer.from(await read.Body!.transformToByteArray()).equals(body)).toBe(true);
    }
  }, 60_000);
});
