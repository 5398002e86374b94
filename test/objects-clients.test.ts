import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, TestDaemon } from './helpers/daemon.js';
import { addKey, awsEnv, s3Endpoint } from './helpers/objects.js';
import { template, writePackage } from './helpers/functions.js';
import { outpost } from './helpers/mqtt.js';

const run = promisify(execFile);
const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

describe('S3 API with the AWS CLI, boto3, rclone, s3cmd and restic', () => {
  let daemon: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let work: string;
  /** A deployed function, the target of the notification configurations. */
  let fn: { dir: string; remove: () => void };
  const aws = async (...args: string[]) => {
    try {
      const { stdout } = await run('/usr/bin/aws', ['--endpoint-url', s3Endpoint(daemon), ...args], { env, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
      return { code: 0, stdout, stderr: '' };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    env = awsEnv(daemon, await addKey(daemon));
    work = mkdtempSync(join(tmpdir(), 'outpost-s3-clients-'));
    fn = writePackage({ 'index.js': 'exports.handler = async () => {};\n', 'template.yaml': template('OnObject', { Handler: 'index.handler' }) });
    expect(await outpost(daemon.socket, ['deploy', fn.dir])).toMatchObject({ code: 0 });
  });
  afterAll(async () => {
    await daemon.cleanup();
    fn?.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('aws s3 mb, cp (single and multipart), ls, sync both ways, presign, rm and rb', async () => {
    expect(await aws('s3', 'mb', 's3://cli-bucket')).toMatchObject({ code: 0, stdout: 'make_bucket: cli-bucket\n' });
    const small = join(work, 'note.txt');
    writeFileSync(small, 'hello from the aws cli\n');
    expect((await aws('s3', 'cp', small, 's3://cli-bucket/notes/note.txt')).code).toBe(0);
    // 20 MiB: the CLI uploads it in 8 MiB parts
    const big = join(work, 'big.bin');
    const bigContent = randomBytes(20 * 1024 * 1024);
    writeFileSync(big, bigContent);
    const upload = await aws('s3', 'cp', big, 's3://cli-bucket/big.bin');
    expect(upload.code, upload.stderr).toBe(0);
    const head = JSON.parse((await aws('s3api', 'head-object', '--bucket', 'cli-bucket', '--key', 'big.bin')).stdout);
    expect(head.ContentLength).toBe(bigContent.length);
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-3"$/);
    const back = join(work, 'big.back');
    expect((await aws('s3', 'cp', 's3://cli-bucket/big.bin', back)).code).toBe(0);
    expect(md5(readFileSync(back))).toBe(md5(bigContent));
    expect(readFileSync(join(daemon.dataDir, 'share', 'cli-bucket', 'big.bin')).equals(bigContent)).toBe(true);

    const listed = await aws('s3', 'ls', 's3://cli-bucket/', '--recursive');
    expect(listed.stdout).toMatch(/ 20971520 big\.bin\n/);
    expect(listed.stdout).toMatch(/ 23 notes\/note\.txt\n/);

    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'a.txt'), 'a');
    writeFileSync(join(tree, 'sub', 'b.txt'), 'bb');
    // files older than their upload, as a sync finds them: S3's times are whole seconds, so a file
    // written in the second of its upload is newer than its object, and synced again (as on S3)
    const aMinuteAgo = Date.now() / 1000 - 60;
    for (const file of [join(tree, 'a.txt'), join(tree, 'sub', 'b.txt')]) utimesSync(file, aMinuteAgo, aMinuteAgo);
    expect((await aws('s3', 'sync', tree, 's3://cli-bucket/tree')).code).toBe(0);
    expect((await aws('s3', 'sync', tree, 's3://cli-bucket/tree')).stdout).toBe('');
    const mirror = join(work, 'mirror');
    expect((await aws('s3', 'sync', 's3://cli-bucket/tree', mirror)).code).toBe(0);
    expect(readFileSync(join(mirror, 'sub', 'b.txt'), 'utf8')).toBe('bb');
    // the files it wrote have their objects' times to the second, as listed: nothing to do again
    expect((await aws('s3', 'sync', 's3://cli-bucket/tree', mirror, '--exact-timestamps')).stdout).toBe('');

    const url = (await aws('s3', 'presign', 's3://cli-bucket/notes/note.txt', '--expires-in', '60')).stdout.trim();
    expect(await (await fetch(url)).text()).toBe('hello from the aws cli\n');

    expect((await aws('s3', 'rm', 's3://cli-bucket/', '--recursive')).code).toBe(0);
    expect((await aws('s3', 'ls', 's3://cli-bucket/', '--recursive')).stdout).toBe('');
    expect(await aws('s3', 'rb', 's3://cli-bucket')).toMatchObject({ code: 0, stdout: 'remove_bucket: cli-bucket\n' });
  }, 120_000);

  it('aws s3api: put-object with Content-MD5, ranges, listings, versions, delete-objects and error codes', async () => {
    expect((await aws('s3api', 'create-bucket', '--bucket', 'api-bucket')).code).toBe(0);
    const file = join(work, 'api.txt');
    writeFileSync(file, '0123456789');
    const digest = createHash('md5').update('0123456789').digest('base64');
    const put = JSON.parse((await aws('s3api', 'put-object', '--bucket', 'api-bucket', '--key', 'd/api.txt', '--body', file, '--content-md5', digest,
      '--metadata', 'source=cli', '--content-type', 'text/plain')).stdout);
    expect(put.ETag).toBe(`"${md5('0123456789')}"`);
    const wrong = await aws('s3api', 'put-object', '--bucket', 'api-bucket', '--key', 'bad.txt', '--body', file, '--content-md5', createHash('md5').update('x').digest('base64'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('BadDigest');
    const ranged = join(work, 'ranged.txt');
    const got = JSON.parse((await aws('s3api', 'get-object', '--bucket', 'api-bucket', '--key', 'd/api.txt', '--range', 'bytes=3-5', ranged)).stdout);
    expect(got).toMatchObject({ ContentRange: 'bytes 3-5/10', ContentType: 'text/plain', Metadata: { source: 'cli' } });
    expect(readFileSync(ranged, 'utf8')).toBe('345');
    const bad = await aws('s3api', 'get-object', '--bucket', 'api-bucket', '--key', 'd/api.txt', '--range', 'bytes=50-60', ranged);
    expect(bad.stderr).toContain('InvalidRange');
    const v2 = JSON.parse((await aws('s3api', 'list-objects-v2', '--bucket', 'api-bucket', '--delimiter', '/')).stdout);
    expect(v2.CommonPrefixes).toEqual([{ Prefix: 'd/' }]);
    const v1 = JSON.parse((await aws('s3api', 'list-objects', '--bucket', 'api-bucket', '--prefix', 'd/')).stdout);
    expect(v1.Contents.map((o: any) => o.Key)).toEqual(['d/api.txt']);
    const versions = JSON.parse((await aws('s3api', 'list-object-versions', '--bucket', 'api-bucket')).stdout);
    expect(versions.Versions.map((v: any) => [v.Key, v.VersionId, v.IsLatest])).toEqual([['d/api.txt', 'null', true]]);
    expect((await aws('s3api', 'get-bucket-versioning', '--bucket', 'api-bucket')).stdout.trim()).toBe('');
    expect(JSON.parse((await aws('s3api', 'get-bucket-location', '--bucket', 'api-bucket')).stdout)).toEqual({ LocationConstraint: null });
    const copied = JSON.parse((await aws('s3api', 'copy-object', '--bucket', 'api-bucket', '--key', 'copy.txt', '--copy-source', 'api-bucket/d/api.txt')).stdout);
    expect(copied.CopyObjectResult.ETag).toBe(`"${md5('0123456789')}"`);
    const deleted = JSON.parse((await aws('s3api', 'delete-objects', '--bucket', 'api-bucket', '--delete', JSON.stringify({ Objects: [{ Key: 'd/api.txt' }, { Key: 'copy.txt' }] }))).stdout);
    expect(deleted.Deleted.map((d: any) => d.Key).sort()).toEqual(['copy.txt', 'd/api.txt']);
    const missing = await aws('s3api', 'head-object', '--bucket', 'api-bucket', '--key', 'd/api.txt');
    expect(missing.stderr).toContain('404');
    const nobucket = await aws('s3api', 'list-objects-v2', '--bucket', 'no-such-bucket');
    expect(nobucket.stderr).toContain('NoSuchBucket');
  }, 60_000);

  it('aws s3api: every other operation, its conditions and its errors', async () => {
    const api = (...args: string[]) => aws('s3api', ...args);
    const json = async (...args: string[]) => {
      const ran = await api(...args);
      expect(ran.code, ran.stderr).toBe(0);
      return ran.stdout.trim() ? JSON.parse(ran.stdout) : {};
    };
    const B = ['--bucket', 'cli-ops'];
    await json('create-bucket', ...B);
    const source = join(work, 'source.txt');
    writeFileSync(source, '0123456789');
    const { ETag: etag } = await json('put-object', ...B, '--key', 'source.txt', '--body', source, '--content-type', 'text/plain', '--metadata', 'origin=cli');
    expect(etag).toBe(`"${md5('0123456789')}"`);
    const part = join(work, 'part.bin');
    const partContent = randomBytes(5 * 1024 * 1024);
    writeFileSync(part, partContent);
    const notification = join(work, 'notification.json');
    const rule = {
      Id: 'texts', LambdaFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:OnObject', Events: ['s3:ObjectCreated:*'],
      Filter: { Key: { FilterRules: [{ Name: 'Prefix', Value: 'in/' }] } },
    };
    writeFileSync(notification, JSON.stringify({ LambdaFunctionConfigurations: [rule] }));

    // independent chains, run side by side: each CLI run costs ~1.5 s of CPU
    const [buckets, heads, conditional, overridden, copied, multipart, aborted, notified, expired, wrongSecret, configurations] = await Promise.all([
      json('list-buckets'),
      Promise.all([api('head-bucket', ...B), api('head-bucket', '--bucket', 'cli-no-such-bucket')]),
      Promise.all([
        api('get-object', ...B, '--key', 'source.txt', '--if-none-match', etag, join(work, 'c1')),
        api('get-object', ...B, '--key', 'source.txt', '--if-match', '"0000"', join(work, 'c2')),
        api('get-object', ...B, '--key', 'source.txt', '--if-unmodified-since', '2000-01-01T00:00:00Z', join(work, 'c3')),
      ]),
      json('get-object', ...B, '--key', 'source.txt', '--response-content-type', 'application/json', '--response-content-disposition', 'inline', join(work, 'o1')),
      (async () => {
        await json('copy-object', ...B, '--key', 'copy.txt', '--copy-source', 'cli-ops/source.txt', '--metadata-directive', 'REPLACE', '--metadata', 'origin=copy',
          '--content-type', 'application/octet-stream');
        return json('head-object', ...B, '--key', 'copy.txt');
      })(),
      (async () => {
        const { UploadId } = await json('create-multipart-upload', ...B, '--key', 'multi.bin');
        // `=`: an upload id may start with '-', which the CLI would take for an option
        const upload = [...B, '--key', 'multi.bin', `--upload-id=${UploadId}`];
        const [first, second] = await Promise.all([
          json('upload-part', ...upload, '--part-number', '1', '--body', part),
          json('upload-part-copy', ...upload, '--part-number', '2', '--copy-source', 'cli-ops/source.txt', '--copy-source-range', 'bytes=0-3'),
        ]);
        const [parts, uploads] = await Promise.all([json('list-parts', ...upload), json('list-multipart-uploads', ...B)]);
        const partsFile = join(work, 'parts.json');
        writeFileSync(partsFile, JSON.stringify({ Parts: [{ PartNumber: 1, ETag: first.ETag }, { PartNumber: 2, ETag: second.CopyPartResult.ETag }] }));
        const completed = await json('complete-multipart-upload', ...upload, '--multipart-upload', `file://${partsFile}`);
        const attributes = await json('get-object-attributes', ...B, '--key', 'multi.bin', '--object-attributes', 'ETag', 'ObjectParts', 'ObjectSize');
        return { parts, uploads, completed, attributes, uploadId: UploadId };
      })(),
      (async () => {
        const { UploadId } = await json('create-multipart-upload', ...B, '--key', 'gone.bin');
        await json('abort-multipart-upload', ...B, '--key', 'gone.bin', `--upload-id=${UploadId}`);
        return api('list-parts', ...B, '--key', 'gone.bin', `--upload-id=${UploadId}`);
      })(),
      (async () => {
        await json('put-bucket-notification-configuration', ...B, '--notification-configuration', `file://${notification}`);
        return json('get-bucket-notification-configuration', ...B);
      })(),
      (async () => {
        const url = (await aws('s3', 'presign', 's3://cli-ops/source.txt', '--expires-in', '1')).stdout.trim();
        await new Promise((resolve) => setTimeout(resolve, 2100));
        const response = await fetch(url);
        return [response.status, await response.text()];
      })(),
      run('/usr/bin/aws', ['--endpoint-url', s3Endpoint(daemon), 's3api', 'list-objects-v2', ...B], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' } })
        .then(() => 'listed', (error: { stderr: string }) => error.stderr),
      Promise.all([json('get-bucket-acl', ...B), api('get-public-access-block', ...B), json('get-object-tagging', ...B, '--key', 'source.txt')]),
    ]);
    expect(buckets.Buckets.map((bucket: any) => bucket.Name)).toContain('cli-ops');
    expect(heads.map((head) => head.code === 0 || head.stderr)).toEqual([true, expect.stringContaining('(404)')]);
    expect(conditional.map((ran) => ran.stderr)).toEqual([
      expect.stringContaining('(304)'), expect.stringContaining('(PreconditionFailed)'), expect.stringContaining('(PreconditionFailed)'),
    ]);
    expect(overridden).toMatchObject({ ContentType: 'application/json', ContentDisposition: 'inline', ETag: etag, Metadata: { origin: 'cli' } });
    expect(copied).toMatchObject({ ContentType: 'application/octet-stream', Metadata: { origin: 'copy' }, ETag: etag });
    const partMd5s = [md5(partContent), md5('0123')];
    expect(multipart.parts.Parts.map((p: any) => [p.PartNumber, p.Size, p.ETag])).toEqual([[1, partContent.length, `"${partMd5s[0]}"`], [2, 4, `"${partMd5s[1]}"`]]);
    expect(multipart.uploads.Uploads.map((u: any) => [u.Key, u.UploadId])).toEqual([['multi.bin', multipart.uploadId]]);
    const multipartEtag = `"${md5(Buffer.concat(partMd5s.map((hex) => Buffer.from(hex, 'hex'))))}-2"`;
    expect(multipart.completed).toMatchObject({ Bucket: 'cli-ops', Key: 'multi.bin', ETag: multipartEtag });
    expect(multipart.attributes).toMatchObject({ ETag: multipartEtag.replace(/"/g, ''), ObjectParts: { TotalPartsCount: 2 }, ObjectSize: partContent.length + 4 });
    expect(aborted.stderr).toContain('(NoSuchUpload)');
    expect(notified).toEqual({ LambdaFunctionConfigurations: [rule] });
    expect(expired[0]).toBe(403);
    expect(expired[1]).toContain('<Code>AccessDenied</Code><Message>Request has expired</Message>');
    expect(wrongSecret).toContain('(SignatureDoesNotMatch)');
    const [acl, publicAccessBlock, tagging] = configurations;
    expect(acl.Grants).toEqual([{ Grantee: { DisplayName: 'outpost', ID: '000000000000', Type: 'CanonicalUser' }, Permission: 'FULL_CONTROL' }]);
    expect(publicAccessBlock.stderr).toContain('(NoSuchPublicAccessBlockConfiguration)');
    expect(tagging).toEqual({ TagSet: [] });

    const whole = join(work, 'multi.back');
    await json('get-object', ...B, '--key', 'multi.bin', whole);
    expect(readFileSync(whole).equals(Buffer.concat([partContent, Buffer.from('0123')]))).toBe(true);
    expect((await api('delete-bucket', ...B)).stderr).toContain('(BucketNotEmpty)');
    await Promise.all(['source.txt', 'copy.txt', 'multi.bin', 'never-there.txt'].map((key) => json('delete-object', ...B, '--key', key)));
    await json('delete-bucket', ...B);
    expect((await api('head-bucket', ...B)).stderr).toContain('(404)');
  }, 120_000);

  it('boto3: buckets, objects, paginated listing, multipart upload_file, copy, presigned URL, errors', async () => {
    const script = `
import boto3, botocore, json, os, sys, urllib.request, hashlib
from boto3.s3.transfer import TransferConfig
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='us-east-1',
                  config=botocore.config.Config(signature_version='s3v4', s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
out = {}
s3.create_bucket(Bucket='py-bucket')
s3.put_object(Bucket='py-bucket', Key='hello.txt', Body=b'hello from boto3', ContentType='text/plain', Metadata={'lang': 'python'})
obj = s3.get_object(Bucket='py-bucket', Key='hello.txt')
out['get'] = [obj['Body'].read().decode(), obj['ContentType'], obj['Metadata'], obj['ETag']]
for i in range(5):
    s3.put_object(Bucket='py-bucket', Key='many/%d' % i, Body=b'x' * i)
pages = s3.get_paginator('list_objects_v2').paginate(Bucket='py-bucket', Prefix='many/', PaginationConfig={'PageSize': 2})
out['pages'] = [[o['Key'] for o in page.get('Contents', [])] for page in pages]
big = os.urandom(12 * 1024 * 1024)
path = sys.argv[1]
open(path, 'wb').write(big)
s3.upload_file(path, 'py-bucket', 'big.bin', Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
head = s3.head_object(Bucket='py-bucket', Key='big.bin')
out['big'] = [head['ContentLength'], head['ETag'], hashlib.md5(s3.get_object(Bucket='py-bucket', Key='big.bin')['Body'].read()).hexdigest() == hashlib.md5(big).hexdigest()]
s3.copy_object(Bucket='py-bucket', Key='copy.txt', CopySource={'Bucket': 'py-bucket', 'Key': 'hello.txt'})
url = s3.generate_presigned_url('get_object', Params={'Bucket': 'py-bucket', 'Key': 'copy.txt'}, ExpiresIn=60)
out['presigned'] = urllib.request.urlopen(url).read().decode()
try:
    s3.get_object(Bucket='py-bucket', Key='nope')
except botocore.exceptions.ClientError as e:
    out['error'] = [e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']]
try:
    s3.create_bucket(Bucket='py-bucket')
except botocore.exceptions.ClientError as e:
    out['again'] = e.response['Error']['Code']
print(json.dumps(out))
`;
    const scriptFile = join(work, 'boto.py');
    writeFileSync(scriptFile, script);
    const { stdout } = await run('/usr/bin/python3', [scriptFile, join(work, 'py-big.bin')], { env, timeout: 60_000 });
    const out = JSON.parse(stdout);
    expect(out.get).toEqual(['hello from boto3', 'text/plain', { lang: 'python' }, `"${md5('hello from boto3')}"`]);
    expect(out.pages).toEqual([['many/0', 'many/1'], ['many/2', 'many/3'], ['many/4']]);
    expect(out.big).toEqual([12 * 1024 * 1024, expect.stringMatching(/^"[0-9a-f]{32}-3"$/), true]);
    expect(out.presigned).toBe('hello from boto3');
    expect(out.error).toEqual(['NoSuchKey', 404]);
    expect(out.again).toBe('BucketAlreadyOwnedByYou');
  }, 60_000);

  it('boto3: every other operation, its conditions and its errors', async () => {
    const { stdout } = await run('/usr/bin/python3', [join(ROOT, 'test', 'fixtures', 's3-clients', 'boto3_operations.py'), join(work, 'py-ops.bin'), 'OnObject'],
      { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const etag = `"${md5('0123456789')}"`;
    const quotedMd5 = expect.stringMatching(/^"[0-9a-f]{32}"$/);
    const notFound = ['404', 404];
    const notModified = ['304', 304];
    expect(JSON.parse(stdout)).toEqual({
      listBuckets: true, headBucket: 200, headMissingBucket: notFound, location: null,
      invalidName: ['InvalidBucketName', 400], again: ['BucketAlreadyOwnedByYou', 409],
      putETag: etag, badDigest: ['BadDigest', 400], badDigestWroteNothing: notFound,
      range: ['345', 'bytes 3-5/10', 206], badRange: ['InvalidRange', 416],
      ifMatch: '0123456789', ifMatchOther: ['PreconditionFailed', 412], ifNoneMatch: notModified,
      ifModifiedSince: notModified, ifModifiedSinceFuture: 'no error', ifUnmodifiedSince: ['PreconditionFailed', 412],
      overrides: ['application/json', 'attachment; filename="t.json"', 'no-store'],
      head: [10, 'text/plain', { source: 'boto3' }, etag],
      noSuchKey: ['NoSuchKey', 404], headNoSuchKey: notFound, noSuchBucket: ['NoSuchBucket', 404], longKey: ['KeyTooLongError', 400],
      copies: [[{ source: 'boto3' }, 'text/plain'], [{ source: 'replaced' }, 'application/octet-stream', etag]],
      uploadPartCopy: '23456', postObject: [204, 'from a form'], virtualHost: ['by host name', ['vhost/by host.txt']],
      v2: [['list/a b.txt', 'list/café.txt', 'list/z'], ['list/sub/'], 4],
      startAfter: ['list/sub/2', 'list/z'],
      v1: [['list/a b.txt', 'list/café.txt'], true, ['list/sub/1', 'list/sub/2']],
      v1NextMarker: [true, 'list/café.txt'],
      versioning: {}, versions: [['dir/ten.txt', 'null', true, etag]],
      configurations: [['CanonicalUser:FULL_CONTROL'], ['NoSuchBucketPolicy', 404], ['NoSuchCORSConfiguration', 404], ['NoSuchLifecycleConfiguration', 404],
        'BucketOwnerEnforced', [], ['AccessControlListNotSupported', 400]],
      listParts: [[1, 5 * 1024 * 1024, quotedMd5], [2, 4, `"${md5('tail')}"`]], listUploads: [['multi.bin', true]],
      invalidPartOrder: ['InvalidPartOrder', 400], invalidPart: ['InvalidPart', 400],
      completed: [true, 'application/x-test', true], attributes: [true, { TotalPartsCount: 2 }, 5 * 1024 * 1024 + 4], entityTooSmall: ['EntityTooSmall', 400],
      aborted: [['NoSuchUpload', 404], notFound, []],
      notification: [{
        Id: 'texts', LambdaFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:OnObject', Events: ['s3:ObjectCreated:*'],
        Filter: { Key: { FilterRules: [{ Name: 'Prefix', Value: 'in/' }, { Name: 'Suffix', Value: '.txt' }] } },
      }],
      notificationUnknownFunction: ['InvalidArgument', 400],
      presignedPut: 200, presignedGet: [200, 'via a presigned PUT'], presignedExpired: [403, 'AccessDenied'],
      wrongSecret: ['SignatureDoesNotMatch', 403], unknownKey: ['InvalidAccessKeyId', 403],
      bucketNotEmpty: ['BucketNotEmpty', 409], deleteObject: [204, 204], deleteObjects: true, deletedBucket: notFound,
    });
  }, 60_000);
  it('rclone, s3cmd and restic, as found on gateways: multipart copies, checks by MD5, syncs both ways, server-side moves, backups', async () => {
    const source = join(work, 'tools-source');
    mkdirSync(join(source, 'sub'), { recursive: true });
    // 11 MiB in 5 MiB parts: three parts for both tools
    const files: Record<string, Buffer> = { 'sub/big.bin': randomBytes(11 * 1024 * 1024), 'a b.txt': Buffer.from('spaced\n'), 'café.txt': Buffer.from('accented\n') };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(source, name), content);
    const endpoint = s3Endpoint(daemon);
    const { AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret } = env;
    writeFileSync(join(work, 'rclone.conf'),
      `[gw]\ntype = s3\nprovider = Other\naccess_key_id = ${id}\nsecret_access_key = ${secret}\nendpoint = ${endpoint}\nregion = us-east-1\n`);
    writeFileSync(join(work, 's3cfg'), ['[default]', `access_key = ${id}`, `secret_key = ${secret}`, `host_base = ${new URL(endpoint).host}`,
      `host_bucket = ${new URL(endpoint).host}`, 'use_https = False', 'signature_v2 = False', 'bucket_location = us-east-1', ''].join('\n'));
    // only PATH and HOME: rclone refuses a plain-HTTP endpoint while AWS_CA_BUNDLE is set
    const toolEnv = { PATH: process.env.PATH, HOME: work };
    const rclone = async (...args: string[]) => (await run('rclone', ['--config', join(work, 'rclone.conf'), ...args], { env: toolEnv, timeout: 60_000 })).stdout;
    const s3cmd = async (...args: string[]) => (await run('s3cmd', ['-c', join(work, 's3cfg'), ...args], { env: toolEnv, timeout: 60_000 })).stdout;
    const restic = async (...args: string[]) => (await run('restic', ['--repo', `s3:${endpoint}/restic-bucket`, '--no-cache', ...args], {
      env: { ...toolEnv, AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, RESTIC_PASSWORD: 'a repository password' }, timeout: 60_000 })).stdout;
    const md5sums = (listing: string) => Object.fromEntries(listing.trim().split('\n').map((line) => line.split(/ {2}/)).map(([sum, name]) => [name, sum]));
    const expectedSums = (prefix: string) => Object.fromEntries(Object.entries(files).map(([name, content]) => [`${prefix}${name}`, md5(content)]));

    const [rcloned, s3cmded, resticked] = await Promise.all([
      (async () => {
        await rclone('mkdir', 'gw:rclone-bucket');
        await rclone('copy', source, 'gw:rclone-bucket/dir', '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M');
        // check compares sizes and MD5s (of a multipart object, the one rclone keeps in its metadata): exit 0 when all match
        await rclone('check', source, 'gw:rclone-bucket/dir');
        const sums = md5sums(await rclone('md5sum', 'gw:rclone-bucket'));
        const down = join(work, 'rclone-down');
        await rclone('sync', 'gw:rclone-bucket/dir', down);
        const downloaded = Object.keys(files).every((name) => readFileSync(join(down, name)).equals(files[name]));
        await rclone('moveto', 'gw:rclone-bucket/dir/sub/big.bin', 'gw:rclone-bucket/moved.bin');
        const afterMove = (await rclone('lsf', '-R', '--files-only', 'gw:rclone-bucket')).trim().split('\n').sort();
        await rclone('purge', 'gw:rclone-bucket');
        return { sums, downloaded, afterMove, buckets: await rclone('lsd', 'gw:') };
      })(),
      (async () => {
        await s3cmd('mb', 's3://s3cmd-bucket');
        await s3cmd('put', '--multipart-chunk-size-mb=5', join(source, 'sub/big.bin'), 's3://s3cmd-bucket/big.bin');
        await s3cmd('get', '--force', 's3://s3cmd-bucket/big.bin', join(work, 's3cmd-big.bin'));
        await s3cmd('sync', `${source}/`, 's3://s3cmd-bucket/sync/');
        await s3cmd('mv', 's3://s3cmd-bucket/sync/a b.txt', 's3://s3cmd-bucket/moved.txt');
        const listing = await s3cmd('ls', '--recursive', 's3://s3cmd-bucket');
        // `info` reads the bucket's and the object's ACL, policy, CORS, lifecycle and payer
        const info = [await s3cmd('info', 's3://s3cmd-bucket'), await s3cmd('info', 's3://s3cmd-bucket/big.bin')];
        await s3cmd('del', '--recursive', '--force', 's3://s3cmd-bucket');
        await s3cmd('rb', 's3://s3cmd-bucket');
        return { downloaded: readFileSync(join(work, 's3cmd-big.bin')).equals(files['sub/big.bin']), listing, info, buckets: await s3cmd('ls') };
      })(),
      (async () => {
        // a tree of its own: the second backup has a file more, which the other tools must not see
        const backedUp = join(work, 'restic-source');
        mkdirSync(backedUp);
        writeFileSync(join(backedUp, 'big.bin'), files['sub/big.bin']);
        await restic('init');
        await restic('backup', backedUp);
        writeFileSync(join(backedUp, 'later.txt'), 'written later\n');
        await restic('backup', backedUp);
        const restored = join(work, 'restic-restored');
        await restic('restore', 'latest', '--target', restored);
        const restoredSame = readFileSync(join(restored, backedUp, 'big.bin')).equals(files['sub/big.bin'])
          && readFileSync(join(restored, backedUp, 'later.txt'), 'utf8') === 'written later\n';
        await restic('forget', '--keep-last', '1', '--prune');
        // every pack read back and checked against its hash
        const checked = await restic('check', '--read-data');
        return { restoredSame, snapshots: JSON.parse(await restic('snapshots', '--json')).length, checked };
      })(),
    ]);
    expect(rcloned.sums).toEqual(expectedSums('dir/'));
    expect(rcloned.downloaded).toBe(true);
    expect(rcloned.afterMove).toEqual(['dir/a b.txt', 'dir/café.txt', 'moved.bin']);
    expect(rcloned.buckets).not.toContain('rclone-bucket');
    expect(s3cmded.downloaded).toBe(true);
    const listed = s3cmded.listing.trim().split('\n').map((line) => line.split(/\s+/).slice(2));
    expect(listed).toEqual([
      [String(files['sub/big.bin'].length), 's3://s3cmd-bucket/big.bin'],
      [String(files['a b.txt'].length), 's3://s3cmd-bucket/moved.txt'],
      [String(files['café.txt'].length), 's3://s3cmd-bucket/sync/café.txt'],
      [String(files['sub/big.bin'].length), 's3://s3cmd-bucket/sync/sub/big.bin'],
    ]);
    expect(s3cmded.buckets).not.toContain('s3cmd-bucket');
    for (const info of s3cmded.info) expect(info).toMatch(/Policy:\s+none[\s\S]*CORS:\s+none[\s\S]*ACL:\s+outpost: FULL_CONTROL/);
    expect(s3cmded.info[0]).toMatch(/Payer:\s+BucketOwner/);
    expect(resticked).toMatchObject({ restoredSame: true, snapshots: 1, checked: expect.stringContaining('no errors were found') });
  }, 90_000);
});
