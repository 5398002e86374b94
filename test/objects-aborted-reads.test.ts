import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './helpers/eventually.js';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';

/** Reads a presigned GET until `bytes` arrived, then drops the connection. */
function readThenDrop(url: string, bytes: number, range?: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { headers: range ? { range } : {} }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= bytes) {
          req.destroy();
          resolve();
        }
      });
      res.on('end', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
}

/** Starts a presigned GET, stops reading once the first bytes came (the server's writes then wait), and drops the connection `afterMs` later. */
function stallThenDrop(url: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      res.once('data', () => {
        res.pause();
        setTimeout(() => { req.destroy(); resolve(); }, afterMs);
      });
    });
    req.on('error', () => resolve());
    req.end();
  });
}

describe('S3 API: clients that go away mid-download', () => {
  let daemon: TestDaemon;
  let s3: S3Client;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'big' }));
    await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'video', Body: Buffer.alloc(32 << 20, 7) }));
  });

  afterAll(async () => { await daemon.cleanup(); });

  it('keep the daemon serving, whole objects and ranges, dropped at any point', async () => {
    for (let i = 0; i < 30; i++) {
      const range = i % 2 === 1 ? 'bytes=1000-30000000' : undefined;
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'big', Key: 'video', Range: range }), { expiresIn: 60 });
      await readThenDrop(url, (i % 5) * 100_000 + 1000, range);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(daemon.process.exitCode).toBeNull();
    await s3.send(new PutObjectCommand({ Bucket: 'big', Key: 'after', Body: 'still serving' }));
    const after = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'after' }));
    expect(await after.Body!.transformToString()).toBe('still serving');
  });

  it('close the object\'s file at once when a reader that stopped reading goes away, not when the collector finds it', async () => {
    const file = join(daemon.dataDir, 'share', 'big', 'video');
    const openOnFile = () => readdirSync(`/proc/${daemon.process.pid}/fd`).filter((fd) => {
      try { return readlinkSync(`/proc/${daemon.process.pid}/fd/${fd}`) === file; } catch { return false; }
    }).length;
    for (let i = 0; i < 4; i++) await stallThenDrop(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'big', Key: 'video' }), { expiresIn: 60 }), 300);
    // the write each was waiting for never completes: the close of its connection ends the wait
    await eventually(() => openOnFile() === 0, 3000);
    expect(daemon.stderr).not.toContain('Closing file descriptor');
  });

  it('send every reader its own bytes while many read at once and some go away (the large read buffers are shared)', async () => {
    const objects = [1, 2, 3, 4, 5, 6].map((n) => Buffer.alloc(5 << 20, n));
    await Promise.all(objects.map((body, i) => s3.send(new PutObjectCommand({ Bucket: 'big', Key: `many/${i}`, Body: body }))));
    const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');
    for (let round = 0; round < 3; round++) {
      const dropped = objects.map(async (_, i) => readThenDrop(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'big', Key: `many/${i}` }), { expiresIn: 60 }), 1_500_000));
      const whole = objects.map(async (_, i) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: `many/${i}`, Range: round === 1 ? 'bytes=100-4000000' : undefined }));
        return md5(await got.Body!.transformToByteArray());
      });
      const sums = await Promise.all(whole);
      await Promise.all(dropped);
      expect(sums).toEqual(objects.map((body) => md5(round === 1 ? body.subarray(100, 4_000_001) : body)));
    }
  });
});
