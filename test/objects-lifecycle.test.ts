import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketLifecycleCommand, GetObjectCommand, UploadPartCommand, GetBucketLifecycleConfigurationCommand, HeadObjectCommand, PutObjectTaggingCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, PutBucketLifecycleConfigurationCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand,
  type LifecycleRule, type S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import { TestDaemon } from './helpers/daemon.js';
import { LIBFAKETIME } from './helpers/faketime.js';
import { addKey, awsEnv, daemonWithBucket, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';
import { outpost } from './helpers/mqtt.js';
import { objectEventRecorders } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

const run = promisify(execFile);

const DAY_MS = 24 * 3600 * 1000;

/** What S3 answered a request with: its error code, message and status. */
async function refusal(request: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  const error = await request.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(S3ServiceException);
  const s3 = error as S3ServiceException;
  return { name: s3.name, message: s3.message, status: s3.$metadata.httpStatusCode };
}

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, (error: S3ServiceException) => {
    if (error.$metadata?.httpStatusCode === 404) return false;
    throw error;
  });
}

describe('bucket lifecycle configuration (S3 Put/Get/DeleteBucketLifecycle)', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let credentials: S3Credentials;
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ daemon, s3, credentials, cleanup } = await daemonWithBucket('logs'));
  });
  afterAll(() => cleanup?.());

  const rules: LifecycleRule[] = [
    { ID: 'logs', Filter: { Prefix: 'logs/' }, Status: 'Enabled', Expiration: { Days: 30 } },
    { ID: 'videos', Filter: { And: { Prefix: 'video/', ObjectSizeGreaterThan: 1000, ObjectSizeLessThan: 5_000_000 } }, Status: 'Disabled',
      Expiration: { Date: new Date('2030-01-01T00:00:00Z') } },
    { ID: 'legacy', Prefix: 'tmp/', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } },
    { ID: 'small', Filter: { ObjectSizeLessThan: 10 }, Status: 'Enabled', Expiration: { Days: 1 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
  ];

  it('stores a configuration and returns it as given; deleting it leaves NoSuchLifecycleConfiguration', async () => {
    expect(await refusal(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'logs' }))))
      .toEqual({ name: 'NoSuchLifecycleConfiguration', message: 'The lifecycle configuration does not exist', status: 404 });
    const put = await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'logs', LifecycleConfiguration: { Rules: rules } }));
    expect(put.TransitionDefaultMinimumObjectSize).toBe('all_storage_classes_128K');
    const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'logs' }));
    expect(got.Rules).toEqual(rules);
    expect(got.TransitionDefaultMinimumObjectSize).toBe('all_storage_classes_128K');
    expect((await s3.send(new DeleteBucketLifecycleCommand({ Bucket: 'logs' }))).$metadata.httpStatusCode).toBe(204);
    expect((await refusal(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'logs' })))).name).toBe('NoSuchLifecycleConfiguration');
    // as S3: 204 with none to delete
    expect((await s3.send(new DeleteBucketLifecycleCommand({ Bucket: 'logs' }))).$metadata.httpStatusCode).toBe(204);
  });

  it('aws s3api put-bucket-lifecycle-configuration and get-bucket-lifecycle-configuration round trip', async () => {
    const env = awsEnv(daemon, credentials);
    const aws = (...args: string[]) => run('/usr/bin/aws', ['--endpoint-url', s3Endpoint(daemon), ...args], { env, timeout: 60_000 });
    const configuration = { Rules: [
      { ID: 'camera', Filter: { Prefix: 'camera/' }, Status: 'Enabled', Expiration: { Days: 90 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } },
      { ID: 'everything', Filter: {}, Status: 'Enabled', Expiration: { Date: '2031-06-01T00:00:00+00:00' } },
    ] };
    await aws('s3api', 'put-bucket-lifecycle-configuration', '--bucket', 'logs', '--lifecycle-configuration', JSON.stringify(configuration));
    const got = JSON.parse((await aws('s3api', 'get-bucket-lifecycle-configuration', '--bucket', 'logs')).stdout);
    expect(got.Rules).toEqual([
      configuration.Rules[0],
      { ...configuration.Rules[1], Expiration: { Date: expect.stringMatching(/^2031-06-01T00:00:00(\.000)?(Z|\+00:00)$/) } },
    ]);
  });

  it('refuses what S3 refuses, and what the gateway would not honour, and keeps the configuration it had', async () => {
    const kept: LifecycleRule[] = [{ ID: 'kept', Filter: { Prefix: 'a/' }, Status: 'Enabled', Expiration: { Days: 3 } }];
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'logs', LifecycleConfiguration: { Rules: kept } }));
    const put = (ruleList: LifecycleRule[]) => refusal(s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'logs', LifecycleConfiguration: { Rules: ruleList } })));
    const rule = (changes: Partial<LifecycleRule>): LifecycleRule => ({ ID: 'r', Filter: { Prefix: 'b/' }, Status: 'Enabled', Expiration: { Days: 1 }, ...changes });
    expect(await put([rule({ Expiration: { Days: 0 } })]))
      .toEqual({ name: 'InvalidArgument', message: "'Days' for Expiration action must be a positive integer", status: 400 });
    expect(await put([rule({ Expiration: { Date: new Date('2030-01-01T12:00:00Z') } })]))
      .toEqual({ name: 'InvalidArgument', message: "'Date' must be at midnight GMT", status: 400 });
    expect(await put([rule({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 0 } })]))
      .toEqual({ name: 'InvalidArgument', message: "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer", status: 400 });
    expect(await put([rule({}), rule({ Filter: { Prefix: 'c/' } })]))
      .toEqual({ name: 'InvalidArgument', message: 'Rule ID must be unique. Found same ID for more than one rule', status: 400 });
    expect(await put([rule({ ID: 'x'.repeat(256) })])).toMatchObject({ name: 'InvalidArgument', status: 400 });
    expect(await put([rule({ Expiration: undefined })]))
      .toEqual({ name: 'InvalidRequest', message: 'At least one action needs to be specified in a rule', status: 400 });
    expect(await put([rule({ Filter: { And: { ObjectSizeGreaterThan: 100, ObjectSizeLessThan: 100 } } })])).toMatchObject({ name: 'InvalidArgument', status: 400 });
    // an And of one predicate, and a Filter of two without And
    expect(await put([rule({ Filter: { And: { Prefix: 'b/' } } })])).toMatchObject({ name: 'MalformedXML', status: 400 });
    expect(await put([rule({ Filter: { Prefix: 'b/', ObjectSizeGreaterThan: 100 } })])).toMatchObject({ name: 'MalformedXML', status: 400 });
    expect(await put([rule({ Filter: undefined })])).toMatchObject({ name: 'MalformedXML', status: 400 });
    expect(await put(Array.from({ length: 1001 }, (_, i) => rule({ ID: `r${i}` })))).toMatchObject({ name: 'MalformedXML', status: 400 });
    // tag filters: tags as S3 takes them, and not with AbortIncompleteMultipartUpload (an upload has none)
    expect(await put([rule({ Filter: { Tag: { Key: 'aws:class', Value: 'temp' } } })])).toMatchObject({ name: 'InvalidTag', status: 400 });
    expect(await put([rule({ Filter: { Tag: { Key: 'class', Value: 'temp' } }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })]))
      .toEqual({ name: 'InvalidRequest', message: 'AbortIncompleteMultipartUpload cannot be specified with Tags.', status: 400 });
    expect(await put([rule({ Filter: { And: { Tags: [{ Key: 'class', Value: 'temp' }] } } })])).toMatchObject({ name: 'MalformedXML', status: 400 });
    // what needs storage classes or versions: refused, not stored and ignored
    for (const unsupported of [
      rule({ Transitions: [{ Days: 30, StorageClass: 'GLACIER' }] }),
      rule({ NoncurrentVersionExpiration: { NoncurrentDays: 5 } }),
      rule({ NoncurrentVersionTransitions: [{ NoncurrentDays: 5, StorageClass: 'GLACIER' }] }),
    ]) {
      expect(await put([unsupported])).toMatchObject({ name: 'NotImplemented', status: 501 });
    }
    // S3 takes this PUT only with a digest of its body: Content-MD5 or an x-amz-checksum-*
    const undigested = s3Client(daemon, credentials);
    undigested.middlewareStack.addRelativeTo((next: FinalizeHandler<object, MetadataBearer>) => async (args: FinalizeHandlerArguments<object>) => {
      const { headers } = args.request as { headers: Record<string, string> };
      for (const name of Object.keys(headers)) if (/^(content-md5|x-amz-checksum-|x-amz-sdk-checksum-algorithm)/i.test(name)) delete headers[name];
      return next(args);
    }, { relation: 'before', toMiddleware: 'httpSigningMiddleware' });
    expect(await refusal(undigested.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'logs', LifecycleConfiguration: { Rules: [rule({})] } }))))
      .toEqual({ name: 'InvalidRequest', message: 'Missing required header for this request: Content-MD5', status: 400 });
    undigested.destroy();
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'logs' }))).Rules).toEqual(kept);
  });

  it('names an object\'s expiry and rule in x-amz-expiration (PUT, HEAD, GET, copy, multipart), the earliest of the rules matching it', async () => {
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'logs', LifecycleConfiguration: { Rules: [
      { ID: 'camera stills', Filter: { Prefix: 'camera/' }, Status: 'Enabled', Expiration: { Days: 3 } },
      { ID: 'all', Filter: {}, Status: 'Enabled', Expiration: { Date: new Date('2031-06-01T00:00:00Z') } },
      { ID: 'off', Filter: { Prefix: 'camera/' }, Status: 'Disabled', Expiration: { Days: 1 } },
      { ID: 'uploads', Filter: { Prefix: 'keep/' }, Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
    ] } }));
    // S3: the creation time plus the days, rounded up to the next midnight UTC
    const expiryOf = (lastModified: Date) => new Date(Math.ceil((lastModified.getTime() + 3 * DAY_MS) / DAY_MS) * DAY_MS).toUTCString();
    const put = await s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'camera/a.jpg', Body: 'jpeg' }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'camera/a.jpg' }));
    const camera = `expiry-date="${expiryOf(head.LastModified!)}", rule-id="camera%20stills"`;
    expect([put.Expiration, head.Expiration]).toEqual([camera, camera]);
    expect((await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: 'camera/a.jpg' }))).Expiration).toBe(camera);
    const copy = await s3.send(new CopyObjectCommand({ Bucket: 'logs', Key: 'camera/b.jpg', CopySource: 'logs/camera/a.jpg' }));
    expect(copy.Expiration).toMatch(/^expiry-date="[^"]+ 00:00:00 GMT", rule-id="camera%20stills"$/);
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'logs', Key: 'other/video.bin' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'logs', Key: 'other/video.bin', UploadId: upload.UploadId, PartNumber: 1, Body: 'tiny' }));
    const completed = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'logs', Key: 'other/video.bin', UploadId: upload.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    expect(completed.Expiration).toBe('expiry-date="Sun, 01 Jun 2031 00:00:00 GMT", rule-id="all"');
    // without a matching expiration rule, no header
    await s3.send(new DeleteBucketLifecycleCommand({ Bucket: 'logs' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'logs', Key: 'camera/a.jpg' }))).Expiration).toBeUndefined();
    expect((await s3.send(new PutObjectCommand({ Bucket: 'logs', Key: 'camera/c.jpg', Body: 'jpeg' }))).Expiration).toBeUndefined();
  });

  it('outpost buckets lifecycle adds an expiration rule per prefix, lists the rules and clears them', async () => {
    const lifecycle = (...args: string[]) => outpost(daemon.socket, ['buckets', 'lifecycle', ...args]);
    expect((await outpost(daemon.socket, ['buckets', 'create', 'cli'])).code).toBe(0);
    expect(await lifecycle('cli')).toMatchObject({ code: 0, stdout: 'no lifecycle rules on cli\n' });
    expect((await lifecycle('cli', '--expire-days', '30', '--prefix', 'cams/')).code).toBe(0);
    expect((await lifecycle('cli', '--expire-days', '7')).code).toBe(0);
    // the prefix's rule again: replaced, not added
    expect((await lifecycle('cli', '--expire-days', '60', '--prefix', 'cams/')).code).toBe(0);
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'cli' }))).Rules).toEqual([
      { ID: 'expire', Filter: {}, Status: 'Enabled', Expiration: { Days: 7 } },
      { ID: 'expire cams/', Filter: { Prefix: 'cams/' }, Status: 'Enabled', Expiration: { Days: 60 } },
    ]);
    const listed = await lifecycle('cli');
    expect(listed.stdout).toMatch(/expire cams\/\s+Enabled\s+prefix cams\/\s+after 60 days\s+-/);
    expect(listed.stdout).toMatch(/expire\s+Enabled\s+every object\s+after 7 days/);
    for (const [args, error] of [
      [['--expire-days', '0'], '--expire-days takes a whole number of days, at least 1 (got "0")'],
      [['--prefix', 'x/'], 'give --expire-days N to add a rule (or --clear)'],
      [['--clear', '--expire-days', '3'], "error: option '--clear' cannot be used with option '--expire-days <days>'"],
    ]) {
      const refused = await lifecycle('cli', ...args);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(error);
    }
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'cli' }))).Rules).toHaveLength(2);
    // rules made over S3 that select by tag: the tags are in the table (a tag alone read "every object")
    expect((await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'cli', LifecycleConfiguration: { Rules: [
      { ID: 'only-tag', Status: 'Enabled', Filter: { Tag: { Key: 'keep', Value: 'no' } }, Expiration: { Days: 5 } },
      { ID: 'all-three', Status: 'Enabled', Filter: { And: { Prefix: 'lc/', ObjectSizeGreaterThan: 50, Tags: [{ Key: 'keep', Value: 'no' }, { Key: 'kind', Value: 'raw' }] } }, Expiration: { Days: 9 } },
    ] } }))).$metadata.httpStatusCode).toBe(200);
    const tagged = await lifecycle('cli');
    expect(tagged.stdout).toMatch(/only-tag\s+Enabled\s+tag keep=no\s+after 5 days/);
    expect(tagged.stdout).toMatch(/all-three\s+Enabled\s+prefix lc\/, size > 50, tag keep=no, tag kind=raw\s+after 9 days/);
    expect((await lifecycle('cli', '--clear')).code).toBe(0);
    expect((await refusal(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'cli' })))).name).toBe('NoSuchLifecycleConfiguration');
  });
});

describe('lifecycle expiration: objects a rule has expired are deleted, with LifecycleExpiration:Delete events', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let cleanup: (() => Promise<void>) | undefined;
  let fn: { dir: string; remove: () => void };
  const recorded = () => jsonLines(join(fn.dir, 'events.jsonl'));
  const onBus = () => jsonLines(join(fn.dir, 'bus.jsonl'));

  beforeAll(async () => {
    fn = objectEventRecorders('OnExpiry', 'expiring');
    ({ daemon, s3, cleanup } = await daemonWithBucket('expiring', { s3: { lifecycleIntervalSeconds: 1 } }));
    const deployed = await outpost(daemon.socket, ['deploy', fn.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });
  afterAll(async () => {
    await cleanup?.();
    fn?.remove();
  });

  it('deletes the objects of a rule dated in the past (file and object), keeps the others, and tells functions and the bus', async () => {
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: 'expiring', NotificationConfiguration: {
      LambdaFunctionConfigurations: [{ Id: 'expiry', LambdaFunctionArn: 'OnExpiry', Events: ['s3:LifecycleExpiration:*'] }],
    } }));
    const big = Buffer.alloc(200 * 1024, 7);
    // a small object held in SQLite, a large one a file first; an empty one the size filter keeps
    await s3.send(new PutObjectCommand({ Bucket: 'expiring', Key: 'old/small.txt', Body: 'small' }));
    await s3.send(new PutObjectCommand({ Bucket: 'expiring', Key: 'old/big.bin', Body: big }));
    await s3.send(new PutObjectCommand({ Bucket: 'expiring', Key: 'old/empty', Body: '' }));
    await s3.send(new PutObjectCommand({ Bucket: 'expiring', Key: 'keep/c.txt', Body: 'kept' }));
    const share = (key: string) => join(daemon.dataDir, 'share', 'expiring', key);
    await eventually(() => existsSync(share('old/small.txt')) && existsSync(share('old/big.bin')));
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'expiring', LifecycleConfiguration: { Rules: [
      { ID: 'old', Filter: { And: { Prefix: 'old/', ObjectSizeGreaterThan: 0 } }, Status: 'Enabled', Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
      { ID: 'keep', Filter: { Prefix: 'keep/' }, Status: 'Disabled', Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
    ] } }));
    await eventually(async () => !(await exists(s3, 'expiring', 'old/small.txt')) && !(await exists(s3, 'expiring', 'old/big.bin')), 15_000);
    // the files go right after the commit that removed the objects (a HEAD may come between)
    await eventually(() => !existsSync(share('old/small.txt')) && !existsSync(share('old/big.bin')), 5_000);
    expect(await exists(s3, 'expiring', 'old/empty')).toBe(true);
    expect(await exists(s3, 'expiring', 'keep/c.txt')).toBe(true);
    const events = await eventually(() => recorded().length >= 2 && recorded(), 15_000);
    expect(events.map((event) => event.Records[0].s3.object.key).sort()).toEqual(['old/big.bin', 'old/small.txt']);
    expect(events[0].Records[0]).toMatchObject({
      eventVersion: '2.3',
      eventName: 'LifecycleExpiration:Delete',
      userIdentity: { principalId: 's3.amazonaws.com' },
      requestParameters: { sourceIPAddress: 's3.amazonaws.com' },
      s3: { configurationId: 'expiry', bucket: { name: 'expiring' } },
    });
    const published = await eventually(() => onBus().filter((event) => event.Records[0].eventName === 'LifecycleExpiration:Delete').length >= 2 && onBus(), 15_000);
    expect(published.filter((event) => event.Records[0].eventName.startsWith('ObjectRemoved'))).toEqual([]);
    // an object written under the rule from now on expires too, as with S3's date rules
    await s3.send(new PutObjectCommand({ Bucket: 'expiring', Key: 'old/later.txt', Body: 'later' }));
    await eventually(async () => !(await exists(s3, 'expiring', 'old/later.txt')), 15_000);
  });

  it('expires a prefix of more objects than a pass reads at once, and none of the keys around it', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'paged' }));
    const keys = Array.from({ length: 600 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (const key of ['many', 'man/y', 'manz/after', ...keys]) await s3.send(new PutObjectCommand({ Bucket: 'paged', Key: key, Body: key }));
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'paged', LifecycleConfiguration: { Rules: [
      { ID: 'many', Filter: { Prefix: 'many/' }, Status: 'Enabled', Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
    ] } }));
    const left = async () => (await s3.send(new ListObjectsV2Command({ Bucket: 'paged' }))).Contents?.map((object) => object.Key);
    await eventually(async () => (await left())?.length === 3, 30_000, 200);
    expect(await left()).toEqual(['man/y', 'many', 'manz/after']);
  });

  it('expires the objects that have every tag of a rule\'s Tag or And filter, and keeps those retagged out of it', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'tagged' }));
    const objects: Array<[string, string | undefined]> = [
      ['scratch/a.csv', 'class=temp'], ['scratch/b.csv', 'class=temp&site=north'], ['scratch/c.csv', 'class=keep'], ['scratch/d.csv', undefined],
      ['other/e.csv', 'class=temp'], ['other/f.csv', 'class=temp&site=north'], ['other/g.csv', 'site=north'], ['other/retagged.csv', 'class=temp&site=north'],
    ];
    for (const [key, Tagging] of objects) await s3.send(new PutObjectCommand({ Bucket: 'tagged', Key: key, Body: key, Tagging }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'tagged', Key: 'other/retagged.csv', Tagging: { TagSet: [{ Key: 'site', Value: 'north' }] } }));
    const rules: LifecycleRule[] = [
      { ID: 'temp scratch', Filter: { And: { Prefix: 'scratch/', Tags: [{ Key: 'class', Value: 'temp' }] } }, Status: 'Enabled', Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
      { ID: 'north temp', Filter: { And: { Tags: [{ Key: 'class', Value: 'temp' }, { Key: 'site', Value: 'north' }] } }, Status: 'Enabled',
        Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
      { ID: 'kept', Filter: { Tag: { Key: 'class', Value: 'keep' } }, Status: 'Disabled', Expiration: { Date: new Date('2020-01-01T00:00:00Z') } },
    ];
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'tagged', LifecycleConfiguration: { Rules: rules } }));
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'tagged' }))).Rules).toEqual(rules);
    const left = async () => (await s3.send(new ListObjectsV2Command({ Bucket: 'tagged' }))).Contents?.map((object) => object.Key);
    await eventually(async () => (await left())?.length === 5, 30_000, 200);
    expect(await left()).toEqual(['other/e.csv', 'other/g.csv', 'other/retagged.csv', 'scratch/c.csv', 'scratch/d.csv']);
  });
});

// The daemon's wall clock set days ahead (libfaketime) across a restart: what days-old objects meet.
describe.skipIf(!LIBFAKETIME)('lifecycle expiration by days (libfaketime)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'outpost-lifecycle-'));
  const config = { s3: { lifecycleIntervalSeconds: 1 } };
  let daemon: TestDaemon | undefined;

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('expires objects and aborts uploads past their days, rounded to midnight UTC, after kill -9 and a restart', async () => {
    daemon = await TestDaemon.start({ config, dataDir });
    let s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'days' }));
    await s3.send(new PutObjectCommand({ Bucket: 'days', Key: 'logs/1.log', Body: 'one' }));
    await s3.send(new PutObjectCommand({ Bucket: 'days', Key: 'other/2.log', Body: 'two' }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket: 'days', Key: 'logs/upload.bin' }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket: 'days', Key: 'other/upload.bin' }));
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: 'days', LifecycleConfiguration: { Rules: [
      { ID: 'logs', Filter: { Prefix: 'logs/' }, Status: 'Enabled', Expiration: { Days: 1 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
      { ID: 'later', Prefix: 'other/', Status: 'Enabled', Expiration: { Days: 3 } },
    ] } }));
    // passes meanwhile find nothing expired yet
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(await exists(s3, 'days', 'logs/1.log')).toBe(true);
    s3.destroy();
    // kill -9: the configuration, acknowledged, is on disk
    await daemon.kill();

    // two days on: past creation + 1 day rounded up to midnight, short of + 3 days rounded up
    const ahead = 2 * DAY_MS;
    daemon = await TestDaemon.start({ config, dataDir, env: { TZ: 'UTC', LD_PRELOAD: LIBFAKETIME, FAKETIME: '+2d', FAKETIME_DONT_FAKE_MONOTONIC: '1' } });
    s3 = s3Client(daemon, await addKey(daemon), { systemClockOffset: ahead });
    expect((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'days' }))).Rules?.map((rule) => rule.ID)).toEqual(['logs', 'later']);
    await eventually(async () => !(await exists(s3, 'days', 'logs/1.log')), 15_000);
    expect(await exists(s3, 'days', 'other/2.log')).toBe(true);
    const uploads = await eventually(async () => {
      const listed = (await s3.send(new ListMultipartUploadsCommand({ Bucket: 'days' }))).Uploads ?? [];
      return listed.length === 1 && listed;
    }, 15_000);
    expect(uploads.map((upload) => upload.Key)).toEqual(['other/upload.bin']);
    s3.destroy();
  });
});
