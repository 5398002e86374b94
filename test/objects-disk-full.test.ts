import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { addKey, s3Client } from './helpers/objects.js';
import { outpost } from './helpers/mqtt.js';
import { canMountTmpfs, fillLeaving, mountTmpfs, unmountTmpfs } from './helpers/tmpfs.js';

// A gateway's disk fills up (cameras keep writing): writes are refused with 507 InsufficientStorage,
// nothing acknowledged is lost, nothing half-written is left, and writing works again once space returns.
const MiB = 1024 * 1024;
const BUCKET = 'cam';

async function failureOf(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined; message: string }> {
  const error: any = await promise.then(() => undefined, (caught) => caught);
  if (!error) throw new Error('the request succeeded');
  return { code: error.name, status: error.$metadata?.httpStatusCode, message: error.message };
}

async function contentOf(s3: S3Client, key: string): Promise<Buffer> {
  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

async function metric(daemon: TestDaemon, name: string): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
}

const mountable = canMountTmpfs();

describe.skipIf(!mountable)('objects with a full data directory (tmpfs)', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let dataMount: string | undefined;

  beforeAll(async () => {
    dataMount = mountTmpfs(40);
    mkdirSync(join(dataMount!, 'data'));
    // config: free ports, as other test files run daemons meanwhile
    daemon = await TestDaemon.start({ dataDir: join(dataMount!, 'data'), config: {} });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    await daemon?.stop();
    if (dataMount) unmountTmpfs(dataMount);
  });

  it('refuses writes with 507 InsufficientStorage, keeps every acknowledged object, and writes again once space returns', async () => {
    const first = Buffer.alloc(4096, 1);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'before-full', Body: first }));
    const filler = fillLeaving(dataMount!, 1 * MiB);

    // a large object's file does not fit
    const large = await failureOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'large', Body: Buffer.alloc(4 * MiB, 2) })));
    expect(large).toEqual({ code: 'InsufficientStorage', status: 507, message: expect.stringContaining('not enough space left') });
    // its temporary file is gone: the space it took is free again
    expect(readdirSync(join(dataMount!, 'data', 'share', '.outpost', 'tmp'))).toEqual([]);

    // small objects (in SQLite) until the database cannot grow either
    const acknowledged: string[] = [];
    let refused: Awaited<ReturnType<typeof failureOf>> | undefined;
    for (let i = 0; i < 2000 && !refused; i++) {
      const key = `small-${i}`;
      try {
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.alloc(4096, i % 256) }));
        acknowledged.push(key);
      } catch (error: any) {
        refused = { code: error.name, status: error.$metadata?.httpStatusCode, message: error.message };
      }
    }
    expect(refused).toMatchObject({ code: 'InsufficientStorage', status: 507 });
    const refusedKey = `small-${acknowledged.length}`;

    // every object acknowledged is there, whole; the refused ones are not, not even in the listing
    expect((await contentOf(s3, 'before-full')).equals(first)).toBe(true);
    for (const [i, key] of acknowledged.entries()) expect((await contentOf(s3, key)).equals(Buffer.alloc(4096, i % 256))).toBe(true);
    expect((await failureOf(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'large' })))).code).toBe('NoSuchKey');
    expect((await failureOf(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: refusedKey })))).code).toBe('NoSuchKey');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(listed.Contents!.map((object) => object.Key).sort()).toEqual(['before-full', ...acknowledged].sort());
    expect(daemon.process.exitCode).toBeNull();

    rmSync(filler);
    const body = Buffer.alloc(4 * MiB, 3);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'large', Body: body }));
    // Buffer.equals: vitest's deep equality takes seconds over megabytes
    expect((await contentOf(s3, 'large')).equals(body)).toBe(true);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: refusedKey, Body: Buffer.from('now') }));
    expect((await contentOf(s3, refusedKey)).toString()).toBe('now');
  }, 120_000);

  it('makes objects of the files written into the share while the database could not grow, once space returns', async () => {
    // the share files of the small objects the last test wrote on a full disk are written on a
    // timer: once they are, the daemon writes nothing more until this test's files come
    await eventually(async () => await metric(daemon, 'outpost_s3_share_copies_pending') === 0, 30_000, 100);
    const inbox = join(dataMount!, 'data', 'share', BUCKET, 'inbox');
    mkdirSync(inbox);
    // room for the files themselves, then none: their objects cannot be committed
    const roomForFiles = fillLeaving(dataMount!, 256 * 1024);
    const names = Array.from({ length: 5 }, (_, i) => `reading-${i}.csv`);
    for (const name of names) writeFileSync(join(inbox, name), `t,${name}\n`);
    mkdirSync(join(dataMount!, 'more'));
    const full = fillLeaving(join(dataMount!, 'more'), 0);
    const refusals = () => daemon.logs.filter((entry) => entry.msg?.startsWith('file share: files cannot become objects while the disk refuses writes'));
    await eventually(() => refusals().length > 0, 15_000, 100);
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0].err.code).toBe('SQLITE_FULL');
    const listInbox = async () => (await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'inbox/' }))).Contents?.map((object) => object.Key) ?? [];
    expect(await listInbox()).toEqual([]);

    // no event comes for these files again: the share tries them again by itself
    rmSync(full);
    rmSync(roomForFiles);
    await eventually(async () => (await listInbox()).length === names.length, 30_000, 250);
    expect((await listInbox()).sort()).toEqual(names.map((name) => `inbox/${name}`).sort());
    expect((await contentOf(s3, 'inbox/reading-3.csv')).toString()).toBe('t,reading-3.csv\n');
    expect(daemon.logs.some((entry) => entry.msg === 'file share: the files the disk refused have become objects (or are gone)')).toBe(true);
  }, 90_000);
});

describe.skipIf(!mountable)('objects with a full file share (tmpfs share root)', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let shareMount: string | undefined;

  beforeAll(async () => {
    shareMount = mountTmpfs(16);
    daemon = await TestDaemon.start({ config: { s3: { shareRoot: join(shareMount!, 'share') } } });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    await daemon?.stop();
    await daemon?.cleanup();
    if (shareMount) unmountTmpfs(shareMount);
  });

  it('keeps small objects written while the share is full, and writes their files once space returns, without a restart', async () => {
    const freeOnShare = () => metric(daemon, 'outpost_s3_share_free_bytes');
    expect(await freeOnShare()).toBeGreaterThan(8 * MiB);
    const filler = fillLeaving(shareMount!, 0);
    expect(await freeOnShare()).toBeLessThan(MiB);
    // a large object is a file under the share root: refused
    const large = await failureOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'large.bin', Body: Buffer.alloc(2 * MiB, 1) })));
    expect(large).toMatchObject({ code: 'InsufficientStorage', status: 507 });
    // small ones are held in SQLite (another disk here): acknowledged, served, their share files
    // pending; more than the 1,024 copies tried again at once (a page at a time)
    const keys = Array.from({ length: 1100 }, (_, i) => `yard/photo-${i}.jpg`);
    for (let i = 0; i < keys.length; i += 20) {
      await Promise.all(keys.slice(i, i + 20).map((key, j) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `jpeg ${i + j}` }))));
    }
    for (const i of [0, 1023, 1099]) expect((await contentOf(s3, keys[i])).toString()).toBe(`jpeg ${i}`);
    const shareFile = (key: string) => join(shareMount!, 'share', BUCKET, key);
    expect(keys.filter((key) => existsSync(shareFile(key)))).toEqual([]);
    await eventually(() => daemon.logs.some((entry) => /could not write the share file/.test(entry.msg)), 10_000, 100);
    expect(await metric(daemon, 'outpost_s3_share_copies_pending')).toBe(keys.length);
    const status = JSON.parse((await outpost(daemon.socket, ['--json', 'status'])).stdout);
    expect(status.services.objects.shareCopiesPending).toBe(keys.length);

    rmSync(filler);
    // tried again after 5 s: every file in place, nothing of the failed attempts left behind
    await eventually(() => keys.every((key) => existsSync(shareFile(key))), 30_000, 250);
    for (const [i, key] of keys.entries()) expect(readFileSync(shareFile(key), 'utf8')).toBe(`jpeg ${i}`);
    await eventually(async () => await metric(daemon, 'outpost_s3_share_copies_pending') === 0, 10_000, 100);
    expect(readdirSync(join(shareMount!, 'share', BUCKET)).sort()).toEqual(['yard']);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'large.bin', Body: Buffer.alloc(2 * MiB, 1) }));
    expect(readFileSync(shareFile('large.bin')).length).toBe(2 * MiB);
  }, 60_000);
});
