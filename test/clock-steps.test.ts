import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { LIBFAKETIME } from './helpers/faketime.js';
import { outpost } from './helpers/mqtt.js';
import { writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';
import { CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { addKey, s3Client } from './helpers/objects.js';

const TICKER = `const { appendFileSync } = require('node:fs');
exports.handler = async (event) => { appendFileSync(process.env.OUT, JSON.stringify(event) + '\\n'); return 'ok'; };
`;

// A board without a real-time clock starts on a stale time, and NTP steps it later, by months or
// years. The daemon runs under libfaketime, its wall clock read from a file the test rewrites; the
// monotonic clock and timers run true, as under a real step.
describe.skipIf(!LIBFAKETIME)('wall-clock steps (libfaketime)', () => {
  const work = mkdtempSync(join(tmpdir(), 'outpost-clock-'));
  const clockFile = join(work, 'clock');
  const out = join(work, 'cron.jsonl');
  const slowOut = join(work, 'slow.jsonl');
  const code = writePackage({
    'template.yaml': JSON.stringify({ Resources: { EveryMinute: { Type: 'AWS::Serverless::Function', Properties: {
      Handler: 'index.handler', Runtime: 'nodejs20.x', Environment: { Variables: { OUT: out } },
      Events: { Tick: { Type: 'Schedule', Properties: { Schedule: 'cron(* * * * ? *)' } } },
    } }, OneAtATime: { Type: 'AWS::Serverless::Function', Properties: {
      Handler: 'slow.handler', Runtime: 'nodejs20.x', Environment: { Variables: { SLOW_OUT: slowOut } }, ReservedConcurrentExecutions: 1,
    } } } }),
    'index.js': TICKER,
    'slow.js': `const { appendFileSync } = require('node:fs');
exports.handler = async (event) => { await new Promise((r) => setTimeout(r, 1500)); appendFileSync(process.env.SLOW_OUT, JSON.stringify(event) + '\\n'); return 'ok'; };
`,
  });
  let daemon: TestDaemon;
  let started = 0;

  /** '@' names the time the process started at: to read `wall` now, the start moves back by the time run since. */
  const setClock = (wall: number) => {
    const startedAt = new Date(wall - (Date.now() - started)).toISOString().replace('T', ' ').slice(0, 19);
    writeFileSync(clockFile, `@${startedAt}\n`);
  };

  beforeAll(async () => {
    // '@' starts the clock there and lets it run; a minute ends 6 s after the start
    writeFileSync(clockFile, '@2026-06-01 11:59:54\n');
    started = Date.now();
    daemon = await TestDaemon.start({
      config: { s3: { share: { settleMs: 400 }, lifecycleIntervalSeconds: 1, abortIncompleteUploadsAfterSeconds: 3 } }, startTimeoutMs: 30_000,
      env: { TZ: 'UTC', LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    });
    const deployed = await outpost(daemon.socket, ['deploy', code.dir]);
    expect(deployed.code, deployed.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await daemon?.cleanup();
    code.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('fires a cron schedule on the minute, and once on the first minute after the clock steps a year ahead, staying up', async () => {
    // the first whole minute after the deploy (12:00, or a later one on a slow machine)
    await eventually(() => existsSync(out) && jsonLines(out).length >= 1, 75_000);
    expect(jsonLines(out)[0].time).toMatch(/^2026-06-01T12:0\d:00Z$/);
    // node-cron listed every minute a step skipped, in one go: a year's took the daemon's heap
    setClock(Date.parse('2027-06-01T12:00:54Z'));
    // the minute's timer was armed before the step: within a minute of it
    await eventually(() => jsonLines(out).some((event: { time: string }) => event.time.startsWith('2027-')), 75_000);
    const stepped = jsonLines(out).filter((event: { time: string }) => event.time.startsWith('2027-'));
    expect(stepped.length).toBe(1);
    expect((await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`)).status).toBe(200);
  }, 180_000);

  it('runs the asynchronous events queued before a step of years: none is taken for too old', async () => {
    for (let n = 0; n < 4; n++) {
      const sent = await outpost(daemon.socket, ['invoke', 'OneAtATime', '--async', '--payload', JSON.stringify({ n })]);
      expect(sent.code, sent.stderr).toBe(0);
    }
    // the default maximum event age is 6 hours: measured on the wall clock, all four were a year old
    setClock(Date.parse('2028-06-01T12:00:00Z'));
    await eventually(() => existsSync(slowOut) && jsonLines(slowOut).length === 4, 30_000);
    expect(jsonLines(slowOut).map((event: { n: number }) => event.n).sort()).toEqual([0, 1, 2, 3]);
    const letters = await outpost(daemon.socket, ['--json', 'dlq', 'ls']);
    expect(JSON.parse(letters.stdout).deadLetters ?? JSON.parse(letters.stdout)).toHaveLength(0);
  }, 60_000);

  it('adopts files written into the share around a step of the clock back by ten minutes', async () => {
    setClock(Date.now());
    const created = await outpost(daemon.socket, ['buckets', 'create', 'clock-share']);
    expect(created.code, created.stderr).toBe(0);
    const shareFile = (name: string) => join(daemon.dataDir, 'share', 'clock-share', name);
    await eventually(() => existsSync(join(daemon.dataDir, 'share', 'clock-share')), 10_000);
    // the new bucket's directory watched (the scan for new buckets runs as one is created)
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // its look was due at the wall time of its write plus the settle time: ten minutes away after
    // the step, and every path changed after it waited behind it (a step of ten minutes: the CLI
    // lists over S3, whose signatures stand 15 minutes of skew)
    writeFileSync(shareFile('before-step.txt'), 'written before the step');
    setClock(Date.now() - 600_000);
    writeFileSync(shareFile('after-step.txt'), 'written after the step');
    const listed = async () => (await outpost(daemon.socket, ['--json', 'objects', 'ls', 'clock-share'])).stdout;
    await eventually(async () => {
      const keys = await listed();
      return keys.includes('before-step.txt') && keys.includes('after-step.txt');
    }, 15_000);
  }, 60_000);

  it('expires objects by a lifecycle rule\'s days on the wall clock NTP set, not the stale one the daemon started on', async () => {
    setClock(Date.now());
    const cli = async (...args: string[]) => {
      const result = await outpost(daemon.socket, args);
      expect(result.code, result.stderr).toBe(0);
    };
    await cli('buckets', 'create', 'clock-expiry');
    await cli('buckets', 'lifecycle', 'clock-expiry', '--expire-days', '1', '--prefix', 'old/');
    const local = join(work, 'still.jpg');
    writeFileSync(local, 'jpeg');
    await cli('objects', 'put', local, 'clock-expiry', 'old/still.jpg');
    await cli('objects', 'put', local, 'clock-expiry', 'keep/still.jpg');
    const shareFile = (key: string) => join(daemon.dataDir, 'share', 'clock-expiry', key);
    await eventually(() => existsSync(shareFile('old/still.jpg')) && existsSync(shareFile('keep/still.jpg')), 10_000);
    // NTP steps the clock three days ahead: the object written a day and more before the last midnight is expired
    setClock(Date.now() + 3 * 24 * 3600 * 1000);
    await eventually(() => !existsSync(shareFile('old/still.jpg')), 15_000);
    expect(existsSync(shareFile('keep/still.jpg'))).toBe(true);
    setClock(Date.now());
  }, 60_000);

  it('aborts a multipart upload begun after NTP set the clock s3.abortIncompleteUploadsAfterSeconds after it began, not at a restart', async () => {
    // the daemon started on 2026-06-01; NTP sets today's time, which the SDK signs with too
    setClock(Date.now());
    const s3 = s3Client(daemon, await addKey(daemon));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'clock-uploads' }));
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'clock-uploads', Key: 'left/behind.bin' }));
      const listed = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: 'clock-uploads' }))).Uploads?.map((upload) => upload.UploadId) ?? [];
      expect(await listed()).toEqual([UploadId]);
      await eventually(async () => !(await listed()).includes(UploadId), 15_000, 200);
    } finally {
      s3.destroy();
    }
  }, 60_000);
});
