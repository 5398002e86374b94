import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, DeleteBucketTaggingCommand,
  DeleteObjectTaggingCommand, GetBucketTaggingCommand, GetObjectCommand, GetObjectTaggingCommand, HeadBucketCommand, PutBucketTaggingCommand, HeadObjectCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand, PutObjectTaggingCommand, UploadPartCommand,
  type S3Client, S3ServiceException, type Tag,
} from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, awsEnv, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';
import { outpost } from './helpers/mqtt.js';
import { objectEventRecorders } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';
import { Sha256 } from './helpers/sigv4.js';

const run = promisify(execFile);

async function failure(request: Promise<unknown>): Promise<{ code: string; message: string; status?: number; extra: Record<string, unknown> }> {
  const error = await request.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(S3ServiceException);
  const { name, message, $metadata, $response, ...extra } = error as S3ServiceException & Record<string, unknown>;
  void $response;
  return { code: name, message, status: $metadata.httpStatusCode, extra };
}

describe('object tagging (S3 Put/Get/DeleteObjectTagging, x-amz-tagging)', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let credentials: S3Credentials;
  let fn: { dir: string; remove: () => void };
  const events = () => jsonLines(join(fn.dir, 'events.jsonl'));
  const tagsOf = async (key: string) => (await s3.send(new GetObjectTaggingCommand({ Bucket: 'farm', Key: key }))).TagSet;

  beforeAll(async () => {
    fn = objectEventRecorders('OnTagging', 'farm');
    daemon = await TestDaemon.start({ config: { s3: { minPartBytes: 1024 } } });
    const deployed = await outpost(daemon.socket, ['deploy', fn.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
    credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
    await s3.send(new CreateBucketCommand({ Bucket: 'farm' }));
  });
  afterAll(async () => {
    s3?.destroy();
    expect(daemon.logs.filter((line) => line.level >= 50)).toEqual([]);
    await daemon.cleanup();
    fn.remove();
  });

  it('keeps the tags of a PUT in their order, counts them on GET and HEAD, and replaces or removes them without touching the object', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'north/t1.csv', Body: '21.5', Tagging: 'site=farm%201&kind=temp&H%C3%B6he=420+m&__proto__=x%2By&empty' }));
    const given: Tag[] = [{ Key: 'site', Value: 'farm 1' }, { Key: 'kind', Value: 'temp' }, { Key: 'Höhe', Value: '420 m' }, { Key: '__proto__', Value: 'x+y' },
      { Key: 'empty', Value: '' }];
    expect(await tagsOf('north/t1.csv')).toEqual(given);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'farm', Key: 'north/t1.csv' }));
    expect(head.TagCount).toBe(5);
    expect((await s3.send(new GetObjectCommand({ Bucket: 'farm', Key: 'north/t1.csv' }))).TagCount).toBe(5);

    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'north/t1.csv', Tagging: { TagSet: [{ Key: 'state', Value: 'checked' }, { Key: 'by', Value: 'ops@site:2' }] } }));
    expect(await tagsOf('north/t1.csv')).toEqual([{ Key: 'state', Value: 'checked' }, { Key: 'by', Value: 'ops@site:2' }]);
    const after = await s3.send(new HeadObjectCommand({ Bucket: 'farm', Key: 'north/t1.csv' }));
    // S3: tagging is a sub-resource; the object, its ETag and Last-Modified stay
    expect(after).toMatchObject({ TagCount: 2, ETag: head.ETag, LastModified: head.LastModified, ContentLength: 4 });

    expect((await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'farm', Key: 'north/t1.csv' }))).$metadata.httpStatusCode).toBe(204);
    expect(await tagsOf('north/t1.csv')).toEqual([]);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'farm', Key: 'north/t1.csv' }))).TagCount).toBeUndefined();
    // an empty TagSet removes them too; a new PUT of the key without tags has none
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'north/t1.csv', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'north/t1.csv', Tagging: { TagSet: [] } }));
    expect(await tagsOf('north/t1.csv')).toEqual([]);
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'north/t2.csv', Body: '1', Tagging: 'a=1' }));
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'north/t2.csv', Body: '2' }));
    expect(await tagsOf('north/t2.csv')).toEqual([]);
    // a large object (a file, not a row) keeps them the same way
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'north/big.bin', Body: Buffer.alloc(200_000, 7), Tagging: 'size=large' }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'north/big.bin', Tagging: { TagSet: [{ Key: 'size', Value: 'still large' }] } }));
    const big = await s3.send(new GetObjectCommand({ Bucket: 'farm', Key: 'north/big.bin' }));
    expect([big.TagCount, (await big.Body!.transformToByteArray()).length]).toEqual([1, 200_000]);
  });

  it('gives a multipart upload the tags of its CreateMultipartUpload, and a copy the source\'s or its own (x-amz-tagging-directive)', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'farm', Key: 'video/clip.mp4', Tagging: 'camera=gate&night' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'farm', Key: 'video/clip.mp4', UploadId, PartNumber: 1, Body: Buffer.alloc(2048, 1) }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'farm', Key: 'video/clip.mp4', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    expect(await tagsOf('video/clip.mp4')).toEqual([{ Key: 'camera', Value: 'gate' }, { Key: 'night', Value: '' }]);

    await s3.send(new CopyObjectCommand({ Bucket: 'farm', Key: 'video/copy.mp4', CopySource: 'farm/video/clip.mp4' }));
    expect(await tagsOf('video/copy.mp4')).toEqual([{ Key: 'camera', Value: 'gate' }, { Key: 'night', Value: '' }]);
    await s3.send(new CopyObjectCommand({ Bucket: 'farm', Key: 'video/copy.mp4', CopySource: 'farm/video/clip.mp4', TaggingDirective: 'REPLACE', Tagging: 'kept=forever' }));
    expect(await tagsOf('video/copy.mp4')).toEqual([{ Key: 'kept', Value: 'forever' }]);
    await s3.send(new CopyObjectCommand({ Bucket: 'farm', Key: 'video/copy.mp4', CopySource: 'farm/video/clip.mp4', TaggingDirective: 'REPLACE' }));
    expect(await tagsOf('video/copy.mp4')).toEqual([]);
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'farm', Key: 'video/other.mp4', CopySource: 'farm/video/clip.mp4', TaggingDirective: 'MERGE' as never }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400, message: 'Unknown tagging directive.' });
  });

  it('refuses tags S3 refuses, with its errors, and changes nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'kept.txt', Body: 'x', Tagging: 'keep=me' }));
    const tagSet = (count: number) => Array.from({ length: count }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const documents: Array<[Tag[], Record<string, unknown>]> = [
      [tagSet(11), { code: 'BadRequest', status: 400, message: 'Object tags cannot be greater than 10' }],
      [[{ Key: 'k'.repeat(129), Value: 'v' }], { code: 'InvalidTag', status: 400, message: 'The TagKey you have provided is invalid' }],
      [[{ Key: '', Value: 'v' }], { code: 'InvalidTag', message: 'The TagKey you have provided is invalid' }],
      [[{ Key: 'k', Value: 'v'.repeat(257) }], { code: 'InvalidTag', message: 'The TagValue you have provided is invalid' }],
      [[{ Key: 'platform', Value: 'metal,openstack' }], { code: 'InvalidTag', message: 'The TagValue you have provided is invalid', extra: { TagKey: 'platform', TagValue: 'metal,openstack' } }],
      [[{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }], { code: 'InvalidTag', message: 'Cannot provide multiple Tags with the same key', extra: { TagKey: 'a' } }],
      [[{ Key: 'aws:cloudformation:stack-name', Value: 'v' }], { code: 'InvalidTag', message: 'Your TagKey cannot be prefixed with aws:' }],
    ];
    for (const [TagSet, refusal] of documents) {
      expect(await failure(s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'kept.txt', Tagging: { TagSet } }))), JSON.stringify(TagSet).slice(0, 80)).toMatchObject(refusal);
    }
    // 10 keys of 128 characters and values of 256 (characters, not bytes) are within
    const longest = Array.from({ length: 10 }, (_, i) => ({ Key: `${i}`.padEnd(128, 'ä'), Value: 'é'.repeat(256) }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'kept.txt', Tagging: { TagSet: longest } }));
    expect(await tagsOf('kept.txt')).toEqual(longest);
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'kept.txt', Tagging: { TagSet: [{ Key: 'keep', Value: 'me' }] } }));

    const headers: Array<[string, Record<string, unknown>]> = [
      ['a=1&a=2', { code: 'InvalidArgument', message: "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates." }],
      ['=v', { code: 'InvalidArgument' }],
      ['k=v=w', { code: 'InvalidArgument' }],
      ['k=%ZZ', { code: 'InvalidArgument' }],
      ['k=%FF', { code: 'InvalidArgument' }],
      ['k=(v)', { code: 'InvalidTag', message: 'The TagValue you have provided is invalid' }],
      [tagSet(11).map(({ Key, Value }) => `${Key}=${Value}`).join('&'), { code: 'BadRequest', message: 'Object tags cannot be greater than 10' }],
    ];
    for (const [Tagging, refusal] of headers) {
      expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'refused.txt', Body: 'x', Tagging }))), Tagging).toMatchObject({ status: 400, ...refusal });
      expect(await failure(s3.send(new CreateMultipartUploadCommand({ Bucket: 'farm', Key: 'refused.txt', Tagging }))), Tagging).toMatchObject({ status: 400, ...refusal });
    }
    expect((await failure(s3.send(new HeadObjectCommand({ Bucket: 'farm', Key: 'refused.txt' })))).status).toBe(404);
    // what S3 takes of a header: empty pairs skipped, a key alone has an empty value
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'lenient.txt', Body: 'x', Tagging: '&&solo&k=' }));
    expect(await tagsOf('lenient.txt')).toEqual([{ Key: 'solo', Value: '' }, { Key: 'k', Value: '' }]);

    expect(await failure(s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'missing.txt', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }))))
      .toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(s3.send(new DeleteObjectTaggingCommand({ Bucket: 'farm', Key: 'missing.txt' })))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(s3.send(new GetObjectTaggingCommand({ Bucket: 'farm', Key: 'kept.txt', VersionId: 'v2' })))).toMatchObject({ status: 400 });
    expect(await tagsOf('kept.txt')).toEqual([{ Key: 'keep', Value: 'me' }]);
  });

  it('takes a Tagging document only with a digest of it, and refuses one that is not well-formed', async () => {
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Sha256 as never, uriEscapePath: false, applyChecksum: false });
    const port = daemon.port('s3');
    const send = async (body: string, headers: Record<string, string> = {}) => {
      const signed = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port, path: '/farm/kept.txt', query: { tagging: '' },
        headers: { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), ...headers }, body });
      const response = await fetch(`http://127.0.0.1:${port}/farm/kept.txt?tagging`, { method: 'PUT', headers: signed.headers, body });
      return [response.status, /<Code>([^<]*)<\/Code><Message>([^<]*)</.exec(await response.text())?.slice(1)];
    };
    const document = '<Tagging><TagSet><Tag><Key>raw</Key><Value>1</Value></Tag></TagSet></Tagging>';
    expect(await send(document)).toEqual([400, ['InvalidRequest', 'Missing required header for this request: Content-MD5']]);
    const md5 = (text: string) => createHash('md5').update(text).digest('base64');
    for (const malformed of ['<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>', '<Tagging/>', '<Tagging><TagSet><Tag>', 'tags']) {
      expect(await send(malformed, { 'content-md5': md5(malformed) }), malformed).toEqual([400, ['MalformedXML', expect.any(String)]]);
    }
    expect(await tagsOf('kept.txt')).toEqual([{ Key: 'keep', Value: 'me' }]);
    expect(await send(document, { 'content-md5': md5(document) })).toEqual([200, undefined]);
    expect(await tagsOf('kept.txt')).toEqual([{ Key: 'raw', Value: '1' }]);
  });

  it('keeps a bucket\'s tags (Put/Get/DeleteBucketTagging, CreateBucket\'s Tags), 50 at most, apart from its objects\'', async () => {
    const bucketTags = async (Bucket: string) => (await s3.send(new GetBucketTaggingCommand({ Bucket }))).TagSet;
    const noTagSet = { code: 'NoSuchTagSet', status: 404, message: 'The TagSet does not exist', extra: { BucketName: 'depot' } };
    const tagSet = (count: number) => Array.from({ length: count }, (_, i) => ({ Key: `cost-centre:${i}`, Value: `team ${i}` }));
    await s3.send(new CreateBucketCommand({ Bucket: 'depot' }));
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'depot' })))).toMatchObject(noTagSet);

    const put = await s3.send(new PutBucketTaggingCommand({ Bucket: 'depot', Tagging: { TagSet: tagSet(50) } }));
    expect(put.$metadata.httpStatusCode).toBe(204);
    expect(await bucketTags('depot')).toEqual(tagSet(50));
    await s3.send(new PutObjectCommand({ Bucket: 'depot', Key: 'untagged.txt', Body: 'x' }));
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'depot', Key: 'untagged.txt' }))).TagSet).toEqual([]);

    // each tag is checked before their number (S3's order); nothing changes
    const refusals: Array<[Tag[], Record<string, unknown>]> = [
      [tagSet(51), { code: 'BadRequest', status: 400, message: 'Bucket tag count cannot be greater than 50' }],
      [[...tagSet(51), { Key: 'bad,key', Value: 'v' }], { code: 'InvalidTag', status: 400, message: 'The TagKey you have provided is invalid' }],
      [[{ Key: 'aws:createdBy', Value: 'me' }], { code: 'InvalidTag', message: 'Your TagKey cannot be prefixed with aws:' }],
      [[{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }], { code: 'InvalidTag', message: 'Cannot provide multiple Tags with the same key' }],
    ];
    for (const [TagSet, refusal] of refusals) {
      expect(await failure(s3.send(new PutBucketTaggingCommand({ Bucket: 'depot', Tagging: { TagSet } }))), JSON.stringify(TagSet).slice(-60)).toMatchObject(refusal);
    }
    expect(await bucketTags('depot')).toEqual(tagSet(50));

    // an empty TagSet leaves none, as DeleteBucketTagging does (204 whether there were tags or not)
    await s3.send(new PutBucketTaggingCommand({ Bucket: 'depot', Tagging: { TagSet: [] } }));
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'depot' })))).toMatchObject(noTagSet);
    await s3.send(new PutBucketTaggingCommand({ Bucket: 'depot', Tagging: { TagSet: [{ Key: 'site', Value: 'north' }] } }));
    expect((await s3.send(new DeleteBucketTaggingCommand({ Bucket: 'depot' }))).$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new DeleteBucketTaggingCommand({ Bucket: 'depot' }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'depot' })))).toMatchObject(noTagSet);
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'no-such-depot' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(await failure(s3.send(new PutBucketTaggingCommand({ Bucket: 'no-such-depot', Tagging: { TagSet: tagSet(1) } })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });

    // CreateBucket's CreateBucketConfiguration.Tags: the bucket's first tags; refused ones make no bucket
    await s3.send(new CreateBucketCommand({ Bucket: 'depot-tagged', CreateBucketConfiguration: { Tags: [{ Key: 'site', Value: 'south' }, { Key: 'owner', Value: 'ops' }] } }));
    expect(await bucketTags('depot-tagged')).toEqual([{ Key: 'site', Value: 'south' }, { Key: 'owner', Value: 'ops' }]);
    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: 'depot-refused', CreateBucketConfiguration: { Tags: [{ Key: 'aws:x', Value: '1' }] } }))))
      .toMatchObject({ code: 'InvalidTag', status: 400 });
    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: 'depot-refused', CreateBucketConfiguration: { Tags: tagSet(51) } }))))
      .toMatchObject({ code: 'BadRequest', message: 'Bucket tag count cannot be greater than 50' });
    expect((await failure(s3.send(new HeadBucketCommand({ Bucket: 'depot-refused' })))).status).toBe(404);
    // a bucket made again under a deleted one's name has no tags
    await s3.send(new DeleteBucketCommand({ Bucket: 'depot-tagged' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'depot-tagged' }));
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'depot-tagged' })))).toMatchObject({ code: 'NoSuchTagSet' });
  });

  it('records ObjectTagging:Put and ObjectTagging:Delete events (eventVersion 2.3) for the rules that ask for them', async () => {
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: 'farm', NotificationConfiguration: {
      LambdaFunctionConfigurations: [{ Id: 'tags', LambdaFunctionArn: 'OnTagging', Events: ['s3:ObjectTagging:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'events/' }] } } }],
    } }));
    const { ETag } = await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'events/a b.txt', Body: 'seen', Tagging: 'at=put' }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'events/a b.txt', Tagging: { TagSet: [{ Key: 'state', Value: 'checked' }] } }));
    await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'farm', Key: 'events/a b.txt' }));
    await eventually(() => events().length >= 2, 15_000);
    const records = events().map((event) => event.Records[0]);
    expect(records.map((record) => record.eventName)).toEqual(['ObjectTagging:Put', 'ObjectTagging:Delete']);
    for (const record of records) {
      expect(record).toMatchObject({ eventVersion: '2.3', eventSource: 'aws:s3', userIdentity: { principalId: `AWS:${credentials.accessKeyId}` },
        s3: { configurationId: 'tags', bucket: { name: 'farm' }, object: { key: 'events/a+b.txt', size: 4, eTag: ETag!.replaceAll('"', '') } } });
    }
  });

  it('keeps acknowledged tags through kill -9', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'crash/put.txt', Body: 'x', Tagging: 'via=put' }));
    await s3.send(new PutObjectCommand({ Bucket: 'farm', Key: 'crash/tagged.txt', Body: 'y' }));
    await s3.send(new PutObjectTaggingCommand({ Bucket: 'farm', Key: 'crash/tagged.txt', Tagging: { TagSet: [{ Key: 'via', Value: 'tagging' }] } }));
    await s3.send(new PutBucketTaggingCommand({ Bucket: 'farm', Tagging: { TagSet: [{ Key: 'via', Value: 'bucket' }] } }));
    await daemon.kill();
    s3.destroy();
    daemon = await TestDaemon.start({ config: { s3: { minPartBytes: 1024 } }, dataDir: daemon.dataDir });
    s3 = s3Client(daemon, credentials);
    expect(await tagsOf('crash/put.txt')).toEqual([{ Key: 'via', Value: 'put' }]);
    expect(await tagsOf('crash/tagged.txt')).toEqual([{ Key: 'via', Value: 'tagging' }]);
    expect((await s3.send(new GetBucketTaggingCommand({ Bucket: 'farm' }))).TagSet).toEqual([{ Key: 'via', Value: 'bucket' }]);
  });

  it('outpost objects put --tag tags the object', async () => {
    const file = join(fn.dir, 'reading.csv');
    writeFileSync(file, '21.5\n');
    const put = await outpost(daemon.socket, ['objects', 'put', '--tag', 'site=farm 1', '--tag', 'unit=C', '--tag', 'night', file, 'farm/cli/']);
    expect(put, put.stderr).toMatchObject({ code: 0 });
    expect(await tagsOf('cli/reading.csv')).toEqual([{ Key: 'site', Value: 'farm 1' }, { Key: 'unit', Value: 'C' }, { Key: 'night', Value: '' }]);
    const refused = await outpost(daemon.socket, ['objects', 'put', '--tag', 'aws:x=1', file, 'farm/cli/refused.csv']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Your TagKey cannot be prefixed with aws:');
  });

  it('works with the AWS CLI and boto3', async () => {
    const env = awsEnv(daemon, await addKey(daemon));
    const aws = async (...args: string[]) => (await run('/usr/bin/aws', ['--endpoint-url', s3Endpoint(daemon), '--output', 'json', 's3api', ...args], { env, timeout: 60_000 })).stdout;
    await aws('put-object', '--bucket', 'farm', '--key', 'cli.txt', '--tagging', 'source=cli');
    await aws('put-object-tagging', '--bucket', 'farm', '--key', 'cli.txt', '--tagging', 'TagSet=[{Key=source,Value=cli},{Key=checked,Value=yes}]');
    expect(JSON.parse(await aws('get-object-tagging', '--bucket', 'farm', '--key', 'cli.txt'))).toEqual({ TagSet: [{ Key: 'source', Value: 'cli' }, { Key: 'checked', Value: 'yes' }] });
    expect(JSON.parse(await aws('get-object', '--bucket', 'farm', '--key', 'cli.txt', '/dev/null')).TagCount).toBe(2);
    await aws('put-bucket-tagging', '--bucket', 'farm', '--tagging', 'TagSet=[{Key=site,Value=farm 1},{Key=owner,Value=ops}]');
    expect(JSON.parse(await aws('get-bucket-tagging', '--bucket', 'farm'))).toEqual({ TagSet: [{ Key: 'site', Value: 'farm 1' }, { Key: 'owner', Value: 'ops' }] });
    await aws('delete-bucket-tagging', '--bucket', 'farm');

    const script = `
import boto3, botocore, json, os, tempfile
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='us-east-1',
                  config=botocore.config.Config(signature_version='s3v4', s3={'addressing_style': 'path'}))
with tempfile.NamedTemporaryFile() as f:
    f.write(b'from boto3')
    f.flush()
    s3.upload_file(f.name, 'farm', 'boto.txt', ExtraArgs={'Tagging': 'source=boto3&site=north'})
s3.put_object_tagging(Bucket='farm', Key='boto.txt', Tagging={'TagSet': s3.get_object_tagging(Bucket='farm', Key='boto.txt')['TagSet'] + [{'Key': 'seen', 'Value': 'yes'}]})
print(json.dumps(s3.get_object_tagging(Bucket='farm', Key='boto.txt')['TagSet']))
s3.put_bucket_tagging(Bucket='farm', Tagging={'TagSet': [{'Key': 'by', 'Value': 'boto3'}]})
print(json.dumps(s3.get_bucket_tagging(Bucket='farm')['TagSet']))
`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script], { env, timeout: 30_000 });
    const [objectTags, bucketTags] = stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(objectTags).toEqual([{ Key: 'source', Value: 'boto3' }, { Key: 'site', Value: 'north' }, { Key: 'seen', Value: 'yes' }]);
    expect(bucketTags).toEqual([{ Key: 'by', Value: 'boto3' }]);
  });
});
