import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, awsEnv, s3Endpoint } from './helpers/objects.js';

const run = promisify(execFile);
const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

describe('S3 API with the AWS CLI and boto3', () => {
  let daemon: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let work: string;
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
  });
  afterAll(async () => {
    await daemon.cleanup();
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
    expect((await aws('s3', 'sync', tree, 's3://cli-bucket/tree')).code).toBe(0);
    expect((await aws('s3', 'sync', tree, 's3://cli-bucket/tree')).stdout).toBe('');
    const mirror = join(work, 'mirror');
    expect((await aws('s3', 'sync', 's3://cli-bucket/tree', mirror)).code).toBe(0);
    expect(readFileSync(join(mirror, 'sub', 'b.txt'), 'utf8')).toBe('bb');

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
});
