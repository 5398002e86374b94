import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, GetObjectCommand,
  ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { fuzzSeed, prng } from './helpers/fuzz.js';

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

/** A presigned PUT of `body` that sends its first `before` bytes now and the rest when told. */
function stalledPut(url: string, body: Buffer, before: number): { request: ClientRequest; finish(): void; answer: Promise<IncomingMessage> } {
  const put = request(url, { method: 'PUT', headers: { 'content-length': body.length } });
  const answer = new Promise<IncomingMessage>((resolve, reject) => {
    put.on('response', resolve);
    put.on('error', reject);
  });
  put.flushHeaders();
  if (before > 0) put.write(body.subarray(0, before));
  return { request: put, finish: () => put.end(body.subarray(before)), answer };
}

describe('S3 API: large uploads at the same time', () => {
  let daemon: TestDaemon;
  let s3: S3Client;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await daemon.cleanup();
  });

  const contentOf = async (key: string) => md5(await (await s3.send(new GetObjectCommand({ Bucket: 'many', Key: key }))).Body!.transformToByteArray());

  it('store every body whole, however many arrive at once and however long they are (they are read a few at a time)', async () => {
    // more at once than are read at once, each longer than one turn of reading
    const bodies = Array.from({ length: 5 }, (_, i) => randomBytes((9 << 20) + i * 1000));
    // how many wait for their turn, as /metrics tells, sampled while they are sent
    const bodiesWaiting = async () => Number(/^outpost_s3_bodies_waiting (\S+)$/m.exec(await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text())?.[1]);
    const waiting: number[] = [];
    let sending = true;
    const sampling = (async () => {
      while (sending) {
        waiting.push(await bodiesWaiting());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const answers = await Promise.all(bodies.map((body, i) => s3.send(new PutObjectCommand({ Bucket: 'many', Key: `big/${i}`, Body: body }))))
      .finally(() => { sending = false; });
    await sampling;
    expect(answers.map((answer) => answer.ETag)).toEqual(bodies.map((body) => `"${md5(body)}"`));
    expect(Math.max(...waiting)).toBeGreaterThan(0);
    expect(waiting.every((count) => count >= 0 && count <= 3)).toBe(true);
    expect(await bodiesWaiting()).toBe(0);
    for (const [i, body] of bodies.entries()) expect(await contentOf(`big/${i}`)).toBe(md5(body));
  });

  it('do not wait for senders that stall before their body or in the middle of it, which complete once they go on', async () => {
    const stalledBodies = Array.from({ length: 3 }, () => randomBytes(3 << 20));
    const stalled = await Promise.all(stalledBodies.map(async (body, i) =>
      // two of them, as many as are read at once, before their body's first byte
      stalledPut(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'many', Key: `stalled/${i}` }), { expiresIn: 60 }), body, i < 2 ? 0 : 100_000)));
    try {
      // three senders stalled, more than the bodies read at once: others are still stored meanwhile
      const others = Array.from({ length: 3 }, () => randomBytes(2 << 20));
      await Promise.all(others.map((body, i) => s3.send(new PutObjectCommand({ Bucket: 'many', Key: `meanwhile/${i}`, Body: body }))));
      for (const [i, body] of others.entries()) expect(await contentOf(`meanwhile/${i}`)).toBe(md5(body));
      for (const put of stalled) put.finish();
      const answers = await Promise.all(stalled.map((put) => put.answer));
      expect(answers.map((answer) => [answer.statusCode, answer.headers.etag])).toEqual(stalledBodies.map((body) => [200, `"${md5(body)}"`]));
      for (const [i, body] of stalledBodies.entries()) expect(await contentOf(`stalled/${i}`)).toBe(md5(body));
    } finally {
      for (const put of stalled) {
        put.answer.catch(() => undefined);
        put.request.destroy();
      }
    }
  });

  it('do not wait for slow senders to finish: those take turns of bounded time', async () => {
    // three senders trickling a body, never pausing long enough to count as stalled
    const slowBodies = Array.from({ length: 3 }, () => randomBytes(6 << 20));
    const slow = await Promise.all(slowBodies.map(async (body, i) =>
      stalledPut(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'many', Key: `slow/${i}` }), { expiresIn: 60 }), body, 0)));
    let sent = 0;
    let othersDone = false;
    const trickle = (async () => {
      // 16 KiB from each every 10 ms, until the others are stored (or all but the end of the bodies was sent)
      while (!othersDone && sent + 16_384 < slowBodies[0].length) {
        for (const [i, put] of slow.entries()) put.request.write(slowBodies[i].subarray(sent, sent + 16_384));
        sent += 16_384;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      const other = randomBytes(2 << 20);
      await s3.send(new PutObjectCommand({ Bucket: 'many', Key: 'beside-slow', Body: other }));
      othersDone = true;
      await trickle;
      // stored while the slow ones were still sending
      expect(sent + 16_384).toBeLessThan(slowBodies[0].length);
      expect(await contentOf('beside-slow')).toBe(md5(other));
      for (const [i, put] of slow.entries()) put.request.end(slowBodies[i].subarray(sent));
      const answers = await Promise.all(slow.map((put) => put.answer));
      expect(answers.map((answer) => [answer.statusCode, answer.headers.etag])).toEqual(slowBodies.map((body) => [200, `"${md5(body)}"`]));
    } finally {
      othersDone = true;
      for (const put of slow) {
        put.answer.catch(() => undefined);
        put.request.destroy();
      }
    }
  });

  it('go on serving others when a sender leaves mid-body', async () => {
    const left = await Promise.all([0, 1, 2].map(async (i) =>
      stalledPut(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'many', Key: `left/${i}` }), { expiresIn: 60 }), randomBytes(3 << 20), 200_000)));
    for (const put of left) {
      put.answer.catch(() => undefined);
      put.request.destroy();
    }
    const body = randomBytes(4 << 20);
    expect((await s3.send(new PutObjectCommand({ Bucket: 'many', Key: 'after-left', Body: body }))).ETag).toBe(`"${md5(body)}"`);
    await expect(s3.send(new GetObjectCommand({ Bucket: 'many', Key: 'left/0' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });
  it('end each multipart upload raced by its own parts, completions and aborts completed whole or gone, its parts removed either way', async () => {
    const seed = fuzzSeed();
    const random = prng(seed);
    const minimumPart = Buffer.alloc(5 << 20);
    // a part of the minimum size whose content its first bytes tell apart
    const bigPart = (tag: string) => Buffer.concat([Buffer.from(tag), minimumPart.subarray(tag.length)]);
    const failure = (error: { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }) => ({ failed: error.name ?? 'unknown', status: error.$metadata?.httpStatusCode ?? 0, message: error.message });
    const settle = <T>(call: Promise<T>) => call.then((value) => ({ value }), failure);
    for (let round = 0; round < 8; round++) {
      const Key = `raced/${round}`;
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'many', Key }));
      const upload = { Bucket: 'many', Key, UploadId };
      const uploadPart = (PartNumber: number, Body: Buffer) => settle(s3.send(new UploadPartCommand({ ...upload, PartNumber, Body })).then((answer) => ({ etag: answer.ETag!, body: Body })));
      // part 1 twice at once with different contents, part 2 once
      const firstParts = await Promise.all([uploadPart(1, bigPart(`A${round}`)), uploadPart(1, bigPart(`B${round}`)), uploadPart(2, Buffer.from(`C${round}`))]);
      const stored = firstParts.map((part) => ('value' in part ? part.value : undefined));
      expect(stored.every(Boolean), `seed ${seed}: ${JSON.stringify(firstParts)}`).toBe(true);
      // either of part 1's ETags: one is stale, which only the last upload of it matches
      const named = [stored[random() < 0.5 ? 0 : 1]!, stored[2]!];
      const [completed, aborted, ...others] = await Promise.all([
        settle(s3.send(new CompleteMultipartUploadCommand({ ...upload, MultipartUpload: { Parts: named.map((part, index) => ({ PartNumber: index + 1, ETag: part.etag })) } }))),
        random() < 0.5 ? settle(s3.send(new AbortMultipartUploadCommand(upload))) : Promise.resolve(undefined),
        random() < 0.5 ? uploadPart(2, Buffer.from(`D${round}`)) : Promise.resolve(undefined),
        settle(s3.send(new ListPartsCommand(upload))),
        settle(s3.send(new CompleteMultipartUploadCommand({ ...upload, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: named[0].etag }] } }))),
      ]);
      const outcomes = [completed, aborted, ...others].filter(Boolean);
      // each answered as S3 answers such races: done, or the upload or part gone or stale
      for (const outcome of outcomes) {
        if ('failed' in outcome!) expect(['NoSuchUpload', 'InvalidPart'], `seed ${seed}: ${JSON.stringify(outcomes)}`).toContain(outcome.failed);
      }
      const object = await s3.send(new GetObjectCommand({ Bucket: 'many', Key })).then(
        async (answer) => ({ etag: answer.ETag, content: Buffer.from(await answer.Body!.transformToByteArray()) }), failure);
      const completions = [{ outcome: completed, parts: named }, { outcome: others[2], parts: [named[0]] }]
        .flatMap(({ outcome, parts }) => ('value' in outcome! ? [{ etag: (outcome.value as { ETag?: string }).ETag, parts }] : []));
      if (completions.length === 0) {
        expect(object, `seed ${seed}`).toMatchObject({ failed: 'NoSuchKey' });
        continue;
      }
      // the object is the parts a completion named, with their multipart ETag
      expect('content' in object, `seed ${seed}: ${JSON.stringify(outcomes)}`).toBe(true);
      const { etag, content } = object as { etag: string; content: Buffer };
      const completion = completions.find((candidate) => candidate.etag === etag);
      expect(completion, `seed ${seed}: ${etag} ${JSON.stringify(outcomes)}`).toBeDefined();
      const partMd5s = Buffer.concat(completion!.parts.map((part) => Buffer.from(part.etag.replace(/"/g, ''), 'hex')));
      expect(etag, `seed ${seed}`).toBe(`"${md5(partMd5s)}-${completion!.parts.length}"`);
      expect(md5(content), `seed ${seed}`).toBe(md5(Buffer.concat(completion!.parts.map((part) => part.body))));
    }
    // every upload completed or aborted, and no part left on disk; one completed or failed is aborted now
    for (const upload of (await s3.send(new ListMultipartUploadsCommand({ Bucket: 'many', Prefix: 'raced/' }))).Uploads ?? []) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'many', Key: upload.Key, UploadId: upload.UploadId }));
    }
    expect(readdirSync(join(daemon.dataDir, 'share', '.outpost', 'uploads')), `seed ${seed}`).toEqual([]);
  });
  it('never start a multipart upload in a bucket deleted at the same time', async () => {
    for (let round = 0; round < 15; round++) {
      await s3.send(new CreateBucketCommand({ Bucket: 'fleeting' }));
      const [created, deleted] = await Promise.all([
        s3.send(new CreateMultipartUploadCommand({ Bucket: 'fleeting', Key: `k${round}` })).then((answer) => answer.UploadId, (error) => error.name as string),
        s3.send(new DeleteBucketCommand({ Bucket: 'fleeting' })).then(() => 'deleted', (error) => error.name as string),
      ]);
      // a deleted bucket takes no upload (NoSuchBucket) and aborts the ones it had; one started
      // between those aborts and the delete keeps the bucket (BucketNotEmpty)
      if (deleted === 'deleted') {
        if (created !== 'NoSuchBucket') {
          const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'fleeting' })).then(() => 'listed', (error) => error.name as string);
          expect(listed, `round ${round}`).toBe('NoSuchBucket');
        }
      } else {
        expect(deleted, `round ${round}`).toBe('BucketNotEmpty');
        await s3.send(new AbortMultipartUploadCommand({ Bucket: 'fleeting', Key: `k${round}`, UploadId: created }));
        await s3.send(new DeleteBucketCommand({ Bucket: 'fleeting' }));
      }
    }
    expect(readdirSync(join(daemon.dataDir, 'share', '.outpost', 'uploads'))).toEqual([]);
  });
});
