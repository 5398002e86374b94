import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetBucketNotificationConfigurationCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand, UploadPartCommand,
  type S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { adminRequest, outpost } from './helpers/mqtt.js';
import { objectEventRecorders } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

describe('object events: S3 event records to functions and the local bus', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let fn: { dir: string; remove: () => void };
  const outFile = () => join(fn.dir, 'events.jsonl');
  const linesOf = jsonLines;
  const events = () => linesOf(outFile());

  beforeAll(async () => {
    fn = objectEventRecorders('OnUpload', 'cameras');
    daemon = await TestDaemon.start({ config: {
      s3: { minPartBytes: 1024 },
    } });
    const deployed = await outpost(daemon.socket, ['deploy', fn.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
    const credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
    await s3.send(new CreateBucketCommand({ Bucket: 'cameras' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await daemon.cleanup();
    fn.remove();
  });

  it('stores a notification configuration with function targets and filters, and returns it', async () => {
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: 'cameras', NotificationConfiguration: {
      LambdaFunctionConfigurations: [{
        Id: 'jpegs-in', LambdaFunctionArn: 'arn:aws:lambda:local:000000000000:function:OnUpload', Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'],
        Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'in/' }, { Name: 'suffix', Value: '.jpg' }] } },
      }],
    } }));
    const stored = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: 'cameras' }));
    expect(stored.LambdaFunctionConfigurations).toEqual([{
      Id: 'jpegs-in', LambdaFunctionArn: 'arn:aws:lambda:local:000000000000:function:OnUpload', Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'],
      Filter: { Key: { FilterRules: [{ Name: 'Prefix', Value: 'in/' }, { Name: 'Suffix', Value: '.jpg' }] } },
    }]);
  });

  it('refuses rules naming a function that is not deployed or an unknown event', async () => {
    for (const [arn, event] of [['NoSuchFunction', 's3:ObjectCreated:*'], ['OnUpload', 's3:ObjectAcl:Put']]) {
      const error = await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: 'cameras', NotificationConfiguration: {
        LambdaFunctionConfigurations: [{ LambdaFunctionArn: arn, Events: [event as never] }],
      } })).catch((e: S3ServiceException) => e);
      expect(error).toBeInstanceOf(S3ServiceException);
      expect((error as S3ServiceException).name).toBe('InvalidArgument');
    }
    expect((await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: 'cameras' }))).LambdaFunctionConfigurations).toHaveLength(1);
  });

  it('runs the function on a PUT with the exact S3 event record, and publishes it on the bus', async () => {
    const body = 'a red flower';
    const started = Date.now();
    await s3.send(new PutObjectCommand({ Bucket: 'cameras', Key: 'in/red flower.jpg', Body: body }));
    const [event] = await eventually(() => events().length === 1 && events());
    expect(event).toEqual({ Records: [{
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      eventName: 'ObjectCreated:Put',
      userIdentity: { principalId: expect.stringMatching(/^AWS:AKIA/) },
      requestParameters: { sourceIPAddress: '127.0.0.1' },
      responseElements: { 'x-amz-request-id': expect.stringMatching(/^[0-9A-F]{16}$/), 'x-amz-id-2': expect.any(String) },
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'jpegs-in',
        bucket: { name: 'cameras', ownerIdentity: { principalId: '000000000000' }, arn: 'arn:aws:s3:::cameras' },
        object: { key: 'in/red+flower.jpg', size: body.length, eTag: createHash('md5').update(body).digest('hex'), sequencer: expect.stringMatching(/^[0-9A-F]{16}$/) },
      },
    }] });
    expect(Date.parse(event.Records[0].eventTime)).toBeGreaterThanOrEqual(started - 1000);
    expect(Object.keys(event.Records[0].s3)).toEqual(['s3SchemaVersion', 'configurationId', 'bucket', 'object']);
    const [onBus] = await eventually(() => linesOf(join(fn.dir, 'bus.jsonl')).length >= 1 && linesOf(join(fn.dir, 'bus.jsonl')));
    expect(onBus.Records[0]).toMatchObject({ eventName: 'ObjectCreated:Put', s3: { object: { key: 'in/red+flower.jpg' } } });
    expect(onBus.Records[0].s3.configurationId).toBeUndefined();
  });

  it('filters by prefix and suffix, and names copies, multipart completions and deletes', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'cameras', Key: 'out/skip.jpg', Body: 'x' }));
    await s3.send(new PutObjectCommand({ Bucket: 'cameras', Key: 'in/skip.png', Body: 'x' }));
    await s3.send(new CopyObjectCommand({ Bucket: 'cameras', Key: 'in/copy.jpg', CopySource: 'cameras/in/red flower.jpg' }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'cameras', Key: 'in/parts.jpg' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'cameras', Key: 'in/parts.jpg', UploadId, PartNumber: 1, Body: 'only part' }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'cameras', Key: 'in/parts.jpg', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'cameras', Key: 'in/copy.jpg' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'cameras', Key: 'in/never-existed.jpg' }));
    const all = await eventually(() => events().length >= 4 && events());
    await new Promise((resolve) => setTimeout(resolve, 300));
    const names = events().slice(1).map((e) => [e.Records[0].eventName, e.Records[0].s3.object.key]);
    expect(names.sort()).toEqual([
      ['ObjectCreated:CompleteMultipartUpload', 'in/parts.jpg'],
      ['ObjectCreated:Copy', 'in/copy.jpg'],
      ['ObjectRemoved:Delete', 'in/copy.jpg'],
    ]);
    const removed = all.find((e) => e.Records[0].eventName === 'ObjectRemoved:Delete').Records[0].s3.object;
    expect(Object.keys(removed)).toEqual(['key', 'sequencer']);
    const multipart = events().find((e) => e.Records[0].eventName === 'ObjectCreated:CompleteMultipartUpload').Records[0].s3.object;
    expect(multipart.eTag).toMatch(/^[0-9a-f]{32}-1$/);
  });

  it('manages buckets and rules with outpost buckets, and objects with outpost objects', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'logs'])).stdout).toBe('created bucket logs\n');
    const invalid = await outpost(daemon.socket, ['buckets', 'create', 'Bad_Name']);
    expect(invalid).toMatchObject({ code: 1, stderr: expect.stringContaining('outpost: invalid bucket name "Bad_Name": expected 3-63 characters of a-z 0-9 . -') });
    const notify = await outpost(daemon.socket, ['buckets', 'notify', 'logs', '--function', 'OnUpload', '--events', 's3:ObjectCreated:Put', '--suffix', '.log', '--id', 'logs-in']);
    expect(notify.code, notify.stderr).toBe(0);
    expect(notify.stdout).toContain('logs-in');
    const missing = await outpost(daemon.socket, ['buckets', 'notify', 'logs', '--function', 'Nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('outpost: InvalidArgument: Unable to validate the following destination configurations (Nope: The destination function does not exist)\n');
    const listed = JSON.parse((await outpost(daemon.socket, ['--json', 'buckets', 'ls'])).stdout);
    expect(listed.buckets.map((b: any) => [b.name, b.rules])).toEqual([['cameras', 1], ['logs', 1]]);
    // rules added at the same time are all kept
    const added = await Promise.all(['a', 'b', 'c', 'd'].map((id) => adminRequest(daemon.socket, 'POST', '/v1/buckets/logs/notification',
      JSON.stringify({ function: 'OnUpload', prefix: `${id}/`, id: `at-once-${id}` }))));
    expect(added.map((answer) => answer?.status)).toEqual([200, 200, 200, 200]);
    const rules = JSON.parse((await outpost(daemon.socket, ['--json', 'buckets', 'notify', 'logs'])).stdout).rules;
    expect(rules.map((rule: any) => rule.id).sort()).toEqual(['at-once-a', 'at-once-b', 'at-once-c', 'at-once-d', 'logs-in']);
    expect((await outpost(daemon.socket, ['buckets', 'notify', 'logs', '--clear'])).code).toBe(0);
    expect((await outpost(daemon.socket, ['buckets', 'notify', 'logs', '--function', 'OnUpload', '--events', 's3:ObjectCreated:Put', '--suffix', '.log', '--id', 'logs-in'])).code).toBe(0);

    const local = join(fn.dir, 'today.log');
    writeFileSync(local, 'line one\n');
    const put = await outpost(daemon.socket, ['objects', 'put', local, 'logs', 'gw/today.log']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toMatch(/^uploaded logs\/gw\/today.log "[0-9a-f]{32}"\n$/);
    await eventually(() => events().some((e) => e.Records[0].s3.bucket.name === 'logs'));
    const ls = await outpost(daemon.socket, ['objects', 'ls', 'logs']);
    expect(ls.stdout).toContain('gw/today.log');
    const target = join(fn.dir, 'back.log');
    expect((await outpost(daemon.socket, ['objects', 'get', 'logs', 'gw/today.log', target])).code).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('line one\n');
    const absent = await outpost(daemon.socket, ['objects', 'get', 'logs', 'nope', target]);
    expect(absent).toMatchObject({ code: 1, stderr: 'outpost: NoSuchKey: The specified key does not exist.\n' });
    // files that cannot be read or written: the system's error, no stack trace, nothing uploaded or left behind
    expect(await outpost(daemon.socket, ['objects', 'put', join(fn.dir, 'missing.log'), 'logs'])).toMatchObject({
      code: 1, stderr: `outpost: ENOENT: no such file or directory, open '${join(fn.dir, 'missing.log')}'\n` });
    expect(await outpost(daemon.socket, ['objects', 'put', fn.dir, 'logs', 'dir'])).toMatchObject({ code: 1, stderr: `outpost: ${fn.dir} is not a regular file\n` });
    // as aws s3 cp, a download makes the directories its file goes in
    expect(await outpost(daemon.socket, ['objects', 'get', 'logs', 'gw/today.log', join(fn.dir, 'no-dir', 'x.log')])).toMatchObject({ code: 0 });
    expect(readFileSync(join(fn.dir, 'no-dir', 'x.log'), 'utf8')).toBe('line one\n');
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'objects', 'ls', 'logs'])).stdout).objects.map((o: any) => o.key)).toEqual(['gw/today.log']);
    expect((await outpost(daemon.socket, ['objects', 'rm', 'logs', 'gw/today.log'])).stdout).toBe('deleted logs/gw/today.log\n');
    expect((await outpost(daemon.socket, ['buckets', 'notify', 'logs', '--clear'])).stdout).toBe('no notification rules on logs\n');
    expect((await outpost(daemon.socket, ['buckets', 'rm', 'logs'])).stdout).toBe('deleted bucket logs\n');
  });

  it('takes objects with outpost objects as the AWS CLI names them: s3://BUCKET/KEY, or BUCKET/KEY', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'logs'])).code).toBe(0);
    const local = join(fn.dir, 'today.log');
    writeFileSync(local, 'line one\n');
    const target = join(fn.dir, 'again.log');
    // a KEY ending in / takes the file's name
    expect((await outpost(daemon.socket, ['objects', 'put', local, 's3://logs/gw/'])).stdout).toMatch(/^uploaded logs\/gw\/today.log "[0-9a-f]{32}"\n$/);
    expect((await outpost(daemon.socket, ['objects', 'put', local, 'logs/gw/copy.log'])).stdout).toMatch(/^uploaded logs\/gw\/copy.log /);
    expect(await outpost(daemon.socket, ['objects', 'put', local, 'logs/gw/a.log', 'b.log'])).toMatchObject({
      code: 2, stderr: 'outpost: give the key either in logs/gw/a.log or as an argument, not both\n(add --help for usage)\n' });
    const listed = (await outpost(daemon.socket, ['objects', 'ls', 's3://logs/gw/c'])).stdout;
    expect(listed).toContain('gw/copy.log');
    expect(listed).not.toContain('gw/today.log');
    expect((await outpost(daemon.socket, ['objects', 'get', 's3://logs/gw/copy.log', target])).code).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('line one\n');
    expect((await outpost(daemon.socket, ['objects', 'rm', 's3://logs/gw/today.log', 'logs/gw/copy.log'])).stdout).toBe('deleted logs/gw/today.log\ndeleted logs/gw/copy.log\n');
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'objects', 'ls', 'logs'])).stdout).objects).toEqual([]);
    expect((await outpost(daemon.socket, ['buckets', 'rm', 'logs'])).stdout).toBe('deleted bucket logs\n');
  });
});
