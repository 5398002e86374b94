import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand,
  DeleteBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetBucketLocationCommand, GetBucketVersioningCommand, GetObjectAttributesCommand, GetObjectCommand,
  HeadBucketCommand, HeadObjectCommand, ListBucketsCommand, ListMultipartUploadsCommand, ListObjectsCommand, ListObjectsV2Command,
  ListObjectVersionsCommand, ListPartsCommand, PutObjectCommand, UploadPartCommand, UploadPartCopyCommand, type S3Client, S3ServiceException,
  GetBucketAclCommand, GetObjectAclCommand, GetBucketOwnershipControlsCommand, PutBucketAclCommand, PutObjectAclCommand, GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand, GetBucketCorsCommand, GetBucketLifecycleConfigurationCommand, GetBucketTaggingCommand, GetBucketWebsiteCommand,
  GetBucketReplicationCommand, GetBucketEncryptionCommand, GetObjectLockConfigurationCommand, GetPublicAccessBlockCommand, GetBucketLoggingCommand,
  GetBucketAccelerateConfigurationCommand, GetBucketRequestPaymentCommand, DeleteBucketPolicyCommand, DeleteBucketCorsCommand,
  DeleteBucketLifecycleCommand, DeleteBucketTaggingCommand, DeleteBucketWebsiteCommand, DeleteBucketEncryptionCommand,
  DeletePublicAccessBlockCommand, DeleteBucketReplicationCommand, GetObjectTaggingCommand, DeleteObjectTaggingCommand, GetObjectRetentionCommand,
  PutObjectLegalHoldCommand, PutBucketPolicyCommand, paginateListBuckets, PutBucketNotificationConfigurationCommand, PutBucketLifecycleConfigurationCommand,
  PutBucketCorsCommand, PutBucketTaggingCommand, PutObjectTaggingCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { addKey, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';
import { Sha256 } from './helpers/sigv4.js';
import { SignatureV4 } from '@smithy/signature-v4';

const MIN_PART = 64 * 1024;

/** The S3 error code of a failed command (the SDK's `name`), its HTTP status and request id. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined; requestId: string | undefined; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof S3ServiceException)) throw error;
    return { code: error.name, status: error.$metadata.httpStatusCode, requestId: error.$metadata.requestId, message: error.message };
  }
  throw new Error('expected the command to fail');
}

describe('S3 API with the AWS SDK v3', () => {
  let daemon: TestDaemon;
  let credentials: S3Credentials;
  let s3: S3Client;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { s3: { minPartBytes: MIN_PART, publicReadBuckets: ['public'] } } });
    credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await daemon.cleanup();
  });

  it('creates, heads, lists and locates buckets, refusing duplicates and invalid names', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'scratch' }));
    const listed = await s3.send(new ListBucketsCommand({}));
    expect(listed.Buckets!.map((bucket) => bucket.Name)).toEqual(['photos', 'scratch']);
    expect(listed.Buckets![0].CreationDate).toBeInstanceOf(Date);
    expect(listed.ContinuationToken).toBeUndefined();
    // pages of max-buckets, by prefix and region, as the SDK's paginator asks for them
    await s3.send(new CreateBucketCommand({ Bucket: 'scratch-2' }));
    const pages = [];
    for await (const page of paginateListBuckets({ client: s3, pageSize: 1 }, {})) pages.push(page.Buckets!.map((bucket) => [bucket.Name, bucket.BucketRegion]));
    expect(pages).toEqual([[['photos', 'us-east-1']], [['scratch', 'us-east-1']], [['scratch-2', 'us-east-1']]]);
    expect((await s3.send(new ListBucketsCommand({ Prefix: 'scr' }))).Buckets!.map((bucket) => bucket.Name)).toEqual(['scratch', 'scratch-2']);
    expect((await s3.send(new ListBucketsCommand({ BucketRegion: 'eu-west-1' }))).Buckets ?? []).toEqual([]);
    expect(await failure(s3.send(new ListBucketsCommand({ MaxBuckets: 0 })))).toMatchObject({ code: 'InvalidArgument', status: 400 });
    expect(await failure(s3.send(new ListBucketsCommand({ ContinuationToken: 'not-ours' })))).toMatchObject({ code: 'InvalidArgument', status: 400 });
    await s3.send(new DeleteBucketCommand({ Bucket: 'scratch-2' }));
    expect((await s3.send(new HeadBucketCommand({ Bucket: 'scratch' }))).$metadata.httpStatusCode).toBe(200);
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: 'scratch' }))).LocationConstraint).toBeUndefined();
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: 'scratch' }))).Status).toBeUndefined();
    const again = await failure(s3.send(new CreateBucketCommand({ Bucket: 'scratch' })));
    expect(again).toMatchObject({ code: 'BucketAlreadyOwnedByYou', status: 409 });
    expect(again.requestId).toMatch(/^[0-9A-F]{16}$/);
    for (const name of ['ab', 'Upper', 'a..b', '192.168.1.1', '-dash', 'xn--punycode', 'a'.repeat(64), 'photos.mrap', 'photos-s3alias']) {
      expect(await failure(s3.send(new CreateBucketCommand({ Bucket: name })))).toMatchObject({ code: 'InvalidBucketName', status: 400 });
    }
    expect(existsSync(join(daemon.dataDir, 'share', 'Upper'))).toBe(false);
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: 'nothing-here' })))).toMatchObject({ status: 404 });
    await s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'x', Body: 'x' }));
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'scratch' })))).toMatchObject({ code: 'BucketNotEmpty', status: 409 });
    // a multipart upload in progress does not keep a bucket (as S3): it is aborted, its parts removed
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'scratch', Key: 'unfinished.bin' }));
    await s3.send(new UploadPartCommand({ Bucket: 'scratch', Key: 'unfinished.bin', UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
    expect(existsSync(join(daemon.dataDir, 'share', '.outpost', 'uploads', UploadId!, '1'))).toBe(true);
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'scratch' })))).toMatchObject({ code: 'BucketNotEmpty', status: 409 });
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'scratch' }))).Uploads?.map((upload) => upload.UploadId)).toEqual([UploadId]);
    await s3.send(new DeleteObjectCommand({ Bucket: 'scratch', Key: 'x' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'scratch' }));
    expect(existsSync(join(daemon.dataDir, 'share', '.outpost', 'uploads', UploadId!))).toBe(false);
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'scratch' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    // the bucket was seen by the PUT before: nothing remembers it once deleted
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'scratch', Key: 'x' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'x', Body: 'x' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(existsSync(join(daemon.dataDir, 'share', 'scratch'))).toBe(false);
  });

  it('puts and gets objects with metadata, stored headers and an MD5 ETag, as plain files in the share', async () => {
    const body = 'a picture of the yard';
    const put = await s3.send(new PutObjectCommand({
      Bucket: 'photos', Key: 'yard/2026/cam 1.jpg', Body: body, ContentType: 'image/jpeg',
      Metadata: { camera: 'north', shot: '17' }, CacheControl: 'max-age=60', ContentDisposition: 'inline',
    }));
    const md5 = createHash('md5').update(body).digest('hex');
    expect(put.ETag).toBe(`"${md5}"`);
    // a small object's file is a copy written just after the answer
    const file = join(daemon.dataDir, 'share', 'photos', 'yard', '2026', 'cam 1.jpg');
    await eventually(() => existsSync(file));
    expect(readFileSync(file, 'utf8')).toBe(body);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'yard/2026/cam 1.jpg' }));
    expect(await got.Body!.transformToString()).toBe(body);
    expect(got).toMatchObject({ ContentType: 'image/jpeg', ContentLength: body.length, ETag: `"${md5}"`, CacheControl: 'max-age=60',
      ContentDisposition: 'inline', Metadata: { camera: 'north', shot: '17' }, AcceptRanges: 'bytes' });
    expect(got.LastModified).toBeInstanceOf(Date);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'yard/2026/cam 1.jpg' }));
    expect(head).toMatchObject({ ContentLength: body.length, ETag: `"${md5}"`, Metadata: { camera: 'north', shot: '17' } });
    // listed to the second, as S3 and Last-Modified give it: aws s3 sync --exact-timestamps compares the two
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'yard/2026/' }));
    expect(listed.Contents![0].LastModified!.getTime()).toBe(head.LastModified!.getTime());
    expect(listed.Contents![0].LastModified!.getMilliseconds()).toBe(0);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'missing' })))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'missing' })))).toMatchObject({ status: 404 });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'no-bucket', Key: 'x' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
  });

  it('stores x-amz-website-redirect-location and returns it, refusing one that is neither a path nor a URL (InvalidRedirectLocation)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'moved/old.html', Body: '', WebsiteRedirectLocation: '/moved/new.html' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/old.html' }))).WebsiteRedirectLocation).toBe('/moved/new.html');
    // S3 CopyObject: "x-amz-website-redirect-location is unique to each object and is not copied", under either directive
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html', CopySource: 'photos/moved/old.html' }));
    expect((await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html' }))).WebsiteRedirectLocation).toBeUndefined();
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html', CopySource: 'photos/moved/old.html', WebsiteRedirectLocation: '/moved/other.html' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html' }))).WebsiteRedirectLocation).toBe('/moved/other.html');
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html', CopySource: 'photos/moved/old.html', MetadataDirective: 'REPLACE', CacheControl: 'no-cache' }));
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/copy.html' }));
    expect([replaced.CacheControl, replaced.WebsiteRedirectLocation]).toEqual(['no-cache', undefined]);
    // a copy onto itself that changes only the redirect location changes something: allowed
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'moved/old.html', CopySource: 'photos/moved/old.html', WebsiteRedirectLocation: '/moved/newer.html' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/old.html' }))).WebsiteRedirectLocation).toBe('/moved/newer.html');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'moved/parts.html', WebsiteRedirectLocation: 'https://example.com/x' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'moved/parts.html', UploadId, PartNumber: 1, Body: 'x' }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key: 'moved/parts.html', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/parts.html' }))).WebsiteRedirectLocation).toBe('https://example.com/x');
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'moved/bad.html', Body: '', WebsiteRedirectLocation: 'moved/new.html' }))))
      .toMatchObject({ code: 'InvalidRedirectLocation', status: 400 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'moved/bad.html' })))).toMatchObject({ status: 404 });
  });

  it('gives a large body that pauses longer than the hashing thread\'s idle time the MD5 of all of it', async () => {
    const halves = [randomBytes(1024 * 1024), randomBytes(1024 * 1024)];
    // past the hashing thread's 10 s idle time between the halves (the server waits up to 120 s for data)
    const body = Readable.from((async function* () {
      yield halves[0];
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      yield halves[1];
    })());
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'slow/paused.bin', Body: body, ContentLength: 2 * 1024 * 1024 }));
    const md5 = createHash('md5').update(halves[0]).update(halves[1]).digest('hex');
    expect(put.ETag).toBe(`"${md5}"`);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'slow/paused.bin' }))).ETag).toBe(`"${md5}"`);
  }, 30_000);

  it('serves byte ranges and refuses unsatisfiable ones with InvalidRange', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'digits.txt', Body: '0123456789' }));
    const read = async (Range: string) => {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'digits.txt', Range }));
      return { body: await got.Body!.transformToString(), range: got.ContentRange, status: got.$metadata.httpStatusCode };
    };
    expect(await read('bytes=2-4')).toEqual({ body: '234', range: 'bytes 2-4/10', status: 206 });
    expect(await read('bytes=7-')).toEqual({ body: '789', range: 'bytes 7-9/10', status: 206 });
    expect(await read('bytes=-3')).toEqual({ body: '789', range: 'bytes 7-9/10', status: 206 });
    expect(await read('bytes=8-100')).toEqual({ body: '89', range: 'bytes 8-9/10', status: 206 });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'digits.txt', Range: 'bytes=10-' }))))
      .toMatchObject({ code: 'InvalidRange', status: 416 });
  });

  it('answers a suffix range of an empty object with all of it, and any other range of it with 416 InvalidRange and Content-Range bytes */0', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'empty.txt', Body: '' }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'empty.txt' }), { expiresIn: 60 });
    const read = async (range: string) => {
      const got = await fetch(url, { headers: { range } });
      return { status: got.status, contentRange: got.headers.get('content-range'), length: got.headers.get('content-length'), body: await got.text() };
    };
    // S3 answers bytes=-N of an empty object 200 with no body (apache/arrow-rs-object-store#846, floci-io/floci#1141: what AWS answers)
    for (const range of ['bytes=-5', 'bytes=-1']) expect(await read(range), range).toEqual({ status: 200, contentRange: null, length: '0', body: '' });
    // and bytes=0- or bytes=0-0 416 (minio/minio-java#636, about14sheep/s3-readstream#4: what AWS answers)
    for (const range of ['bytes=0-', 'bytes=0-0', 'bytes=1-2']) {
      const refused = await read(range);
      expect({ ...refused, body: undefined }, range).toEqual({ status: 416, contentRange: 'bytes */0', length: expect.any(String), body: undefined });
      expect(refused.body).toContain('<Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message>');
      expect(refused.body).toContain(`<RangeRequested>${range}</RangeRequested><ActualObjectSize>0</ActualObjectSize>`);
    }
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'empty.txt', Range: 'bytes=-5' }));
    expect([head.$metadata.httpStatusCode, head.ContentLength, head.ContentRange]).toEqual([200, 0, undefined]);
  });

  it('evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond.txt', Body: 'v1' }));
    const get = (extra: Record<string, unknown>) => s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cond.txt', ...extra }));
    expect((await get({ IfMatch: put.ETag })).$metadata.httpStatusCode).toBe(200);
    expect(await failure(get({ IfMatch: '"0000"' }))).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await failure(get({ IfNoneMatch: put.ETag }))).toMatchObject({ status: 304 });
    expect((await get({ IfNoneMatch: '"0000"' })).$metadata.httpStatusCode).toBe(200);
    const future = new Date(Date.now() + 3600_000);
    const past = new Date(Date.now() - 3600_000);
    expect((await get({ IfModifiedSince: past })).$metadata.httpStatusCode).toBe(200);
    // not modified since it was stored; a date later than the server's clock is none the object could be
    // compared with, and is ignored (S3, RFC 2616 §14.25): a client whose clock runs ahead still sees changes
    const { LastModified } = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond.txt' }));
    expect(await failure(get({ IfModifiedSince: LastModified }))).toMatchObject({ status: 304 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond.txt', IfModifiedSince: LastModified })))).toMatchObject({ status: 304 });
    expect((await get({ IfModifiedSince: future })).$metadata.httpStatusCode).toBe(200);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond.txt', IfModifiedSince: future }))).$metadata.httpStatusCode).toBe(200);
    expect(await failure(get({ IfModifiedSince: future, IfNoneMatch: put.ETag }))).toMatchObject({ status: 304 });
    expect(await failure(get({ IfUnmodifiedSince: past }))).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect((await get({ IfUnmodifiedSince: future })).$metadata.httpStatusCode).toBe(200);
  });

  it('applies response-* overrides', async () => {
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cond.txt', ResponseContentType: 'text/x-test',
      ResponseContentDisposition: 'attachment; filename="c.txt"', ResponseCacheControl: 'no-store' }));
    expect(got).toMatchObject({ ContentType: 'text/x-test', ContentDisposition: 'attachment; filename="c.txt"', CacheControl: 'no-store' });
    // past Latin-1: sent as the bytes of its UTF-8 (fetch reads them as latin1); a line break is refused
    const url = (disposition: string) => getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'cond.txt', ResponseContentDisposition: disposition }));
    const unicode = await fetch(await url('attachment; filename="日本.txt"'));
    expect(unicode.status).toBe(200);
    expect(Buffer.from(unicode.headers.get('content-disposition')!, 'latin1').toString('utf8')).toBe('attachment; filename="日本.txt"');
    const injected = await fetch(await url('attachment\r\nx-injected: 1'));
    expect(injected.status).toBe(400);
    expect(injected.headers.get('x-injected')).toBeNull();
  });

  it('verifies the CRC64NVME checksum the SDK sends when asked for it', async () => {
    const body = randomBytes(300_000);
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'crc64.bin', Body: body, ChecksumAlgorithm: 'CRC64NVME' }));
    expect(put.ChecksumCRC64NVME).toMatch(/^[A-Za-z0-9+/]{11}=$/);
    expect(readFileSync(join(daemon.dataDir, 'share', 'photos', 'crc64.bin')).equals(body)).toBe(true);
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'crc64-wrong.bin', Body: body, ChecksumCRC64NVME: 'AAAAAAAAAAA=' }))))
      .toMatchObject({ code: 'BadDigest', status: 400, message: 'The CRC64NVME you specified did not match the calculated checksum.' });
    expect(existsSync(join(daemon.dataDir, 'share', 'photos', 'crc64-wrong.bin'))).toBe(false);
  });

  it('keeps the checksum a PUT was made with and returns it in checksum mode, for the whole object only; a copy keeps it', async () => {
    const small = Buffer.from('checked end to end');
    const large = randomBytes(300_000);
    // the SDK's default (CRC32 in a trailer) on a small body, SHA-256 on one stored as a file
    const putSmall = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'sum/small.txt', Body: small }));
    expect(putSmall).toMatchObject({ ChecksumCRC32: expect.stringMatching(/^[A-Za-z0-9+/]{6}==$/), ChecksumType: 'FULL_OBJECT' });
    const sha256 = createHash('sha256').update(large).digest('base64');
    expect(await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'sum/large.bin', Body: large, ChecksumAlgorithm: 'SHA256' })))
      .toMatchObject({ ChecksumSHA256: sha256, ChecksumType: 'FULL_OBJECT' });
    // ChecksumMode ENABLED: the SDK also checks the body it reads against the checksum
    const gotSmall = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/small.txt', ChecksumMode: 'ENABLED' }));
    expect(gotSmall).toMatchObject({ ChecksumCRC32: putSmall.ChecksumCRC32, ChecksumType: 'FULL_OBJECT' });
    expect(await gotSmall.Body!.transformToString()).toBe(small.toString());
    const gotLarge = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/large.bin', ChecksumMode: 'ENABLED' }));
    expect(gotLarge).toMatchObject({ ChecksumSHA256: sha256, ChecksumType: 'FULL_OBJECT' });
    expect(Buffer.from(await gotLarge.Body!.transformToByteArray()).equals(large)).toBe(true);
    expect(await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/large.bin', ChecksumMode: 'ENABLED' }))).toMatchObject({ ChecksumSHA256: sha256 });
    // not asked for, or a part of the object: none
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/large.bin' }))).ChecksumSHA256).toBeUndefined();
    const ranged = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/large.bin', ChecksumMode: 'ENABLED', Range: 'bytes=0-99' }));
    expect([ranged.ChecksumSHA256, ranged.ChecksumType, (await ranged.Body!.transformToByteArray()).length]).toEqual([undefined, undefined, 100]);

    const copied = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'sum/copy.bin', CopySource: 'photos/sum/large.bin' }));
    expect(copied.CopyObjectResult).toMatchObject({ ChecksumSHA256: sha256, ChecksumType: 'FULL_OBJECT' });
    expect(await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/copy.bin', ChecksumMode: 'ENABLED' }))).toMatchObject({ ChecksumSHA256: sha256 });
    // a copy asked for another algorithm gets that one, made as the content is copied
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(large));
    const recomputed = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'sum/crc-copy.bin', CopySource: 'photos/sum/large.bin', ChecksumAlgorithm: 'CRC32' }));
    expect(recomputed.CopyObjectResult).toMatchObject({ ChecksumCRC32: crc.toString('base64'), ChecksumType: 'FULL_OBJECT' });
    const crcCopy = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/crc-copy.bin', ChecksumMode: 'ENABLED' }));
    expect([crcCopy.ChecksumCRC32, crcCopy.ChecksumSHA256]).toEqual([crc.toString('base64'), undefined]);
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'sum/crc-copy.bin' }));
    // listings name the algorithm, not the value
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'sum/' }));
    expect(listed.Contents!.map((object) => [object.Key, object.ChecksumAlgorithm, object.ChecksumType])).toEqual([
      ['sum/copy.bin', ['SHA256'], 'FULL_OBJECT'], ['sum/large.bin', ['SHA256'], 'FULL_OBJECT'], ['sum/small.txt', ['CRC32'], 'FULL_OBJECT'],
    ]);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'photos', Prefix: 'sum/small' }));
    expect(versions.Versions!.map((version) => version.ChecksumAlgorithm)).toEqual([['CRC32']]);
  });

  it('checks Content-MD5 and If-None-Match: * on PUT, writing nothing when they fail', async () => {
    const body = Buffer.from('checked content');
    const md5 = createHash('md5').update(body).digest('base64');
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'md5.txt', Body: body, ContentMD5: md5 }));
    const wrong = createHash('md5').update('something else').digest('base64');
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'md5-bad.txt', Body: body, ContentMD5: wrong }))))
      .toMatchObject({ code: 'BadDigest', status: 400 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'md5-bad.txt' })))).toMatchObject({ status: 404 });
    expect(existsSync(join(daemon.dataDir, 'share', 'photos', 'md5-bad.txt'))).toBe(false);
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'md5.txt', Body: 'new', IfNoneMatch: '*' }))))
      .toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'md5.txt' }))).Body!.transformToString()).toBe('checked content');
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'fresh.txt', Body: 'new', IfNoneMatch: '*' }));
  });

  it('writes conditionally with If-Match (S3 conditional writes): 412 over another version, 404 where there is none; multipart completions too', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'config.json', Body: '{"v":1}' }));
    // a writer that read version 1 replaces it; a second writer that read version 1 too is refused
    const second = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'config.json', Body: '{"v":2}', IfMatch: first.ETag }));
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'config.json', Body: '{"v":"lost"}', IfMatch: first.ETag }))))
      .toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'config.json' }))).Body!.transformToString()).toBe('{"v":2}');
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'no-config.json', Body: '{}', IfMatch: second.ETag }))))
      .toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'no-config.json' })))).toMatchObject({ status: 404 });
    // both conditions at once S3 does not implement, whether or not an object is there: nothing written
    for (const Key of ['config.json', 'no-config.json']) {
      expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: '{"v":"both"}', IfMatch: second.ETag, IfNoneMatch: '*' }))))
        .toMatchObject({ code: 'NotImplemented', status: 501 });
      expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key, CopySource: 'photos/config.json', IfMatch: second.ETag, IfNoneMatch: '*' }))))
        .toMatchObject({ code: 'NotImplemented', status: 501 });
    }
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'config.json' }))).ETag).toBe(second.ETag);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'no-config.json' })))).toMatchObject({ status: 404 });

    const complete = async (Key: string, conditions: { IfMatch?: string; IfNoneMatch?: string }) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key }));
      const part = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key, UploadId, PartNumber: 1, Body: 'one part' }));
      const completion = () => s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId, ...conditions, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
      return { completion, UploadId };
    };
    const taken = await complete('config.json', { IfNoneMatch: '*' });
    expect(await failure(taken.completion())).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    // the upload stays, to be completed otherwise or aborted
    expect((await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'config.json', UploadId: taken.UploadId }))).Parts).toHaveLength(1);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'config.json', UploadId: taken.UploadId }));
    const both = await complete('config.json', { IfMatch: second.ETag, IfNoneMatch: '*' });
    expect(await failure(both.completion())).toMatchObject({ code: 'NotImplemented', status: 501 });
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'config.json', UploadId: both.UploadId }));
    expect((await (await complete('config.json', { IfMatch: second.ETag })).completion()).ETag).toMatch(/-1"$/);
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'config.json' }))).Body!.transformToString()).toBe('one part');
  });

  it('refuses keys over 1,024 bytes, with NUL or with . and .. segments', async () => {
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'k'.repeat(1025), Body: 'x' }))))
      .toMatchObject({ code: 'KeyTooLongError', status: 400 });
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'k'.repeat(1024), Body: 'x' }));
    for (const Key of ['a/../b', '..', 'a/./b', 'nul\0byte']) {
      expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: 'x' })))).toMatchObject({ code: 'InvalidArgument', status: 400 });
    }
    expect(existsSync(join(daemon.dataDir, 'share', 'b'))).toBe(false);
  });

  it('stores keys that cannot be files as hidden blobs, still listed and served', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'odd' }));
    const keys = ['a', 'a/b', 'dir/', 'double//slash', `${'s'.repeat(300)}/x`];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: 'odd', Key, Body: `content of ${Key}` }));
    for (const Key of keys) {
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'odd', Key }))).Body!.transformToString()).toBe(`content of ${Key}`);
    }
    // the first of `a` and `a/b` keeps the file
    await eventually(() => existsSync(join(daemon.dataDir, 'share', 'odd', 'a')));
    expect(readFileSync(join(daemon.dataDir, 'share', 'odd', 'a'), 'utf8')).toBe('content of a');
    expect(existsSync(join(daemon.dataDir, 'share', 'odd', 'dir'))).toBe(false);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'odd' }));
    expect(listed.Contents!.map((object) => object.Key)).toEqual([...keys].sort());
    for (const Key of keys) await s3.send(new DeleteObjectCommand({ Bucket: 'odd', Key }));
    expect((await s3.send(new ListObjectsV2Command({ Bucket: 'odd' }))).KeyCount).toBe(0);
  });

  it('stores concurrent PUTs of a key and a key under it, one as the file and one as a blob', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'racing' }));
    const pairs = Array.from({ length: 30 }, (_, i) => [`r${i}`, `r${i}/child`]);
    await Promise.all(pairs.flat().map((Key) => s3.send(new PutObjectCommand({ Bucket: 'racing', Key, Body: `content of ${Key}` }))));
    for (const [parent, child] of pairs) {
      for (const Key of [parent, child]) {
        expect(await (await s3.send(new GetObjectCommand({ Bucket: 'racing', Key }))).Body!.transformToString()).toBe(`content of ${Key}`);
      }
      const path = join(daemon.dataDir, 'share', 'racing', parent);
      // settled once one of them is a file (the other's directory may come first, made for its copy)
      await eventually(() => existsSync(join(path, 'child')) || (existsSync(path) && statSync(path).isFile()));
      const asFile = statSync(path).isFile();
      expect(asFile ? readFileSync(path, 'utf8') : readFileSync(join(path, 'child'), 'utf8')).toBe(asFile ? `content of ${parent}` : `content of ${child}`);
    }
    expect((await s3.send(new ListObjectsV2Command({ Bucket: 'racing' }))).KeyCount).toBe(60);
  });

  it('answers 503 while the share file of a large object was changed by a local program and not yet adopted', async () => {
    const body = randomBytes(70 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'edited.bin', Body: body }));
    appendFileSync(join(daemon.dataDir, 'share', 'photos', 'edited.bin'), ' and edited locally');
    const changed = await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'edited.bin' })));
    expect(changed).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
  });

  it('serves a small object from the database, as uploaded, while its share file is edited and not yet adopted', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'edited.txt', Body: 'as uploaded' }));
    const file = join(daemon.dataDir, 'share', 'photos', 'edited.txt');
    await eventually(() => existsSync(file));
    appendFileSync(file, ' and edited locally');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'edited.txt', Range: 'bytes=3-10' }));
    expect(await got.Body!.transformToString()).toBe('uploaded');
    expect(got.ContentRange).toBe('bytes 3-10/11');
  });

  it('never removes a directory a local program put where an object\'s file was', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'spot', Body: 'first' }));
    const spot = join(daemon.dataDir, 'share', 'photos', 'spot');
    await eventually(() => existsSync(spot));
    rmSync(spot);
    mkdirSync(spot);
    writeFileSync(join(spot, 'inner.txt'), 'local file');
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'spot', Body: 'second' }));
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'spot' }))).Body!.transformToString()).toBe('second');
    expect(readFileSync(join(spot, 'inner.txt'), 'utf8')).toBe('local file');
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'spot' }));
    expect(readFileSync(join(spot, 'inner.txt'), 'utf8')).toBe('local file');
  });

  it('lists with prefix, delimiter, max-keys, continuation tokens, start-after and encoding-type=url (v2 and v1)', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'listing' }));
    const keys = ['a.txt', 'b/1', 'b/2', 'b/c/3', 'c+d e.txt', 'd/1', 'd/2', 'e'];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: 'listing', Key, Body: Key }));
    const all = await s3.send(new ListObjectsV2Command({ Bucket: 'listing' }));
    expect(all.Contents!.map((o) => o.Key)).toEqual(keys);
    expect(all).toMatchObject({ KeyCount: 8, IsTruncated: false, MaxKeys: 1000 });
    expect(all.Contents![0]).toMatchObject({ Size: 5, StorageClass: 'STANDARD', ETag: `"${createHash('md5').update('a.txt').digest('hex')}"` });

    const grouped = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Delimiter: '/' }));
    expect(grouped.Contents!.map((o) => o.Key)).toEqual(['a.txt', 'c+d e.txt', 'e']);
    expect(grouped.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['b/', 'd/']);
    const under = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'b/', Delimiter: '/' }));
    expect(under.Contents!.map((o) => o.Key)).toEqual(['b/1', 'b/2']);
    expect(under.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['b/c/']);

    // pages of 2 entries, common prefixes counted as entries and never repeated
    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
      pages.push([...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!)]);
      token = page.NextContinuationToken;
      expect(page.IsTruncated).toBe(token !== undefined);
    } while (token && pages.length < 10);
    expect(pages.flat().sort()).toEqual(['a.txt', 'b/', 'c+d e.txt', 'd/', 'e']);
    expect(pages.length).toBe(3);

    const after = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', StartAfter: 'b/2' }));
    expect(after.Contents!.map((o) => o.Key)).toEqual(['b/c/3', 'c+d e.txt', 'd/1', 'd/2', 'e']);
    const encoded = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'c', EncodingType: 'url' }));
    // the SDK v3 leaves url-encoded keys to the caller; S3 encodes them as Java's URLEncoder does (a space is '+')
    expect(encoded.Contents!.map((o) => o.Key)).toEqual(['c%2Bd+e.txt']);
    expect(encoded.EncodingType).toBe('url');
    expect(await failure(s3.send(new ListObjectsV2Command({ Bucket: 'listing', ContinuationToken: 'bogus' }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400 });

    const v1 = await s3.send(new ListObjectsCommand({ Bucket: 'listing', Delimiter: '/', MaxKeys: 2 }));
    expect(v1).toMatchObject({ IsTruncated: true, NextMarker: 'b/' });
    const v1next = await s3.send(new ListObjectsCommand({ Bucket: 'listing', Delimiter: '/', Marker: v1.NextMarker }));
    expect(v1next.Contents!.map((o) => o.Key)).toEqual(['c+d e.txt', 'e']);
    expect(v1next.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['d/']);

    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'listing', Prefix: 'd/' }));
    expect(versions.Versions!.map((v) => [v.Key, v.VersionId, v.IsLatest])).toEqual([['d/1', 'null', true], ['d/2', 'null', true]]);
    // pages by key-marker and the version-id-marker (`null`) the page before named; a marker without its key, empty or of no version is refused
    const firstVersion = await s3.send(new ListObjectVersionsCommand({ Bucket: 'listing', Prefix: 'd/', MaxKeys: 1 }));
    expect([firstVersion.NextKeyMarker, firstVersion.NextVersionIdMarker]).toEqual(['d/1', 'null']);
    const nextVersion = await s3.send(new ListObjectVersionsCommand({ Bucket: 'listing', Prefix: 'd/', KeyMarker: 'd/1', VersionIdMarker: 'null' }));
    expect(nextVersion.Versions!.map((v) => v.Key)).toEqual(['d/2']);
    for (const [KeyMarker, VersionIdMarker, message] of [[undefined, 'null', 'A version-id marker cannot be specified without a key marker.'],
      ['d/1', '', 'A version-id marker cannot be empty.'], ['d/1', '3HL4kqtJlcpXroDTDmJ', 'Invalid version id specified']]) {
      expect(await failure(s3.send(new ListObjectVersionsCommand({ Bucket: 'listing', KeyMarker, VersionIdMarker }))))
        .toMatchObject({ code: 'InvalidArgument', status: 400, message });
    }
  });

  it('copies objects keeping or replacing metadata', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'orig.txt', Body: 'original', ContentType: 'text/plain', Metadata: { a: '1' } }));
    const copied = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copies/same.txt', CopySource: 'photos/orig.txt' }));
    expect(copied.CopyObjectResult!.ETag).toBe(`"${createHash('md5').update('original').digest('hex')}"`);
    const same = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'copies/same.txt' }));
    expect(same).toMatchObject({ ContentType: 'text/plain', Metadata: { a: '1' } });
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copies/new.txt', CopySource: '/photos/orig.txt', MetadataDirective: 'REPLACE',
      ContentType: 'text/x-new', Metadata: { b: '2' } }));
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'copies/new.txt' }));
    expect(replaced).toMatchObject({ ContentType: 'text/x-new', Metadata: { b: '2' } });
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'orig.txt', CopySource: 'photos/orig.txt' }))))
      .toMatchObject({ code: 'InvalidRequest', status: 400 });
    // onto itself naming a storage class (even its own, as `aws s3 cp --storage-class STANDARD` in place): allowed, metadata kept
    const inPlace = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'orig.txt', CopySource: 'photos/orig.txt', StorageClass: 'STANDARD' }));
    expect(inPlace.CopyObjectResult!.ETag).toBe(copied.CopyObjectResult!.ETag);
    const recopied = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'orig.txt' }));
    expect(await recopied.Body!.transformToString()).toBe('original');
    expect(recopied).toMatchObject({ ContentType: 'text/plain', Metadata: { a: '1' } });
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'x', CopySource: 'photos/none' }))))
      .toMatchObject({ code: 'NoSuchKey', status: 404 });
    // the source's forms: URL-encoded (a space, a plus, a question mark, UTF-8), with a leading slash, with versionId=null
    const sourceKey = 'copies/a b+c?d été.txt';
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: sourceKey, Body: 'odd source' }));
    for (const CopySource of [`photos/${encodeURIComponent(sourceKey)}`, `/photos/${encodeURIComponent(sourceKey)}?versionId=null`]) {
      await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copies/from-odd.txt', CopySource }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'copies/from-odd.txt' }))).Body!.transformToString()).toBe('odd source');
      await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'copies/from-odd.txt' }));
    }
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'x', CopySource: 'photos/orig.txt?versionId=3HL4kqtJlcpXroDTDmJ' }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400 });
  });

  it('checks x-amz-copy-source-if-* conditions on the source, refusing with 412 and copying nothing', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond/src.txt', Body: 'source' }));
    const earlier = new Date(Date.now() - 60_000);
    // a second after the write (Last-Modified has whole seconds), and not in the future
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const sinceWritten = new Date();
    for (const conditions of [{ CopySourceIfMatch: '"0123"' }, { CopySourceIfNoneMatch: put.ETag }, { CopySourceIfModifiedSince: sinceWritten },
      { CopySourceIfUnmodifiedSince: earlier }, { CopySourceIfNoneMatch: put.ETag, CopySourceIfModifiedSince: earlier }]) {
      const refused = await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'cond/dst.txt', CopySource: 'photos/cond/src.txt', ...conditions })));
      expect(refused).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    }
    expect(existsSync(join(daemon.dataDir, 'share', 'photos', 'cond', 'dst.txt'))).toBe(false);
    // If-Match decides alone when If-Unmodified-Since is sent with it (S3 CopyObject)
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'cond/dst.txt', CopySource: 'photos/cond/src.txt',
      CopySourceIfMatch: put.ETag, CopySourceIfUnmodifiedSince: earlier, CopySourceIfNoneMatch: '"other"', CopySourceIfModifiedSince: earlier }));
    await eventually(() => existsSync(join(daemon.dataDir, 'share', 'photos', 'cond', 'dst.txt')));
    expect(readFileSync(join(daemon.dataDir, 'share', 'photos', 'cond', 'dst.txt'), 'utf8')).toBe('source');
    // an If-Modified-Since in the future is no date the source could have been modified since: ignored, as GetObject does
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'cond/future.txt', CopySource: 'photos/cond/src.txt', CopySourceIfModifiedSince: new Date(Date.now() + 3_600_000) }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond/future.txt' }))).ETag).toBe(put.ETag);
  });

  it('copies conditionally onto the destination with If-None-Match: * and If-Match (S3 conditional writes), writing nothing when they fail', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-copy/src.txt', Body: 'source' }));
    const existing = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-copy/dst.txt', Body: 'kept' }));
    const copy = (Key: string, conditions: { IfMatch?: string; IfNoneMatch?: string }) =>
      s3.send(new CopyObjectCommand({ Bucket: 'photos', Key, CopySource: 'photos/cond-copy/src.txt', ...conditions }));
    expect(await failure(copy('cond-copy/dst.txt', { IfNoneMatch: '*' }))).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await failure(copy('cond-copy/dst.txt', { IfMatch: '"0123456789abcdef0123456789abcdef"' }))).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await failure(copy('cond-copy/none.txt', { IfMatch: existing.ETag }))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cond-copy/dst.txt' }))).Body!.transformToString()).toBe('kept');
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond-copy/none.txt' })))).toMatchObject({ status: 404 });
    await copy('cond-copy/dst.txt', { IfMatch: existing.ETag });
    await copy('cond-copy/fresh.txt', { IfNoneMatch: '*' });
    for (const Key of ['cond-copy/dst.txt', 'cond-copy/fresh.txt']) {
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key }))).Body!.transformToString()).toBe('source');
    }
  });

  it('copies parts from objects with UploadPartCopy: whole, byte ranges, conditions and range errors', async () => {
    const source = randomBytes(3 * MIN_PART + 17);
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'parts/source.bin', Body: source }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'parts/joined.bin', ContentType: 'application/x-joined' }));
    const ranged = await s3.send(new UploadPartCopyCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId, PartNumber: 1,
      CopySource: 'photos/parts/source.bin', CopySourceRange: `bytes=0-${MIN_PART - 1}` }));
    const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
    expect(ranged.CopyPartResult!.ETag).toBe(`"${md5(source.subarray(0, MIN_PART))}"`);
    expect(ranged.CopyPartResult!.LastModified).toBeInstanceOf(Date);
    const whole = await s3.send(new UploadPartCopyCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId, PartNumber: 2,
      CopySource: '/photos/parts%2Fsource.bin', CopySourceIfMatch: `"${md5(source)}"` }));
    const tail = await s3.send(new UploadPartCopyCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId, PartNumber: 3,
      CopySource: 'photos/parts/source.bin', CopySourceRange: `bytes=${source.length - 10}-${source.length - 1}` }));
    const copyPart = (extra: Record<string, unknown>) => s3.send(new UploadPartCopyCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId, PartNumber: 4,
      CopySource: 'photos/parts/source.bin', ...extra }));
    for (const range of ['0-10', 'bytes=5', 'bytes=0-1,3-4', 'bytes=-10', 'bytes=3-']) {
      expect(await failure(copyPart({ CopySourceRange: range }))).toMatchObject({ code: 'InvalidArgument', status: 400 });
    }
    expect(await failure(copyPart({ CopySourceRange: `bytes=0-${source.length}` }))).toMatchObject({ code: 'InvalidRange', status: 416 });
    expect(await failure(copyPart({ CopySourceRange: 'bytes=9-3' }))).toMatchObject({ code: 'InvalidRange', status: 416 });
    expect(await failure(copyPart({ CopySourceIfNoneMatch: `"${md5(source)}"` }))).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(await failure(copyPart({ CopySource: 'photos/parts/none' }))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(copyPart({ UploadId: 'nope' }))).toMatchObject({ code: 'NoSuchUpload', status: 404 });
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId }));
    expect(listed.Parts!.map((part) => [part.PartNumber, part.Size])).toEqual([[1, MIN_PART], [2, source.length], [3, 10]]);
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key: 'parts/joined.bin', UploadId, MultipartUpload: { Parts: [
      { PartNumber: 1, ETag: ranged.CopyPartResult!.ETag }, { PartNumber: 2, ETag: whole.CopyPartResult!.ETag }, { PartNumber: 3, ETag: tail.CopyPartResult!.ETag },
    ] } }));
    expect(done.ETag).toMatch(/-3"$/);
    const expected = Buffer.concat([source.subarray(0, MIN_PART), source, source.subarray(source.length - 10)]);
    expect(readFileSync(join(daemon.dataDir, 'share', 'photos', 'parts', 'joined.bin')).equals(expected)).toBe(true);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'parts/joined.bin' }));
    expect(head).toMatchObject({ ContentLength: expected.length, ContentType: 'application/x-joined' });
  });

  it('deletes one object idempotently and many at once', async () => {
    for (const Key of ['del/1', 'del/2', 'del/3']) await s3.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: Key }));
    expect((await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'del/1' }))).$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'del/1' }))).$metadata.httpStatusCode).toBe(204);
    const many = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'del/2' }, { Key: 'del/3' }, { Key: 'del/none' }] } }));
    expect(many.Deleted!.map((d) => d.Key).sort()).toEqual(['del/2', 'del/3', 'del/none']);
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Quiet: true, Objects: [{ Key: 'del/x' }, { Key: 'a/../b' }] } }));
    expect(quiet.Deleted).toBeUndefined();
    expect(quiet.Errors).toEqual([{ Key: 'a/../b', Code: 'InvalidArgument', Message: 'Object key must not contain "." or ".." path segments' }]);
    expect(existsSync(join(daemon.dataDir, 'share', 'photos', 'del'))).toBe(false);
    // keys the SDK writes with character references in the XML (a newline as &#x0A;), as Go clients write '"' (&#34;)
    const odd = ['odd/line\nbreak', 'odd/"quoted"', "odd/it's & <that>"];
    for (const Key of odd) await s3.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: 'x' }));
    const oddDeleted = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: odd.map((Key) => ({ Key })) } }));
    expect(oddDeleted.Deleted!.map((d) => d.Key).sort()).toEqual([...odd].sort());
    expect((await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'odd/' }))).KeyCount).toBe(0);
    // a key that may only read: each key's AccessDenied in a 200, as S3, quiet or not; nothing deleted
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'del/kept', Body: 'kept' }));
    const reader = s3Client(daemon, await addKey(daemon, ['--read', 'photos']));
    for (const Quiet of [false, true]) {
      const refused = await reader.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Quiet, Objects: [{ Key: 'del/kept' }, { Key: 'del/none' }] } }));
      expect([refused.Deleted, refused.Errors]).toEqual([undefined, ['del/kept', 'del/none'].map((Key) => ({ Key, Code: 'AccessDenied', Message: 'Access Denied' }))]);
    }
    reader.destroy();
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'del/kept' }))).ContentLength).toBe(4);
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'del/kept' }));
  });

  it('lists a key holding a control character as S3 writes it, a character reference (&#x1;), which the SDK reads back', async () => {
    const Key = 'ctl/a\u0001b\u001fc';
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: 'x' }));
    expect((await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'ctl/' }))).Contents?.map((object) => object.Key)).toEqual([Key]);
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Sha256 as never, uriEscapePath: false });
    const url = new URL(`${s3Endpoint(daemon)}/photos?list-type=2&prefix=ctl%2F`);
    const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/photos',
      query: { 'list-type': '2', prefix: 'ctl/' }, headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const body = await (await fetch(url, { headers: signed.headers })).text();
    expect(body).toContain('<Key>ctl/a&#x1;b&#x1F;c</Key>');
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key }));
  });

  it('deletes conditionally with If-Match, as S3: 412 on another ETag, 404 when there is no object', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', Body: 'version 1' }));
    expect(await failure(s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', IfMatch: '"0123456789abcdef0123456789abcdef"' }))))
      .toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt' }))).ETag).toBe(put.ETag);
    expect((await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', IfMatch: put.ETag }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt' })))).toMatchObject({ status: 404 });
    expect(await failure(s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', IfMatch: '*' }))))
      .toMatchObject({ code: 'NoSuchKey', status: 404 });
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', Body: 'version 2' }));
    expect((await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt', IfMatch: '*' }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond-del.txt' })))).toMatchObject({ status: 404 });
    // DeleteObjects: the ETag element of an object
    const kept = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-del/kept', Body: 'kept' }));
    const gone = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cond-del/gone', Body: 'gone' }));
    const many = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [
      { Key: 'cond-del/kept', ETag: gone.ETag }, { Key: 'cond-del/gone', ETag: gone.ETag }, { Key: 'cond-del/none', ETag: '*' },
    ] } }));
    expect(many.Deleted!.map((d) => d.Key)).toEqual(['cond-del/gone']);
    expect(many.Errors!.map((e) => [e.Key, e.Code]).sort()).toEqual([['cond-del/kept', 'PreconditionFailed'], ['cond-del/none', 'NoSuchKey']]);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cond-del/kept' }))).ETag).toBe(kept.ETag);
  });

  it('lists uploads in progress by key, a key\'s by initiation time, with a delimiter\'s common prefixes, page by page', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'pending' }));
    const started: Array<[string, string]> = [];
    for (const Key of ['top.bin', 'logs/2026/b.bin', 'top.bin', 'logs/x.bin', 'logs/2026/a.bin', 'top.bin']) {
      started.push([Key, (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'pending', Key }))).UploadId!]);
      // distinct initiation times: a key's uploads are listed in that order, not by their random ids
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const expected = [...started].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const pages: Array<Array<[string, string]>> = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (let page = 0; page < 10; page++) {
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'pending', MaxUploads: 2, ...markers }));
      pages.push((listed.Uploads ?? []).map((upload) => [upload.Key!, upload.UploadId!]));
      if (!listed.IsTruncated) break;
      markers = { KeyMarker: listed.NextKeyMarker, UploadIdMarker: listed.NextUploadIdMarker };
    }
    expect(pages.map((page) => page.length)).toEqual([2, 2, 2]);
    expect(pages.flat()).toEqual(expected);
    const rolled = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'pending', Delimiter: '/' }));
    expect(rolled.CommonPrefixes).toEqual([{ Prefix: 'logs/' }]);
    expect(rolled.Uploads!.map((upload) => upload.Key)).toEqual(['top.bin', 'top.bin', 'top.bin']);
    const inLogs = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'pending', Delimiter: '/', Prefix: 'logs/' }));
    expect([inLogs.CommonPrefixes, inLogs.Uploads!.map((upload) => upload.Key)]).toEqual([[{ Prefix: 'logs/2026/' }], ['logs/x.bin']]);
    // a common prefix counts as one entry, and the next page starts after all of it
    const first = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'pending', Delimiter: '/', MaxUploads: 1 }));
    expect([first.CommonPrefixes, first.Uploads, first.IsTruncated, first.NextKeyMarker, first.NextUploadIdMarker]).toEqual([[{ Prefix: 'logs/' }], undefined, true, 'logs/', '']);
    const second = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'pending', Delimiter: '/', MaxUploads: 5, KeyMarker: 'logs/' }));
    expect([second.CommonPrefixes, second.Uploads!.length, second.IsTruncated]).toEqual([undefined, 3, false]);
    for (const [Key, UploadId] of started) await s3.send(new AbortMultipartUploadCommand({ Bucket: 'pending', Key, UploadId }));
  });

  it('uploads in parts: list, complete with the multipart ETag, abort, and the part rules', async () => {
    const Key = 'big/video.bin';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key, ContentType: 'video/mp4', Metadata: { cam: 'gate' } }));
    const parts = [randomBytes(MIN_PART), randomBytes(MIN_PART + 5), randomBytes(1000)];
    const etags: string[] = [];
    for (const [index, Body] of parts.entries()) {
      const part = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key, UploadId, PartNumber: index + 1, Body }));
      expect(part.ETag).toBe(`"${createHash('md5').update(Body).digest('hex')}"`);
      etags.push(part.ETag!);
    }
    const listedParts = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key, UploadId }));
    expect(listedParts.Parts!.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual(parts.map((p, i) => [i + 1, p.length, etags[i]]));
    // pages of max-parts until IsTruncated is false, as clients page; max-parts=0 is an empty last page, not one to ask again
    const paged = [];
    for (let marker = '0', page = 0; page < 10; page++) {
      const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key, UploadId, MaxParts: 2, PartNumberMarker: marker }));
      paged.push(listed.Parts!.map((p) => p.PartNumber));
      if (!listed.IsTruncated) break;
      marker = listed.NextPartNumberMarker!;
    }
    expect(paged).toEqual([[1, 2], [3]]);
    const none = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key, UploadId, MaxParts: 0 }));
    expect([none.Parts, none.MaxParts, none.IsTruncated]).toEqual([undefined, 0, false]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos' }));
    expect(uploads.Uploads!.map((u) => [u.Key, u.UploadId])).toEqual([[Key, UploadId]]);
    // S3: after key-marker alone, only keys greater than it; with upload-id-marker, that key's later uploads too
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos', KeyMarker: Key }))).Uploads).toBeUndefined();
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos', KeyMarker: Key, UploadIdMarker: '0' }))).Uploads!.map((u) => u.UploadId)).toEqual([UploadId]);

    expect(await failure(s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 2, ETag: etags[1] }, { PartNumber: 1, ETag: etags[0] }] } })))).toMatchObject({ code: 'InvalidPartOrder', status: 400 });
    expect(await failure(s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etags[1] }] } })))).toMatchObject({ code: 'InvalidPart', status: 400 });
    expect(await failure(s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 3, ETag: etags[2] }, { PartNumber: 4, ETag: etags[2] }] } })))).toMatchObject({ code: 'InvalidPart', status: 400 });

    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) } }));
    const expected = createHash('md5').update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))).digest('hex');
    expect(done.ETag).toBe(`"${expected}-3"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    expect(got).toMatchObject({ ContentType: 'video/mp4', Metadata: { cam: 'gate' }, ETag: `"${expected}-3"` });
    expect(await failure(s3.send(new ListPartsCommand({ Bucket: 'photos', Key, UploadId })))).toMatchObject({ code: 'NoSuchUpload', status: 404 });
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos' }))).Uploads).toBeUndefined();

    const small = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'small' }));
    const p1 = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId, PartNumber: 1, Body: 'tiny' }));
    const p2 = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId, PartNumber: 2, Body: 'tiny' }));
    // as S3 words it, naming the part too small (its ETag unquoted)
    expect(await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } })).catch((error: unknown) => error)).toMatchObject({
      name: 'EntityTooSmall', message: 'Your proposed upload is smaller than the minimum allowed size', $metadata: { httpStatusCode: 400 },
      ProposedSize: '4', MinSizeAllowed: String(MIN_PART), PartNumber: '1', ETag: p1.ETag!.replace(/"/g, '') });
    expect(await failure(s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId, PartNumber: 10001, Body: 'x' }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400 });
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId }));
    expect(await failure(s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'small', UploadId: small.UploadId, PartNumber: 3, Body: 'x' }))))
      .toMatchObject({ code: 'NoSuchUpload', status: 404 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'small' })))).toMatchObject({ status: 404 });
  });

  it('refuses a part listed twice as not ascending and a part number below 1, and completes a part uploaded twice with its last upload', async () => {
    const md5 = (content: Buffer) => createHash('md5').update(content).digest();
    const upload = { Bucket: 'photos', Key: 'twice.bin', UploadId: (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'twice.bin' }))).UploadId };
    const first = await s3.send(new UploadPartCommand({ ...upload, PartNumber: 1, Body: Buffer.alloc(MIN_PART + 10, 1) }));
    const again = Buffer.alloc(MIN_PART, 2);
    const last = await s3.send(new UploadPartCommand({ ...upload, PartNumber: 1, Body: again }));
    const tail = Buffer.from('tail');
    const second = await s3.send(new UploadPartCommand({ ...upload, PartNumber: 2, Body: tail }));
    expect((await s3.send(new ListPartsCommand(upload))).Parts!.map((part) => [part.PartNumber, part.Size, part.ETag])).toEqual([[1, MIN_PART, last.ETag], [2, 4, second.ETag]]);
    const complete = (Parts: Array<{ PartNumber: number; ETag?: string }>) => s3.send(new CompleteMultipartUploadCommand({ ...upload, MultipartUpload: { Parts } }));
    // S3 answers a part number listed twice as a list not in ascending order (AWS' answer quoted in transloadit/uppy#2324)
    const notAscending = { code: 'InvalidPartOrder', status: 400, message: 'The list of parts was not in ascending order. Parts must be ordered by part number.' };
    expect(await failure(complete([{ PartNumber: 1, ETag: last.ETag }, { PartNumber: 1, ETag: last.ETag }]))).toMatchObject(notAscending);
    expect(await failure(complete([{ PartNumber: 1, ETag: last.ETag }, { PartNumber: 2, ETag: second.ETag }, { PartNumber: 2, ETag: second.ETag }]))).toMatchObject(notAscending);
    expect(await failure(complete([{ PartNumber: 2, ETag: second.ETag }, { PartNumber: 1, ETag: last.ETag }]))).toMatchObject(notAscending);
    for (const PartNumber of [0, -1]) {
      expect(await failure(complete([{ PartNumber, ETag: last.ETag }, { PartNumber: 2, ETag: second.ETag }])), String(PartNumber))
        .toMatchObject({ code: 'InvalidArgument', status: 400, message: 'PartNumber must be >= 1' });
    }
    // the last upload of part 1 replaced the first: the first's ETag names no part
    expect(await failure(complete([{ PartNumber: 1, ETag: first.ETag }, { PartNumber: 2, ETag: second.ETag }]))).toMatchObject({ code: 'InvalidPart', status: 400 });
    const done = await complete([{ PartNumber: 1, ETag: last.ETag }, { PartNumber: 2, ETag: second.ETag }]);
    const etag = `"${createHash('md5').update(Buffer.concat([md5(again), md5(tail)])).digest('hex')}-2"`;
    expect(done.ETag).toBe(etag);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'twice.bin' }));
    expect([got.ETag, got.ContentLength, Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([again, tail]))]).toEqual([etag, MIN_PART + 4, true]);
  });

  it('gives a multipart object the checksum its upload asked for: COMPOSITE of the parts\' checksums, or FULL_OBJECT of the content', async () => {
    const parts = [randomBytes(MIN_PART), randomBytes(1000)];
    const crc32Of = (data: Buffer) => {
      const value = Buffer.alloc(4);
      value.writeUInt32BE(crc32(data));
      return value;
    };
    const upload = async (Key: string, algorithm: 'CRC32' | 'CRC64NVME') => {
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key, ChecksumAlgorithm: algorithm }));
      const uploaded = [];
      for (const [index, Body] of parts.entries()) {
        uploaded.push(await s3.send(new UploadPartCommand({ Bucket: 'photos', Key, UploadId: created.UploadId, PartNumber: index + 1, Body, ChecksumAlgorithm: algorithm })));
      }
      return { created, uploaded };
    };

    // COMPOSITE, CRC32's default: the CRC32 of the parts' CRC32s, then -N
    const composite = await upload('sum/composite.bin', 'CRC32');
    expect(composite.created).toMatchObject({ ChecksumAlgorithm: 'CRC32', ChecksumType: 'COMPOSITE' });
    const partCrcs = parts.map((part) => crc32Of(part).toString('base64'));
    expect(composite.uploaded.map((part) => part.ChecksumCRC32)).toEqual(partCrcs);
    const UploadId = composite.created.UploadId;
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'sum/composite.bin', UploadId }));
    expect(listed).toMatchObject({ ChecksumAlgorithm: 'CRC32', ChecksumType: 'COMPOSITE' });
    expect(listed.Parts!.map((part) => part.ChecksumCRC32)).toEqual(partCrcs);
    const completed = (checksums: string[]) => s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key: 'sum/composite.bin', UploadId,
      MultipartUpload: { Parts: composite.uploaded.map((part, index) => ({ PartNumber: index + 1, ETag: part.ETag, ChecksumCRC32: checksums[index] })) } }));
    expect(await failure(completed([partCrcs[0], 'AAAAAA==']))).toMatchObject({ code: 'InvalidPart', status: 400 });
    const expected = `${crc32Of(Buffer.concat(parts.map(crc32Of))).toString('base64')}-2`;
    expect(await completed(partCrcs)).toMatchObject({ ChecksumCRC32: expected, ChecksumType: 'COMPOSITE' });
    // the SDK leaves a composite checksum unchecked: it is not of the content
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/composite.bin', ChecksumMode: 'ENABLED' }));
    expect(got).toMatchObject({ ChecksumCRC32: expected, ChecksumType: 'COMPOSITE' });
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    // a part read by its number comes with its own checksum, which the SDK checks against it
    for (const [index, part] of parts.entries()) {
      const gotPart = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/composite.bin', PartNumber: index + 1, ChecksumMode: 'ENABLED' }));
      expect(gotPart.ChecksumCRC32).toBe(partCrcs[index]);
      expect(Buffer.from(await gotPart.Body!.transformToByteArray()).equals(part)).toBe(true);
    }
    // GetObjectAttributes: the checksums of the object and of its parts without reading it; ETag unquoted, as S3 sends it there
    const attributes = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/composite.bin',
      ObjectAttributes: ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'] }));
    expect(attributes).toMatchObject({
      ETag: got.ETag!.replace(/"/g, ''), StorageClass: 'STANDARD', ObjectSize: Buffer.concat(parts).length,
      Checksum: { ChecksumCRC32: expected, ChecksumType: 'COMPOSITE' },
      ObjectParts: { TotalPartsCount: 2, PartNumberMarker: '0', NextPartNumberMarker: '2', MaxParts: 1000, IsTruncated: false,
        Parts: parts.map((part, index) => ({ PartNumber: index + 1, Size: part.length, ChecksumCRC32: partCrcs[index] })) },
    });
    expect(attributes.LastModified?.getTime()).toBe(got.LastModified?.getTime());
    const page = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/composite.bin', ObjectAttributes: ['ObjectParts'], MaxParts: 1, PartNumberMarker: '1' }));
    expect(page.ObjectParts).toMatchObject({ TotalPartsCount: 2, PartNumberMarker: '1', NextPartNumberMarker: '2', MaxParts: 1, IsTruncated: false,
      Parts: [{ PartNumber: 2, Size: parts[1].length, ChecksumCRC32: partCrcs[1] }] });
    const noParts = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/composite.bin', ObjectAttributes: ['ObjectParts'], MaxParts: 0 }));
    expect([noParts.ObjectParts!.Parts, noParts.ObjectParts!.IsTruncated]).toEqual([undefined, false]);
    expect([page.ETag, page.Checksum, page.ObjectSize]).toEqual([undefined, undefined, undefined]);
    // named attributes only, and S3's refusals of none or an unknown one
    expect(await failure(s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/composite.bin', ObjectAttributes: [] }))))
      .toMatchObject({ code: 'InvalidRequest', status: 400, message: 'The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty' });
    expect(await failure(s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/composite.bin', ObjectAttributes: ['ETag', 'Size' as 'ETag'] }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400, message: 'Invalid attribute name specified.' });
    expect(await failure(s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/none.bin', ObjectAttributes: ['ETag'] }))))
      .toMatchObject({ code: 'NoSuchKey', status: 404 });
    // a copy is not in parts: a composite checksum does not hold for it
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'sum/composite-copy.bin', CopySource: 'photos/sum/composite.bin' }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/composite-copy.bin', ChecksumMode: 'ENABLED' }))).ChecksumCRC32).toBeUndefined();

    // FULL_OBJECT, CRC64NVME's only type: the CRC64NVME of the whole content, as a PutObject of it has
    const full = await upload('sum/full.bin', 'CRC64NVME');
    expect(full.created).toMatchObject({ ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' });
    const whole = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'sum/whole.bin', Body: Buffer.concat(parts), ChecksumAlgorithm: 'CRC64NVME' }));
    // the object's checksum sent with the completion must be the content's
    const completeFull = (ChecksumCRC64NVME: string) => s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key: 'sum/full.bin', UploadId: full.created.UploadId,
      ChecksumCRC64NVME, ChecksumType: 'FULL_OBJECT',
      MultipartUpload: { Parts: full.uploaded.map((part, index) => ({ PartNumber: index + 1, ETag: part.ETag, ChecksumCRC64NVME: part.ChecksumCRC64NVME })) } }));
    expect(await failure(completeFull('AAAAAAAAAAA='))).toMatchObject({ code: 'BadDigest', status: 400, message: 'The CRC64NVME you specified did not match the calculated checksum.' });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'sum/full.bin' })))).toMatchObject({ status: 404 });
    const fullDone = await completeFull(whole.ChecksumCRC64NVME!);
    expect(fullDone).toMatchObject({ ChecksumCRC64NVME: whole.ChecksumCRC64NVME, ChecksumType: 'FULL_OBJECT' });
    const gotFull = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'sum/full.bin', ChecksumMode: 'ENABLED' }));
    expect(gotFull).toMatchObject({ ChecksumCRC64NVME: whole.ChecksumCRC64NVME, ChecksumType: 'FULL_OBJECT' });
    expect(Buffer.from(await gotFull.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    const fullAttributes = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/full.bin', ObjectAttributes: ['Checksum', 'ObjectParts'] }));
    expect(fullAttributes).toMatchObject({ Checksum: { ChecksumCRC64NVME: whole.ChecksumCRC64NVME, ChecksumType: 'FULL_OBJECT' },
      ObjectParts: { TotalPartsCount: 2, Parts: full.uploaded.map((part, index) => ({ PartNumber: index + 1, ChecksumCRC64NVME: part.ChecksumCRC64NVME })) } });
    // an object not in parts has none to list
    const wholeAttributes = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key: 'sum/whole.bin', ObjectAttributes: ['Checksum', 'ObjectParts', 'ObjectSize'] }));
    expect(wholeAttributes).toMatchObject({ Checksum: { ChecksumCRC64NVME: whole.ChecksumCRC64NVME, ChecksumType: 'FULL_OBJECT' }, ObjectSize: Buffer.concat(parts).length });
    expect(wholeAttributes.ObjectParts).toBeUndefined();

    // a part with another algorithm's checksum, and combinations S3 does not have
    const other = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'sum/other.bin', ChecksumAlgorithm: 'CRC64NVME' }));
    expect(await failure(s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'sum/other.bin', UploadId: other.UploadId, PartNumber: 1, Body: 'x', ChecksumAlgorithm: 'SHA256' }))))
      .toMatchObject({ code: 'InvalidRequest', status: 400, message: 'Checksum Type mismatch occurred, expected checksum Type: crc64nvme, actual checksum Type: sha256' });
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'sum/other.bin', UploadId: other.UploadId }));
    for (const [algorithm, type] of [['SHA256', 'FULL_OBJECT'], ['CRC64NVME', 'COMPOSITE']] as const) {
      expect(await failure(s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'sum/refused.bin', ChecksumAlgorithm: algorithm, ChecksumType: type }))))
        .toMatchObject({ code: 'InvalidRequest', status: 400 });
    }
  });

  it('reads a multipart object part by part (partNumber), part 1 of another object whole, and refuses parts it does not have', async () => {
    const parts = [randomBytes(MIN_PART), randomBytes(MIN_PART + 7), randomBytes(333)];
    const Key = 'by-part.bin';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key }));
    const uploaded = [];
    for (const [index, Body] of parts.entries()) uploaded.push(await s3.send(new UploadPartCommand({ Bucket: 'photos', Key, UploadId, PartNumber: index + 1, Body })));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'photos', Key, UploadId, MultipartUpload: { Parts: uploaded.map((part, index) => ({ PartNumber: index + 1, ETag: part.ETag })) } }));
    let start = 0;
    for (const [index, content] of parts.entries()) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key, PartNumber: index + 1 }));
      const range = `bytes ${start}-${start + content.length - 1}/${Buffer.concat(parts).length}`;
      expect([got.$metadata.httpStatusCode, got.PartsCount, got.ContentLength, got.ContentRange]).toEqual([206, 3, content.length, range]);
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(content)).toBe(true);
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key, PartNumber: index + 1 }));
      expect([head.PartsCount, head.ContentLength, head.ContentRange]).toEqual([3, content.length, range]);
      start += content.length;
    }
    // S3: 416 InvalidPartNumber naming the part asked for and how many there are (LocalStack's S3 model, MinIO's error table)
    const pastTheParts = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key, PartNumber: 4 })));
    expect(pastTheParts.status).toBe(416);
    expect(await pastTheParts.text()).toContain('<Code>InvalidPartNumber</Code><Message>The requested partnumber is not satisfiable</Message><PartNumberRequested>4</PartNumberRequested><ActualPartCount>3</ActualPartCount>');
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key, PartNumber: 4 })))).toMatchObject({ status: 416 });
    // uploaded without checksums: S3 counts its parts and lists none
    const attributes = await s3.send(new GetObjectAttributesCommand({ Bucket: 'photos', Key, ObjectAttributes: ['ObjectParts', 'Checksum'] }));
    expect([attributes.ObjectParts, attributes.Checksum]).toEqual([{ TotalPartsCount: 3 }, undefined]);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key, PartNumber: 1, Range: 'bytes=0-1' }))))
      .toMatchObject({ code: 'InvalidRequest', status: 400, message: 'Cannot specify both Range header and partNumber query parameter' });

    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'single.txt', Body: 'in one piece' }));
    const whole = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'single.txt', PartNumber: 1 }));
    // S3 answers part 1 of an object not uploaded in parts as a range of all of it: 206, Content-Range, no parts count
    expect([whole.$metadata.httpStatusCode, whole.PartsCount, whole.ContentRange, await whole.Body!.transformToString()]).toEqual([206, undefined, 'bytes 0-11/12', 'in one piece']);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'single.txt', PartNumber: 2 }))))
      .toMatchObject({ code: 'InvalidPartNumber', status: 416, message: 'The requested partnumber is not satisfiable' });
    const secondOfOne = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'single.txt', PartNumber: 2 })));
    expect(await secondOfOne.text()).toContain('<PartNumberRequested>2</PartNumberRequested><ActualPartCount>1</ActualPartCount>');
  });

  it('refuses what it does not do rather than storing the object without it: encryption, object lock, ACLs; and version ids other than null', async () => {
    const refusals: Array<[string, Record<string, unknown>, { code: string; status: number; message?: string }]> = [
      ['SSE-S3', { ServerSideEncryption: 'AES256' }, { code: 'NotImplemented', status: 501 }],
      ['SSE-KMS', { ServerSideEncryption: 'aws:kms' }, { code: 'NotImplemented', status: 501 }],
      ['SSE-C', { SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) }, { code: 'NotImplemented', status: 501 }],
      ['object lock', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) },
        { code: 'InvalidRequest', status: 400, message: 'Bucket is missing Object Lock Configuration' }],
      ['a public ACL', { ACL: 'public-read' }, { code: 'AccessControlListNotSupported', status: 400, message: 'The bucket does not allow ACLs' }],
    ];
    for (const [what, extra, refusal] of refusals) {
      expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'refused.txt', Body: 'x', ...extra }))), what).toMatchObject(refusal);
      expect(await failure(s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'refused.txt', ...extra }))), what).toMatchObject(refusal);
    }
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'refused.txt', Body: 'x', StorageClass: 'COLD' as never }))))
      .toMatchObject({ code: 'InvalidStorageClass', status: 400 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'refused.txt' })))).toMatchObject({ status: 404 });
    const bucketRefusals: Array<[Record<string, unknown>, { code: string; status: number }]> = [
      [{ ObjectLockEnabledForBucket: true }, { code: 'NotImplemented', status: 501 }],
      [{ ObjectOwnership: 'ObjectWriter' }, { code: 'NotImplemented', status: 501 }],
      [{ ACL: 'public-read' }, { code: 'InvalidBucketAclWithObjectOwnership', status: 400 }],
      [{ CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }, { code: 'IllegalLocationConstraintException', status: 400 }],
      // us-east-1 is the region a bucket without a constraint is in: S3 refuses it named
      [{ CreateBucketConfiguration: { LocationConstraint: 'us-east-1' } }, { code: 'InvalidLocationConstraint', status: 400 }],
    ];
    for (const [extra, refusal] of bucketRefusals) {
      expect(await failure(s3.send(new CreateBucketCommand({ Bucket: 'refused-bucket', ...extra }))), JSON.stringify(extra)).toMatchObject(refusal);
    }
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: 'refused-bucket' })))).toMatchObject({ status: 404 });
    // the owner's own ACLs change nothing, and are taken
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'owned.txt', Body: 'mine', ACL: 'bucket-owner-full-control' }));

    // buckets are unversioned: an object's one version is "null"
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'owned.txt', VersionId: 'null' }))).Body!.transformToString()).toBe('mine');
    const wrongVersion = { code: 'InvalidArgument', status: 400, message: 'Invalid version id specified' };
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'owned.txt', VersionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY' })))).toMatchObject(wrongVersion);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'owned.txt', VersionId: '' }))))
      .toMatchObject({ code: 'InvalidArgument', status: 400, message: 'Version id cannot be the empty string' });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'owned.txt', SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) }))))
      .toMatchObject({ code: 'InvalidRequest', status: 400, message: 'The encryption parameters are not applicable to this object.' });
    expect(await failure(s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'owned.txt', VersionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY' })))).toMatchObject(wrongVersion);
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'owned.txt', VersionId: 'not-a-version' }] } }));
    // each result names the version asked for, as S3's
    expect(deleted.Errors).toEqual([{ Key: 'owned.txt', VersionId: 'not-a-version', Code: 'InvalidArgument', Message: 'Invalid version id specified' }]);
    // still there
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'owned.txt' }))).Body!.transformToString()).toBe('mine');
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'owned.txt', VersionId: 'null' }));
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'owned.txt' })))).toMatchObject({ status: 404 });
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'owned-too.txt', Body: 'mine' }));
    const removed = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'owned-too.txt', VersionId: 'null' }] } }));
    expect(removed.Deleted).toEqual([{ Key: 'owned-too.txt', VersionId: 'null' }]);
  });

  it('reads ACLs, tags and the configurations a bucket here never has as S3 answers for one without them; setting them is refused', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'configured.txt', Body: 'x' }));
    // ACLs are disabled, as S3's default Object Ownership has them: reading shows the owner's full control
    const ownerOnly = {
      Owner: { ID: '000000000000', DisplayName: 'outpost' },
      Grants: [{ Grantee: { ID: '000000000000', DisplayName: 'outpost', Type: 'CanonicalUser' as const }, Permission: 'FULL_CONTROL' as const }],
    };
    expect(await s3.send(new GetBucketAclCommand({ Bucket: 'photos' }))).toMatchObject(ownerOnly);
    expect(await s3.send(new GetObjectAclCommand({ Bucket: 'photos', Key: 'configured.txt' }))).toMatchObject(ownerOnly);
    expect((await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: 'photos' }))).OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    await s3.send(new PutBucketAclCommand({ Bucket: 'photos', ACL: 'private' }));
    await s3.send(new PutObjectAclCommand({ Bucket: 'photos', Key: 'configured.txt', ACL: 'bucket-owner-full-control' }));
    const aclsDisabled = { code: 'AccessControlListNotSupported', status: 400, message: 'The bucket does not allow ACLs' };
    expect(await failure(s3.send(new PutBucketAclCommand({ Bucket: 'photos', ACL: 'public-read' })))).toMatchObject(aclsDisabled);
    expect(await failure(s3.send(new PutObjectAclCommand({ Bucket: 'photos', Key: 'configured.txt', GrantRead: 'uri=http://acs.amazonaws.com/groups/global/AllUsers' }))))
      .toMatchObject(aclsDisabled);
    // the ACL there is, as a document (s3cmd's cp and mv send the source's), changes nothing and is taken; one more grant is not
    await s3.send(new PutObjectAclCommand({ Bucket: 'photos', Key: 'configured.txt', AccessControlPolicy: ownerOnly }));
    const publicGrant = { Grantee: { URI: 'http://acs.amazonaws.com/groups/global/AllUsers', Type: 'Group' as const }, Permission: 'READ' as const };
    expect(await failure(s3.send(new PutBucketAclCommand({ Bucket: 'photos', AccessControlPolicy: { ...ownerOnly, Grants: [...ownerOnly.Grants, publicGrant] } }))))
      .toMatchObject(aclsDisabled);
    expect(await failure(s3.send(new PutBucketAclCommand({ Bucket: 'photos', AccessControlPolicy: { Owner: ownerOnly.Owner, Grants: [] } })))).toMatchObject(aclsDisabled);

    const missing: Array<[string, Promise<unknown>, string, string]> = [
      ['policy', s3.send(new GetBucketPolicyCommand({ Bucket: 'photos' })), 'NoSuchBucketPolicy', 'The bucket policy does not exist'],
      ['policy status', s3.send(new GetBucketPolicyStatusCommand({ Bucket: 'photos' })), 'NoSuchBucketPolicy', 'The bucket policy does not exist'],
      ['CORS', s3.send(new GetBucketCorsCommand({ Bucket: 'photos' })), 'NoSuchCORSConfiguration', 'The CORS configuration does not exist'],
      ['lifecycle', s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'photos' })), 'NoSuchLifecycleConfiguration', 'The lifecycle configuration does not exist'],
      ['tags', s3.send(new GetBucketTaggingCommand({ Bucket: 'photos' })), 'NoSuchTagSet', 'The TagSet does not exist'],
      ['website', s3.send(new GetBucketWebsiteCommand({ Bucket: 'photos' })), 'NoSuchWebsiteConfiguration', 'The specified bucket does not have a website configuration'],
      ['replication', s3.send(new GetBucketReplicationCommand({ Bucket: 'photos' })), 'ReplicationConfigurationNotFoundError', 'The replication configuration was not found'],
      ['encryption', s3.send(new GetBucketEncryptionCommand({ Bucket: 'photos' })), 'ServerSideEncryptionConfigurationNotFoundError',
        'The server side encryption configuration was not found'],
      ['object lock', s3.send(new GetObjectLockConfigurationCommand({ Bucket: 'photos' })), 'ObjectLockConfigurationNotFoundError',
        'Object Lock configuration does not exist for this bucket'],
      ['public access block', s3.send(new GetPublicAccessBlockCommand({ Bucket: 'photos' })), 'NoSuchPublicAccessBlockConfiguration',
        'The public access block configuration was not found'],
    ];
    for (const [what, command, code, message] of missing) expect(await failure(command), what).toMatchObject({ code, status: 404, message });
    expect((await s3.send(new GetBucketLoggingCommand({ Bucket: 'photos' }))).LoggingEnabled).toBeUndefined();
    expect((await s3.send(new GetBucketAccelerateConfigurationCommand({ Bucket: 'photos' }))).Status).toBeUndefined();
    expect((await s3.send(new GetBucketRequestPaymentCommand({ Bucket: 'photos' }))).Payer).toBe('BucketOwner');
    // deleting a configuration there is none of succeeds, as in S3
    for (const command of [new DeleteBucketPolicyCommand({ Bucket: 'photos' }), new DeleteBucketCorsCommand({ Bucket: 'photos' }),
      new DeleteBucketLifecycleCommand({ Bucket: 'photos' }), new DeleteBucketTaggingCommand({ Bucket: 'photos' }),
      new DeleteBucketWebsiteCommand({ Bucket: 'photos' }), new DeleteBucketEncryptionCommand({ Bucket: 'photos' }),
      new DeletePublicAccessBlockCommand({ Bucket: 'photos' }), new DeleteBucketReplicationCommand({ Bucket: 'photos' })]) {
      expect((await s3.send(command as never) as { $metadata: { httpStatusCode?: number } }).$metadata.httpStatusCode).toBe(204);
    }
    // an object without tags, and the bucket without Object Lock
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'photos', Key: 'configured.txt' }))).TagSet).toEqual([]);
    await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'photos', Key: 'configured.txt' }));
    const noLock = { code: 'InvalidRequest', status: 400, message: 'Bucket is missing Object Lock Configuration' };
    expect(await failure(s3.send(new GetObjectRetentionCommand({ Bucket: 'photos', Key: 'configured.txt' })))).toMatchObject(noLock);
    expect(await failure(s3.send(new PutObjectLegalHoldCommand({ Bucket: 'photos', Key: 'configured.txt', LegalHold: { Status: 'ON' } })))).toMatchObject(noLock);
    // setting a configuration the gateway would not honour is refused
    expect(await failure(s3.send(new PutBucketPolicyCommand({ Bucket: 'photos', Policy: '{"Version":"2012-10-17","Statement":[]}' }))))
      .toMatchObject({ code: 'NotImplemented', status: 501 });
    // of a missing bucket or object: NoSuchBucket, NoSuchKey
    expect(await failure(s3.send(new GetBucketAclCommand({ Bucket: 'no-such-bucket' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(await failure(s3.send(new GetBucketCorsCommand({ Bucket: 'no-such-bucket' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(await failure(s3.send(new GetObjectAclCommand({ Bucket: 'photos', Key: 'no-such-key' })))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await failure(s3.send(new GetObjectTaggingCommand({ Bucket: 'photos', Key: 'no-such-key' })))).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'configured.txt' }))).Body!.transformToString()).toBe('x');
  });

  it('serves presigned GET and PUT URLs and refuses expired ones', async () => {
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'photos', Key: 'presigned.txt' }), { expiresIn: 60 });
    expect((await fetch(putUrl, { method: 'PUT', body: 'via presigned url' })).status).toBe(200);
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'presigned.txt' }), { expiresIn: 60 });
    const got = await fetch(getUrl);
    expect(await got.text()).toBe('via presigned url');
    // the SDK hoists x-amz-meta-* and x-amz-tagging into the URL (and the CRC32 of an empty body, which S3 does not take from a presigned URL)
    const withMetadata = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'photos', Key: 'presigned-meta.txt', Metadata: { camera: 'gate 2', note: 'groß' }, Tagging: 'site=north' }), { expiresIn: 60 });
    expect(new URL(withMetadata).searchParams.get('x-amz-meta-camera')).toBe('gate 2');
    expect((await fetch(withMetadata, { method: 'PUT', body: 'with metadata' })).status).toBe(200);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'presigned-meta.txt' }));
    // a value past US-ASCII is the URL's text, returned as S3 returns it: an RFC 2047 word of its UTF-8 (the SDK does not decode it)
    expect([head.Metadata, head.TagCount]).toEqual([{ camera: 'gate 2', note: `=?UTF-8?B?${Buffer.from('groß').toString('base64')}?=` }, 1]);
    const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'photos', Key: 'presigned.txt' }), { expiresIn: 1, signingDate: new Date(Date.now() - 60_000) });
    const refused = await fetch(expired);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('<Code>AccessDenied</Code>');
  });

  it('answers virtual-host-style requests', async () => {
    // photos.localhost resolves to loopback here, whatever the system resolver says
    const httpAgent = new Agent({
      lookup: ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
        options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)) as never,
    });
    const vhost = s3Client(daemon, credentials, { forcePathStyle: false, endpoint: `http://localhost:${daemon.port('s3')}`, httpAgent });
    try {
      await vhost.send(new PutObjectCommand({ Bucket: 'photos', Key: 'vhost.txt', Body: 'by host name' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'vhost.txt' }))).Body!.transformToString()).toBe('by host name');
      expect((await vhost.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'vhost' }))).KeyCount).toBe(1);
    } finally {
      vhost.destroy();
    }
  });

  it('enforces grants: read-only keys cannot write, others see nothing; anonymous only reads public buckets', async () => {
    const reader = s3Client(daemon, await addKey(daemon, ['--read', 'photos']));
    const stranger = s3Client(daemon, await addKey(daemon, ['--read-write', 'other']));
    const camera = s3Client(daemon, await addKey(daemon, ['--read-write', 'photos']));
    try {
      expect((await reader.send(new GetObjectCommand({ Bucket: 'photos', Key: 'digits.txt' }))).$metadata.httpStatusCode).toBe(200);
      expect(await failure(reader.send(new PutObjectCommand({ Bucket: 'photos', Key: 'r', Body: 'x' })))).toMatchObject({ code: 'AccessDenied', status: 403 });
      expect(await failure(stranger.send(new GetObjectCommand({ Bucket: 'photos', Key: 'digits.txt' })))).toMatchObject({ code: 'AccessDenied', status: 403 });
      expect((await stranger.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
      // a bucket that does not exist is NoSuchBucket to whoever asks, as S3; creating one is the grant's to allow
      expect(await failure(stranger.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })))).toMatchObject({ code: 'NoSuchBucket', status: 404 });
      expect((await fetch(`${s3Endpoint(daemon)}/no-such-bucket/k`)).status).toBe(404);
      expect(await failure(stranger.send(new CreateBucketCommand({ Bucket: 'no-such-bucket' })))).toMatchObject({ code: 'AccessDenied', status: 403 });

      // read-write on one bucket is its objects, not the bucket: a camera's key cannot point its events
      // at a function, expire its objects, open it to other sites or delete it (that takes read-write on "*")
      await camera.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cam.txt', Body: 'x' }));
      await camera.send(new PutObjectTaggingCommand({ Bucket: 'photos', Key: 'cam.txt', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }));
      await camera.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'cam.txt' }));
      expect(await failure(camera.send(new CreateBucketCommand({ Bucket: 'photos' })))).toMatchObject({ code: 'BucketAlreadyOwnedByYou', status: 409 });
      const changes = [
        new PutBucketNotificationConfigurationCommand({ Bucket: 'photos', NotificationConfiguration: {} }),
        new PutBucketLifecycleConfigurationCommand({ Bucket: 'photos', LifecycleConfiguration: { Rules: [{ ID: 'all', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 1 } }] } }),
        new PutBucketCorsCommand({ Bucket: 'photos', CORSConfiguration: { CORSRules: [{ AllowedMethods: ['GET'], AllowedOrigins: ['*'] }] } }),
        new PutBucketTaggingCommand({ Bucket: 'photos', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }),
        new DeleteBucketCorsCommand({ Bucket: 'photos' }), new DeleteBucketTaggingCommand({ Bucket: 'photos' }), new DeleteBucketLifecycleCommand({ Bucket: 'photos' }),
        new DeleteBucketCommand({ Bucket: 'photos' }),
      ];
      for (const change of changes) expect(await failure(camera.send(change as never)), change.constructor.name).toMatchObject({ code: 'AccessDenied', status: 403 });
      expect((await s3.send(new HeadBucketCommand({ Bucket: 'photos' }))).$metadata.httpStatusCode).toBe(200);
    } finally {
      reader.destroy();
      stranger.destroy();
      camera.destroy();
    }
    await s3.send(new CreateBucketCommand({ Bucket: 'public' }));
    await s3.send(new PutObjectCommand({ Bucket: 'public', Key: 'notice.txt', Body: 'open to all' }));
    const anonymous = await fetch(`${s3Endpoint(daemon)}/public/notice.txt`);
    expect(await anonymous.text()).toBe('open to all');
    // as S3 serves a policy allowing Principal "*": a signer whose key has no grant for the bucket too
    const signedStranger = s3Client(daemon, await addKey(daemon, ['--read', 'other']));
    try {
      expect(await (await signedStranger.send(new GetObjectCommand({ Bucket: 'public', Key: 'notice.txt' }))).Body!.transformToString()).toBe('open to all');
      expect(await failure(signedStranger.send(new PutObjectCommand({ Bucket: 'public', Key: 'n', Body: 'x' })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    } finally {
      signedStranger.destroy();
    }
    // uploads in progress are not published yet: their keys and parts are not public
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'public', Key: 'draft/plan.pdf' }));
    expect((await fetch(`${s3Endpoint(daemon)}/public?uploads`)).status).toBe(403);
    expect((await fetch(`${s3Endpoint(daemon)}/public/draft/plan.pdf?uploadId=${upload.UploadId}`)).status).toBe(403);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'public', Key: 'draft/plan.pdf', UploadId: upload.UploadId }));
    expect((await fetch(`${s3Endpoint(daemon)}/public/notice.txt`, { method: 'PUT', body: 'x' })).status).toBe(403);
    // response-* overrides only on a signed request (S3 GetObject): anyone could make a public object's answer say what they like
    for (const method of ['GET', 'HEAD']) {
      const overridden = await fetch(`${s3Endpoint(daemon)}/public/notice.txt?response-content-type=text%2Fhtml`, { method });
      expect([method, overridden.status, overridden.headers.get('content-type')]).toEqual([method, 400, method === 'GET' ? 'application/xml' : null]);
      if (method === 'GET') {
        expect(await overridden.text()).toContain('<Code>InvalidRequest</Code><Message>Request specific response headers cannot be used for anonymous GET requests.</Message>');
      }
    }
    const presigned = await fetch(await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'public', Key: 'notice.txt', ResponseContentType: 'text/x-notice' })));
    expect([presigned.status, presigned.headers.get('content-type'), await presigned.text()]).toEqual([200, 'text/x-notice', 'open to all']);
    // its policy says so, to whoever asks whether it is public; it is the daemon's configuration, not the API's to delete
    const policy = JSON.parse((await s3.send(new GetBucketPolicyCommand({ Bucket: 'public' }))).Policy!);
    expect(policy.Statement).toEqual([expect.objectContaining({ Effect: 'Allow', Principal: '*', Resource: ['arn:aws:s3:::public', 'arn:aws:s3:::public/*'],
      Action: expect.arrayContaining(['s3:GetObject', 's3:ListBucket']) })]);
    expect((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: 'public' }))).PolicyStatus).toEqual({ IsPublic: true });
    expect(await failure(s3.send(new DeleteBucketPolicyCommand({ Bucket: 'public' })))).toMatchObject({ code: 'NotImplemented', status: 501 });
    expect((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: 'public' }))).PolicyStatus).toEqual({ IsPublic: true });
    // its objects and their listing are public, not its configuration
    expect((await fetch(`${s3Endpoint(daemon)}/public?list-type=2`)).status).toBe(200);
    for (const configuration of ['acl', 'notification', 'policy']) expect((await fetch(`${s3Endpoint(daemon)}/public?${configuration}`)).status, configuration).toBe(403);
    expect((await fetch(`${s3Endpoint(daemon)}/public/notice.txt?acl`)).status).toBe(403);
    const closed = await fetch(`${s3Endpoint(daemon)}/photos/digits.txt`);
    expect(closed.status).toBe(403);
    const text = await closed.text();
    expect(text).toContain('<Code>AccessDenied</Code>');
    expect(text).toMatch(/<RequestId>[0-9A-F]{16}<\/RequestId>/);
    expect(closed.headers.get('x-amz-request-id')).toMatch(/^[0-9A-F]{16}$/);
  });

  it('refuses requests that expect the bucket (or a copy\'s source bucket) to belong to another account, changing nothing', async () => {
    const other = '111122223333';
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'owned.txt', Body: 'x', ExpectedBucketOwner: other })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'owned.txt' })))).toMatchObject({ status: 404 });
    expect(await failure(s3.send(new ListObjectsV2Command({ Bucket: 'photos', ExpectedBucketOwner: other })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'owned.txt', CopySource: 'photos/digits.txt', ExpectedSourceBucketOwner: other }))))
      .toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'owned.txt' })))).toMatchObject({ status: 404 });
    // the gateway's own account, as ListBuckets shows it
    const owner = (await s3.send(new ListBucketsCommand({}))).Owner!.ID!;
    await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'owned.txt', CopySource: 'photos/digits.txt', ExpectedBucketOwner: owner, ExpectedSourceBucketOwner: owner }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'owned.txt', ExpectedBucketOwner: owner }))).ContentLength).toBeGreaterThan(0);
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'owned.txt', ExpectedBucketOwner: owner }));
  });

  it('refuses a wrong signature with SignatureDoesNotMatch', async () => {
    const forged = s3Client(daemon, { accessKeyId: credentials.accessKeyId, secretAccessKey: 'x'.repeat(40) });
    try {
      expect(await failure(forged.send(new PutObjectCommand({ Bucket: 'photos', Key: 'forged', Body: 'x' })))).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      forged.destroy();
    }
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'forged' })))).toMatchObject({ status: 404 });
  });

  it('streams a large object both ways, whole and in ranges across its read chunks', async () => {
    const size = 24 * 1024 * 1024;
    // every MiB different: chunks sent out of order would not go unnoticed
    const chunks = Array.from({ length: size / (1024 * 1024) }, () => randomBytes(1024 * 1024));
    const content = Buffer.concat(chunks);
    const md5 = createHash('md5').update(content).digest('hex');
    const { Readable } = await import('node:stream');
    const put = await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'large.bin', Body: Readable.from(chunks), ContentLength: size }));
    expect(put.ETag).toBe(`"${md5}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'large.bin' }));
    const readBack = createHash('md5');
    for await (const piece of got.Body as AsyncIterable<Buffer>) readBack.update(piece);
    expect(readBack.digest('hex')).toBe(md5);
    for (const [first, last] of [[1_048_000, 4_194_500], [5, 2_097_151], [size - 3_000_000, size - 1]]) {
      const range = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'large.bin', Range: `bytes=${first}-${last}` }));
      const bytes = Buffer.from(await range.Body!.transformToByteArray());
      expect(bytes.equals(content.subarray(first, last + 1))).toBe(true);
    }
  });

  it('hashes large bodies uploaded at the same time each on its own, and refuses one whose Content-MD5 is wrong', async () => {
    // from 1 MiB the MD5 is computed in a thread of its own, which the uploads take turns in
    const bodies = Array.from({ length: 3 }, (_, i) => randomBytes(3 * 1024 * 1024 + i * 1000));
    const puts = await Promise.all(bodies.map((body, i) => s3.send(new PutObjectCommand({ Bucket: 'photos', Key: `together-${i}.bin`, Body: body }))));
    expect(puts.map((put) => put.ETag)).toEqual(bodies.map((body) => `"${createHash('md5').update(body).digest('hex')}"`));
    const wrong = createHash('md5').update(bodies[1]).digest('base64');
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'large-md5-bad.bin', Body: bodies[0], ContentMD5: wrong }))))
      .toMatchObject({ code: 'BadDigest', status: 400 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'large-md5-bad.bin' })))).toMatchObject({ status: 404 });
    expect(existsSync(join(daemon.dataDir, 'share', 'photos', 'large-md5-bad.bin'))).toBe(false);
  });
});
