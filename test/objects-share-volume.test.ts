import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { addKey, s3Client } from './helpers/objects.js';
import { canMountTmpfs, unmountWhenFree } from './helpers/tmpfs.js';

// A share on a drive of its own (a USB disk, a NAS export), here a directory bind-mounted at the
// share root: unmounted, the share root is an empty directory, which must not be taken for an
// empty share (every object forgotten, writes landing on the disk beneath).

const BUCKET = 'field-logs';
const config = (shareRoot: string) => ({ s3: { shareRoot, share: { settleMs: 300, scanIntervalMs: 100 } } });
const LARGE = Buffer.alloc(200 * 1024, 7);

describe.skipIf(!canMountTmpfs())('a share on a drive that is not always mounted', () => {
  let volume: string;
  let mountPoint: string;
  let mounted = false;
  let daemon: TestDaemon;
  let s3: S3Client;

  const mount = (dir = volume) => { execFileSync('mount', ['--bind', dir, mountPoint]); mounted = true; };
  const unmount = async () => { await unmountWhenFree(mountPoint); mounted = false; };
  const errorOf = (request: Promise<unknown>) => request.then(() => 'ok', (error) => `${error.name} ${error.$metadata?.httpStatusCode}`);
  const put = (key: string, body: string | Buffer = 'x') => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const keys = async () => (await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents?.map((object) => object.Key) ?? [];
  async function startDaemon(dataDir?: string): Promise<void> {
    daemon = await TestDaemon.start({ config: config(mountPoint), dataDir });
    s3?.destroy();
    s3 = s3Client(daemon, await addKey(daemon));
  }

  beforeAll(async () => {
    volume = mkdtempSync(join(tmpdir(), 'outpost-volume-'));
    mountPoint = mkdtempSync(join(tmpdir(), 'outpost-mount-'));
    mount();
    await startDaemon();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'small.txt', Body: 'reading 1', ContentType: 'text/x-reading', Metadata: { station: 'north' } }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'day/large.bin', Body: LARGE, Metadata: { station: 'south' } }));
    // the small object's share copy, written just after its answer
    await eventually(() => existsSync(join(volume, BUCKET, 'small.txt')));
  });

  afterAll(async () => {
    s3?.destroy();
    await daemon?.cleanup();
    if (mounted) await unmount();
    rmSync(mountPoint, { recursive: true, force: true });
    rmSync(volume, { recursive: true, force: true });
  });

  it('keeps the objects of a share whose drive went away, answers 503 to what needs it and makes nothing on the disk beneath', async () => {
    await unmount();
    // a large body goes to the store's folder first, which went with the drive
    expect(await errorOf(put('later.bin', LARGE))).toBe('ServiceUnavailable 503');
    expect(await errorOf(put('later.txt'))).toBe('ServiceUnavailable 503');
    expect(await errorOf(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'day/large.bin' })))).toBe('ServiceUnavailable 503');
    expect(await errorOf(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'small.txt' })))).toBe('ServiceUnavailable 503');
    expect(await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'another-bucket' })))).toBe('ServiceUnavailable 503');
    // what the index alone answers is answered
    expect((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'small.txt' }))).Metadata).toEqual({ station: 'north' });
    // several scan intervals and settle times: nothing is forgotten, nothing made
    await sleep(1_500);
    expect(await keys()).toEqual(['day/large.bin', 'small.txt']);
    expect(readdirSync(mountPoint)).toEqual([]);
    expect(daemon.logs.some((line) => line.msg?.startsWith("file share: the share's volume is not there"))).toBe(true);
    const health = await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`);
    expect(health.status).toBe(503);
    expect((await health.json()).services.objects.detail).toBe(`file share's drive not there (not mounted?): ${mountPoint}`);
  });

  it('takes writes again once the drive is back, with its objects as they were, and watches it anew', async () => {
    mount();
    await eventually(() => errorOf(put('back.txt', 'again')).then((outcome) => outcome === 'ok'), 10_000, 200);
    const large = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'day/large.bin' }));
    expect(Buffer.from(await large.Body!.transformToByteArray()).equals(LARGE)).toBe(true);
    expect(large.Metadata).toEqual({ station: 'south' });
    const small = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'small.txt' }));
    expect(await small.Body!.transformToString()).toBe('reading 1');
    expect(small.ContentType).toBe('text/x-reading');
    // a local program's file on the drive becomes an object: the share's watches were made again
    writeFileSync(join(mountPoint, BUCKET, 'day', 'local.csv'), 't,21.5\n');
    await eventually(() => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'day/local.csv' })).then(() => true, () => false), 10_000, 200);
    await eventually(() => existsSync(join(volume, BUCKET, 'back.txt')));
    expect((await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`)).status).toBe(200);
  });

  it('starts with the drive absent, and catches up once it is there', async () => {
    await daemon.stop();
    await unmount();
    await startDaemon(daemon.dataDir);
    expect(await errorOf(put('while-away.txt'))).toBe('ServiceUnavailable 503');
    expect(await keys()).toEqual(['back.txt', 'day/large.bin', 'day/local.csv', 'small.txt']);
    expect(readdirSync(mountPoint)).toEqual([]);
    mount();
    await eventually(() => errorOf(put('arrived.txt', 'hello')).then((outcome) => outcome === 'ok'), 10_000, 200);
    const large = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'day/large.bin' }));
    expect(Buffer.from(await large.Body!.transformToByteArray()).equals(LARGE)).toBe(true);
  });

  it('takes a new drive for the share once an operator marks it so', async () => {
    await unmount();
    const replacement = mkdtempSync(join(tmpdir(), 'outpost-volume-'));
    try {
      mount(replacement);
      await sleep(1_200);
      expect(await errorOf(put('new-drive.txt'))).toBe('ServiceUnavailable 503');
      expect(readdirSync(replacement)).toEqual([]);
      // docs/file-share.md: a new, empty drive
      mkdirSync(join(mountPoint, '.outpost'));
      writeFileSync(join(mountPoint, '.outpost', 'volume'), '');
      await eventually(() => errorOf(put('new-drive.txt', 'fresh')).then((outcome) => outcome === 'ok'), 10_000, 200);
      await eventually(() => existsSync(join(replacement, BUCKET, 'new-drive.txt')));
    } finally {
      await unmount();
      rmSync(replacement, { recursive: true, force: true });
      mount();
    }
  });
});
