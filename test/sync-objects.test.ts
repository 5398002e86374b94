import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { addKey } from './helpers/objects.js';
import { CloudS3 } from './helpers/cloud-s3.js';
import { expectCloudBody, gatewayConfig, startGateway, syncStatus } from './helpers/gateway.js';
import { makeTestPki } from './helpers/certs.js';

const MiB = 1024 * 1024;

const put = (s3: S3Client, bucket: string, key: string, body: Buffer | string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

describe('sync: objects to cloud S3', () => {
  let cloud: CloudS3;
  beforeAll(async () => {
    cloud = await CloudS3.create(['cloud']);
  });
  afterAll(async () => {
    await cloud?.destroy();
  });

  it('uploads objects written while the cloud is down once it is back, in order one at a time (concurrency 1), each version once', async () => {
    await cloud.down();
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'cams', from: 'cams/2026/' }], { cloudS3: { concurrency: 1 } }));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'cams' }));
      const keys = Array.from({ length: 8 }, (_, i) => `2026/frame-${i}.jpg`);
      for (const [i, key] of keys.entries()) {
        await s3.send(new PutObjectCommand({ Bucket: 'cams', Key: key, Body: `frame ${i}`, ContentType: 'image/jpeg', Metadata: { camera: 'yard', place: '=?UTF-8?B?w6l0w6k=?=' } }));
      }
      await put(s3, 'cams', '2026/frame-3.jpg', 'frame 3, second version');
      await put(s3, 'cams', 'other/not-synced.txt', 'outside the prefix');

      const offline = await eventually(async () => {
        const status = await syncStatus(daemon);
        return status.rules.find((rule: any) => rule.rule === 'cams')?.backlog === 9 && status.uploads.lastError ? status : undefined;
      });
      expect(offline.uploads.online).toBe(false);

      await cloud.up();
      await eventually(async () => (await cloud.keys('cloud')).length === 8, 15_000);
      expect((await cloud.keys('cloud')).sort()).toEqual(keys.map((key) => `gw1/${key}`).sort());
      expect((await cloud.body('cloud', 'gw1/2026/frame-3.jpg')).toString()).toBe('frame 3, second version');
      // Content type and user metadata go along.
      expect(await cloud.client.send(new HeadObjectCommand({ Bucket: 'cloud', Key: 'gw1/2026/frame-0.jpg' }))).toMatchObject({ ContentType: 'image/jpeg', Metadata: { camera: 'yard', place: '=?UTF-8?B?w6l0w6k=?=' } });
      // One PutObject per version still current at its turn, in the order they were written: the
      // first version of frame-3 was superseded (its GET If-Match failed) and never sent; the
      // second goes at its own place, last.
      const uploads = cloud.requests.filter((request) => request.method === 'PUT' && request.status === 200).map((request) => request.path);
      const written = [...keys.filter((key) => key !== '2026/frame-3.jpg'), '2026/frame-3.jpg'];
      expect(uploads).toEqual(written.map((key) => `/cloud/gw1/${key}`));
      const status = await eventually(async () => {
        const current = await syncStatus(daemon);
        return current.rules.find((rule: any) => rule.rule === 'cams')?.backlog === 0 ? current : undefined;
      });
      expect(status.uploads).toMatchObject({ online: true, uploaded: 8, superseded: 1 });
      expect(status.rules.find((rule: any) => rule.rule === 'cams')).toMatchObject({ delivered: 8, dropped: 0, deadLettered: 0 });
    } finally {
      await daemon.cleanup();
    }
  });

  it('resumes a multipart upload after kill -9 without sending the confirmed parts again', async () => {
    await cloud.up();
    // 3 × 5 MiB parts at 4 MiB/s: about 4 s, long enough to kill the daemon in the middle.
    const config = gatewayConfig(cloud, [{ name: 'big', from: 'big', to: 'cloud/big/' }], { cloudS3: { partBytes: 5 * MiB, maxBytesPerSecond: 4 * MiB } });
    let gateway = await startGateway(config);
    const dataDir = gateway.daemon.dataDir;
    try {
      await gateway.s3.send(new CreateBucketCommand({ Bucket: 'big' }));
      const data = randomBytes(15 * MiB);
      await put(gateway.s3, 'big', 'video.bin', data);
      const partRequests = () => cloud.requestsFor('PUT', 'cloud/big/video.bin').filter((request) => request.query.has('partNumber'));
      // Part 1 is committed before part 2 starts: kill once part 2 is on its way.
      await eventually(() => partRequests().some((request) => request.query.get('partNumber') === '2'), 15_000);
      await gateway.daemon.kill();
      const before = partRequests().length;
      const uploadId = partRequests()[0].query.get('uploadId');

      gateway = await startGateway(config, dataDir);
      await eventually(async () => (await cloud.keys('cloud')).includes('big/video.bin'), 20_000);
      const resent = partRequests().slice(before);
      expect(resent.map((request) => request.query.get('partNumber'))).toEqual(['2', '3']);
      expect(resent.every((request) => request.query.get('uploadId') === uploadId)).toBe(true);
      expect(cloud.requestsFor('POST', 'cloud/big/video.bin').filter((request) => request.query.has('uploadId'))).toHaveLength(1);
      await expectCloudBody(cloud, 'big/video.bin', data);
      expect(cloud.requests.filter((request) => request.path === '/cloud/big/video.bin' && request.query.has('uploads'))).toHaveLength(1);
      // the upload tried at start-up, before the object store listens, waited for it: the cloud, up all along, was never said unreachable
      expect(gateway.daemon.logs.filter((line) => line.msg === 'cloud S3 unreachable; uploads wait')).toEqual([]);
    } finally {
      await gateway.daemon.cleanup();
    }
  });

  it('takes a multipart upload whose CompleteMultipartUpload answer was lost as done when the cloud has the object', async () => {
    await cloud.up();
    let lost = 0;
    cloud.loseAnswer = (request) => request.method === 'POST' && request.path === '/cloud/lost/answer.bin' && request.query.has('uploadId') && lost++ === 0;
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'lost', from: 'lost', to: 'cloud/lost/' }], { cloudS3: { partBytes: 5 * MiB } }));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'lost' }));
      const data = randomBytes(6 * MiB);
      await put(s3, 'lost', 'answer.bin', data);
      await eventually(async () => (await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'lost')?.backlog === 0, 20_000, 200);
      const completes = cloud.requestsFor('POST', 'cloud/lost/answer.bin').filter((request) => request.query.has('uploadId'));
      expect(completes.length).toBeGreaterThanOrEqual(2);
      // not started over: one upload, its two parts sent once
      expect(cloud.requestsFor('POST', 'cloud/lost/answer.bin').filter((request) => request.query.has('uploads'))).toHaveLength(1);
      expect(cloud.requestsFor('PUT', 'cloud/lost/answer.bin').filter((request) => request.query.has('partNumber'))).toHaveLength(2);
      expect((await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'lost')).toMatchObject({ backlog: 0, deadLettered: 0 });
      await expectCloudBody(cloud, 'lost/answer.bin', data);
    } finally {
      cloud.loseAnswer = () => false;
      await daemon.cleanup();
    }
  });

  it('loses no object while the link flaps under several uploads at a time, a multipart upload included', async () => {
    await cloud.up();
    const config = gatewayConfig(cloud, [{ name: 'flap', from: 'flap', to: 'cloud/flap/' }], { cloudS3: { partBytes: 5 * MiB, maxBytesPerSecond: 8 * MiB } });
    const { daemon, s3 } = await startGateway(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'flap' }));
      const big = randomBytes(11 * MiB);
      let stopping = false;
      const written: string[] = [];
      const writer = (async () => {
        await put(s3, 'flap', 'big.bin', big);
        written.push('big.bin');
        for (let i = 0; !stopping && i < 200; i++) {
          const key = `small-${String(i).padStart(3, '0')}`;
          await put(s3, 'flap', key, key);
          written.push(key);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      // The link: down and up again, six times, at random moments (the multipart upload is cut too).
      for (let flap = 0; flap < 6; flap++) {
        await new Promise((resolve) => setTimeout(resolve, 600 + Math.random() * 900));
        await cloud.down();
        await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
        await cloud.up();
      }
      stopping = true;
      await writer;
      await eventually(async () => (await cloud.keys('cloud')).filter((key) => key.startsWith('flap/')).length === written.length, 70_000, 200)
        .catch(async (error) => {
          console.log('flapping objects: written, in the cloud, uploader status, last cloud requests:', written.length, (await cloud.keys('cloud')).filter((key) => key.startsWith('flap/')).length, JSON.stringify((await syncStatus(daemon)).uploads), JSON.stringify(cloud.requests.slice(-5).map((r) => [r.method, r.path, r.status])));
          throw error;
        });
      await expectCloudBody(cloud, 'flap/big.bin', big);
      // Each small object sent whole at least once (uploads in flight at once finish in any order).
      const sent = new Set(cloud.requests.filter((request) => request.method === 'PUT' && request.status === 200 && request.path.startsWith('/cloud/flap/small-'))
        .map((request) => request.path.slice('/cloud/flap/'.length)));
      expect([...sent].sort()).toEqual(written.filter((key) => key !== 'big.bin').sort());
      const status = await syncStatus(daemon);
      expect(status.rules.find((rule: any) => rule.rule === 'flap')).toMatchObject({ backlog: 0, deadLettered: 0, dropped: 0 });
    } finally {
      await daemon.cleanup();
    }
  }, 120_000);

  it('deletes the local copy after a verified upload when the rule says so', async () => {
    await cloud.up();
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'logs', from: 'logs', to: 'cloud/logs/', deleteAfterUpload: true }]));
    try {
      // nothing asked of the cloud yet: neither reachable nor not (no alert on an idle gateway)
      expect((await outpost(daemon.socket, ['sync', 'status'])).stdout).toMatch(/^cloud S3  not asked yet; 0 uploaded/m);
      expect(await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text()).not.toMatch(/^outpost_sync_s3_online /m);
      await s3.send(new CreateBucketCommand({ Bucket: 'logs' }));
      await put(s3, 'logs', 'day-1.log', 'log of day 1');
      await eventually(async () => (await cloud.keys('cloud')).includes('logs/day-1.log'));
      await eventually(async () => {
        try {
          await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'day-1.log' }));
          return false;
        } catch (error) {
          return (error as Error).name === 'NoSuchKey';
        }
      });
      expect((await cloud.body('cloud', 'logs/day-1.log')).toString()).toBe('log of day 1');
      expect(await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text()).toMatch(/^outpost_sync_s3_online 1$/m);
    } finally {
      await daemon.cleanup();
    }
  });

  it('reads the local object store over HTTPS when s3.tls is on, its certificate issued by a CA the system does not know', async () => {
    await cloud.up();
    const pki = makeTestPki('unused');
    const daemon = await TestDaemon.start({ config: { ...gatewayConfig(cloud, [{ name: 'secure', from: 'secure', to: 'cloud/secure/' }]), s3: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey } } } });
    const s3 = new S3Client({
      endpoint: `https://127.0.0.1:${daemon.port('s3')}`, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
      credentials: await addKey(daemon), requestHandler: { httpsAgent: new Agent({ ca: readFileSync(pki.caCert) }) },
    });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'secure' }));
      await put(s3, 'secure', 'report.csv', 'a,b\n1,2\n');
      // the uploader waited for the local store for ever: its client refused the daemon's own certificate
      await eventually(async () => (await cloud.keys('cloud')).includes('secure/report.csv'), 15_000);
      await expectCloudBody(cloud, 'secure/report.csv', Buffer.from('a,b\n1,2\n'));
    } finally {
      s3.destroy();
      await daemon.cleanup();
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });

  it('keeps the local copy for another rule that uploads the same object, whichever rule deletes after upload', async () => {
    await cloud.up();
    // the deleting rule's item comes first: its deletion would leave the other rule's read nothing ("superseded")
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [
      { name: 'move', from: 'twice', to: 'cloud/moved/', deleteAfterUpload: true },
      { name: 'copy', from: 'twice', to: 'cloud/copied/' },
    ]));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'twice' }));
      await put(s3, 'twice', 'reading.csv', 'a,b\n1,2\n');
      await eventually(async () => { const keys = await cloud.keys('cloud'); return keys.includes('moved/reading.csv') && keys.includes('copied/reading.csv'); }, 10_000);
      expect((await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'copy')).toMatchObject({ backlog: 0, delivered: 1 });
    } finally {
      await daemon.cleanup();
    }
  });

  it('dead-letters an object whose cloud ETag never matches, and one the cloud refuses, without blocking the rest', async () => {
    await cloud.up();
    cloud.corruptEtag = (key) => key.includes('corrupt');
    const config = gatewayConfig(cloud, [
      { name: 'files', from: 'files', to: 'cloud/files/' },
      { name: 'nowhere', from: 'files/lost/', to: 'no-such-bucket/x/' },
    ], { sync: { maxAttempts: 2 } });
    const { daemon, s3 } = await startGateway(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'files' }));
      await put(s3, 'files', 'corrupt.bin', 'stored wrong in the cloud');
      await put(s3, 'files', 'lost/a.txt', 'for a bucket that does not exist');
      await put(s3, 'files', 'fine.txt', 'arrives');
      await eventually(async () => (await cloud.keys('cloud')).includes('files/fine.txt'), 10_000);
      const letters = await eventually(async () => {
        const run = await outpost(daemon.socket, ['sync', 'dlq', 'ls', '--json']);
        const { deadLetters } = JSON.parse(run.stdout);
        return deadLetters.length === 2 ? deadLetters : undefined;
      }, 10_000);
      const byRule = Object.fromEntries(letters.map((letter: any) => [letter.rule, letter]));
      expect(byRule.files).toMatchObject({ kind: 'object', localTopic: 'files/corrupt.bin', cloudTopic: 's3://cloud/files/corrupt.bin' });
      expect(byRule.files.reason).toMatch(/^ETagMismatch: PutObject returned ETag "0{32}", the data sent has [0-9a-f]{32} \(2 attempts\)$/);
      expect(byRule.nowhere.reason).toMatch(/^NoSuchBucket: /);
      // The refused item was tried once; the mismatching one twice (sync.maxAttempts).
      expect(cloud.requestsFor('PUT', 'no-such-bucket/x/lost/a.txt')).toHaveLength(1);
      expect(cloud.requestsFor('PUT', 'cloud/files/corrupt.bin')).toHaveLength(2);
      const status = await syncStatus(daemon);
      expect(status.rules.find((rule: any) => rule.rule === 'files')).toMatchObject({ backlog: 0, deadLettered: 1, delivered: 2 });
    } finally {
      cloud.corruptEtag = () => false;
      await daemon.cleanup();
    }
  });

  // The bus passes a durable subscriber's refusal back to the daemon's own publisher: the objects
  // service keeps the refused event in its queue, which, once full, answers 503 SlowDown.
  it('reject-new: a full outbox holds the object events back until the local S3 API answers 503 SlowDown', async () => {
    const config = {
      ...gatewayConfig(cloud, [{ name: 'strict', from: 'strict', to: 'cloud/strict/', overflow: 'reject-new' }], { sync: { maxBytes: 1 } }),
      s3: { maxPendingEvents: 2 },
    };
    const { daemon, s3 } = await startGateway(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'strict' }));
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) {
        outcomes.push(await put(s3, 'strict', `o${i}`, 'x').then(() => 'ok', (error: Error) => error.name));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect((await syncStatus(daemon)).rules.find((rule: any) => rule.rule === 'strict').rejected).toBeGreaterThan(0);
      expect(outcomes).toContain('SlowDown');
    } finally {
      await daemon.cleanup();
    }
  });
});
