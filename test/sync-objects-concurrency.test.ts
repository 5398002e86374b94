import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { CloudS3, type CloudRequest } from './helpers/cloud-s3.js';
import { expectCloudBody, gatewayConfig, startGateway, syncStatus } from './helpers/gateway.js';

// cloud.s3.concurrency: several uploads in flight at once (a long round trip otherwise caps a
// gateway at a few objects a second), one key's uploads still one at a time and in order, and a
// prefix the cloud denies holding back only its rule's uploads.

const MiB = 1024 * 1024;
const ruleStatus = async (daemon: TestDaemon, rule: string) => (await syncStatus(daemon)).rules.find((row: any) => row.rule === rule);
const put = (s3: S3Client, bucket: string, key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const isPut = (prefix: string) => (request: CloudRequest) => request.method === 'PUT' && request.path.startsWith(`/cloud/${prefix}`);

describe('sync: several object uploads at a time', () => {
  let cloud: CloudS3;
  beforeAll(async () => {
    cloud = await CloudS3.create(['cloud']);
  });
  afterAll(async () => {
    await cloud?.destroy();
  });

  it.each([4, 1])('keeps up to cloud.s3.concurrency (%i) uploads in the cloud\'s hands at once over a slow link, shown in the status', async (concurrency) => {
    await cloud.up();
    const prefix = `slow${concurrency}/`;
    // every PutObject takes the link a second and a half (a satellite round trip or so)
    cloud.holdMs = (request) => (isPut(prefix)(request) ? 1500 : 0);
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'stills', from: 'stills', to: `cloud/${prefix}` }], { cloudS3: { concurrency } }));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'stills' }));
      // three rounds' worth: the status is read while uploads are held
      const keys = Array.from({ length: 3 * concurrency }, (_, i) => `still-${i}.jpg`);
      for (const key of keys) await put(s3, 'stills', key, `image ${key}`);
      const busy = await eventually(async () => {
        const { uploads } = await syncStatus(daemon);
        return uploads.inFlight.length === concurrency && uploads;
      }, 10_000, 50);
      expect(busy.current).toEqual(busy.inFlight[0]);
      expect(busy.inFlight.map((upload: any) => upload.rule)).toEqual(Array(concurrency).fill('stills'));
      // and the CLI names each
      await eventually(async () => {
        const { stdout } = await outpost(daemon.socket, ['sync', 'status']);
        return stdout.match(/stills\/still-\d+\.jpg \(\d+ B of \d+ B\)/g)?.length === concurrency;
      }, 10_000, 50);

      await eventually(async () => (await ruleStatus(daemon, 'stills'))?.backlog === 0, 20_000, 100);
      expect((await cloud.keys('cloud')).filter((key) => key.startsWith(prefix)).sort()).toEqual(keys.map((key) => `${prefix}${key}`).sort());
      expect(cloud.mostAtOnce(isPut(prefix))).toBe(concurrency);
      expect((await syncStatus(daemon)).uploads).toMatchObject({ online: true, uploaded: keys.length, inFlight: [], current: null });
    } finally {
      cloud.holdMs = () => 0;
      await daemon.cleanup();
    }
  });

  it('starts a higher priority rule\'s upload before the backlog of a lower one', async () => {
    await cloud.down();
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [
      { name: 'bulk', from: 'ranked/bulk/', to: 'cloud/ranked/', priority: 1 },
      { name: 'alarms', from: 'ranked/alarms/', to: 'cloud/ranked/', priority: 9 },
    ]));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'ranked' }));
      for (let i = 0; i < 8; i++) await put(s3, 'ranked', `bulk/${i}.log`, `bulk ${i}`);
      await put(s3, 'ranked', 'alarms/door.jpg', 'written last');
      await eventually(async () => (await ruleStatus(daemon, 'alarms'))?.backlog === 1 && (await ruleStatus(daemon, 'bulk'))?.backlog === 8);
      const sentBefore = cloud.requests.length;
      await cloud.up();
      await eventually(async () => (await ruleStatus(daemon, 'bulk'))?.backlog === 0 && (await ruleStatus(daemon, 'alarms'))?.backlog === 0, 15_000, 100);
      const puts = cloud.requests.slice(sentBefore).filter(isPut('ranked/')).filter((request) => request.status === 200);
      expect(puts[0].path).toBe('/cloud/ranked/alarms/door.jpg');
      expect(puts).toHaveLength(9);
    } finally {
      await daemon.cleanup();
    }
  });

  it('shares cloud.s3.maxBytesPerSecond among the uploads in flight rather than giving each its own', async () => {
    await cloud.down();
    const cap = 512 * 1024;
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'capped', from: 'capped', to: 'cloud/capped/' }], { cloudS3: { maxBytesPerSecond: cap } }));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'capped' }));
      for (let i = 0; i < 4; i++) await s3.send(new PutObjectCommand({ Bucket: 'capped', Key: `log-${i}`, Body: randomBytes(256 * 1024) }));
      await eventually(async () => (await ruleStatus(daemon, 'capped'))?.backlog === 4);
      await cloud.up();
      await eventually(async () => (await ruleStatus(daemon, 'capped'))?.backlog === 0, 20_000, 100);
      const puts = cloud.requests.filter(isPut('capped/')).filter((request) => request.status === 200);
      expect(puts).toHaveLength(4);
      expect(cloud.mostAtOnce((request) => puts.includes(request))).toBeGreaterThan(1);
      // 1 MiB at 512 KiB/s, less the one burst (a tenth of a second) the bucket lets through at once: 1.9 s at least
      const lasted = Math.max(...puts.map((request) => request.answered!)) - Math.min(...puts.map((request) => request.arrived));
      expect(lasted).toBeGreaterThan(1500);
    } finally {
      await daemon.cleanup();
    }
  });

  it('stops every multipart upload in flight, each going on after its confirmed parts at the next start', async () => {
    await cloud.up();
    // 2 × 11 MiB in 5 MiB parts, both in flight under one 8 MiB/s cap
    const config = gatewayConfig(cloud, [{ name: 'videos', from: 'videos', to: 'cloud/videos/' }], { cloudS3: { partBytes: 5 * MiB, maxBytesPerSecond: 8 * MiB } });
    let gateway = await startGateway(config);
    const { dataDir } = gateway.daemon;
    try {
      await gateway.s3.send(new CreateBucketCommand({ Bucket: 'videos' }));
      const videos = { 'a.bin': randomBytes(11 * MiB), 'b.bin': randomBytes(11 * MiB) };
      for (const [key, body] of Object.entries(videos)) await gateway.s3.send(new PutObjectCommand({ Bucket: 'videos', Key: key, Body: body }));
      const parts = (key: string) => cloud.requestsFor('PUT', `cloud/videos/${key}`).filter((request) => request.query.has('partNumber'));
      // part 1 of each is confirmed before its part 2 starts: stop with both on their way
      await eventually(() => Object.keys(videos).every((key) => parts(key).some((request) => request.query.get('partNumber') === '2')), 20_000, 20);
      expect(await gateway.daemon.stop()).toBe(0);
      const before = Object.fromEntries(Object.keys(videos).map((key) => [key, parts(key).length]));

      gateway = await startGateway(config, dataDir);
      await eventually(async () => (await ruleStatus(gateway.daemon, 'videos'))?.backlog === 0, 30_000, 200);
      for (const [key, body] of Object.entries(videos)) {
        const resent = parts(key).slice(before[key]).map((request) => request.query.get('partNumber'));
        // part 2 is sent again unless its answer came, and was committed, before the stop took
        // effect (a stop slowed by a busy host): then only part 3 is
        const part2Answered = parts(key).slice(0, before[key]).some((request) => request.query.get('partNumber') === '2' && request.status === 200);
        expect(part2Answered ? [['2', '3'], ['3']] : [['2', '3']]).toContainEqual(resent);
        expect(new Set(parts(key).map((request) => request.query.get('uploadId'))).size).toBe(1);
        await expectCloudBody(cloud, `videos/${key}`, body);
      }
    } finally {
      await gateway.daemon.cleanup();
    }
  }, 60_000);

  it('uploads the versions of one key one at a time and in write order: a slow earlier version does not overwrite a later one', async () => {
    await cloud.up();
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [{ name: 'logs', from: 'logs', to: 'cloud/versions/' }]));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'logs' }));
      // the first version's PutObject is slow; the second, written while it is on its way, is not
      let firstVersion = true;
      cloud.holdMs = (request) => {
        if (!isPut('versions/today.log')(request) || !firstVersion) return 0;
        firstVersion = false;
        return 1500;
      };
      await put(s3, 'logs', 'today.log', 'version 1');
      await eventually(() => cloud.requestsFor('PUT', 'cloud/versions/today.log').length === 1, 10_000, 20);
      await put(s3, 'logs', 'today.log', 'version 2');
      await put(s3, 'logs', 'other.log', 'not held back');
      // another key goes meanwhile
      await eventually(async () => (await cloud.keys('cloud')).includes('versions/other.log'), 10_000);
      expect(cloud.requestsFor('PUT', 'cloud/versions/today.log')).toHaveLength(1);

      await eventually(async () => (await ruleStatus(daemon, 'logs'))?.backlog === 0, 15_000, 100);
      const puts = cloud.requestsFor('PUT', 'cloud/versions/today.log');
      expect(puts).toHaveLength(2);
      expect(puts[1].arrived).toBeGreaterThanOrEqual(puts[0].answered!);
      await eventually(async () => (await cloud.body('cloud', 'versions/today.log')).toString() === 'version 2', 5000, 100).catch(() => undefined);
      expect((await cloud.body('cloud', 'versions/today.log')).toString()).toBe('version 2');
    } finally {
      cloud.holdMs = () => 0;
      await daemon.cleanup();
    }
  });

  it('goes on with the other rules while the cloud denies one rule\'s prefix (403 AccessDenied), and sends that rule\'s once allowed', async () => {
    await cloud.up();
    let denying = true;
    cloud.deny = (request) => denying && isPut('denied/')(request);
    const { daemon, s3 } = await startGateway(gatewayConfig(cloud, [
      { name: 'denied', from: 'cams/door/', to: 'cloud/denied/' },
      { name: 'open', from: 'cams/yard/', to: 'cloud/open/' },
    ], { cloudS3: { refusedRetryMaxMs: 2000 } }));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'cams' }));
      // the denied rule's objects come first, so they lead the outbox
      for (let i = 0; i < 6; i++) await put(s3, 'cams', `door/${i}.jpg`, `door ${i}`);
      await eventually(async () => (await ruleStatus(daemon, 'denied'))?.backlog === 6);
      for (let i = 0; i < 6; i++) await put(s3, 'cams', `yard/${i}.jpg`, `yard ${i}`);
      await eventually(async () => (await ruleStatus(daemon, 'open'))?.backlog === 0, 15_000, 100);
      expect((await cloud.keys('cloud')).filter((key) => key.startsWith('open/'))).toHaveLength(6);

      // the denied rule waits, nothing dead-lettered, its retries one at a time and further apart
      const refused = await eventually(async () => {
        const status = await syncStatus(daemon);
        const rule = status.rules.find((row: any) => row.rule === 'denied');
        const later = Date.parse(status.uploads.refusedRules[0]?.nextAttempt ?? '') - Date.now() > 500;
        return rule.lastFailure !== null && later && cloud.requests.filter(isPut('denied/')).length >= 6 && status;
      }, 20_000, 100);
      const denied = refused.rules.find((row: any) => row.rule === 'denied');
      expect(denied).toMatchObject({ backlog: 6, deadLettered: 0 });
      expect(denied.lastFailure.reason).toMatch(/^AccessDenied: /);
      // the rule is refused, not the link, which the other rule's uploads keep reachable all along
      expect(refused.uploads).toMatchObject({ refused: false, online: true, lastError: null, refusedRules: [{ rule: 'denied', reason: expect.stringMatching(/^AccessDenied: /) }] });
      const refusedTries = cloud.requests.filter(isPut('denied/')).length;
      expect(daemon.logs.filter((entry) => entry.msg === 'cloud S3 unreachable; uploads wait' || /^cloud S3 refuses the uploads/.test(entry.msg))).toEqual([]);
      // one error for the rule's refusal, however many tries it refused
      expect(refusedTries).toBeGreaterThanOrEqual(6);
      expect(daemon.logs.filter((entry) => entry.level === 50 && entry.rule === 'denied' && /^cloud S3 refuses the rule's uploads/.test(entry.msg))).toHaveLength(1);
      const { stdout: text } = await outpost(daemon.socket, ['sync', 'status']);
      expect(text).toMatch(/cloud S3 {2}reachable since .*; refuses rule denied's uploads since \S+ \(AccessDenied: [^;]*; next attempt \S+\)/);
      // past the (at most 4) uploads under way when the first refusal came back, one try per wait
      // (at least retryMinMs, 100 ms), not one per waiting object
      const tries = cloud.requests.filter(isPut('denied/'));
      for (let i = 4; i < tries.length; i++) expect(tries[i].arrived - tries[i - 1].answered!).toBeGreaterThan(50);

      // the operator changes the policy: the next try goes through, and the rest follow
      denying = false;
      await eventually(async () => (await ruleStatus(daemon, 'denied'))?.backlog === 0, 20_000, 200);
      expect((await cloud.keys('cloud')).filter((key) => key.startsWith('denied/'))).toHaveLength(6);
      expect((await syncStatus(daemon)).uploads).toMatchObject({ online: true, refused: false, refusedRules: [] });
      expect(daemon.logs.some((entry) => entry.rule === 'denied' && entry.msg === "cloud S3 takes the rule's uploads again")).toBe(true);
    } finally {
      cloud.deny = () => false;
      await daemon.cleanup();
    }
  }, 60_000);
});
