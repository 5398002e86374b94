import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand,
  type S3Client, S3ServiceException, UploadPartCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { eventually } from './helpers/eventually.js';

describe('abandoned multipart uploads', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  const partsDir = () => join(daemon.dataDir, 'share', '.outpost', 'uploads');

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { s3: { abortIncompleteUploadsAfterSeconds: 2, minPartBytes: 1024, maxObjectBytes: 4096 } } });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'uploads' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await daemon.cleanup();
  });

  it('are aborted with their parts once s3.abortIncompleteUploadsAfterSeconds have passed since they were initiated', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'left/behind.bin' }));
    await s3.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'left/behind.bin', UploadId, PartNumber: 1, Body: 'a part nobody completes' }));
    expect(readdirSync(join(partsDir(), UploadId!))).toEqual(['1']);
    const listed = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: 'uploads' }))).Uploads?.map((upload) => upload.UploadId) ?? [];
    await eventually(async () => !(await listed()).includes(UploadId), 10_000, 200);
    // The upload's row goes first, its parts right after (a crash in between leaves them to the start-up sweep).
    await eventually(() => !existsSync(join(partsDir(), UploadId!)), 5000);
    // a fresh upload is not touched by the same sweep
    const fresh = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'fresh.bin' }));
    expect(await listed()).toEqual([fresh.UploadId]);
    try {
      await s3.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'left/behind.bin', UploadId, PartNumber: 2, Body: 'late' }));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(S3ServiceException);
      expect((error as S3ServiceException).name).toBe('NoSuchUpload');
    }
  });

  it('limit each request body to s3.maxObjectBytes, not the object they make', async () => {
    const refused = await s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: 'whole.bin', Body: Buffer.alloc(5000, 1) })).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'EntityTooLarge' });
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'parts.bin' }));
    const parts = [];
    for (const PartNumber of [1, 2, 3]) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'uploads', Key: 'parts.bin', UploadId, PartNumber, Body: Buffer.alloc(3000, PartNumber) }));
      parts.push({ PartNumber, ETag });
    }
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'parts.bin', UploadId, MultipartUpload: { Parts: parts } }));
    expect(done.ETag).toMatch(/-3"$/);
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'parts.bin' }))).Body!.transformToByteArray());
    expect(got).toEqual(Buffer.concat([1, 2, 3].map((n) => Buffer.alloc(3000, n))));

    // such an object is copied in parts, as S3 wants one over 5 GiB copied
    const copy = await s3.send(new CopyObjectCommand({ Bucket: 'uploads', Key: 'copy.bin', CopySource: 'uploads/parts.bin' })).catch((error: unknown) => error);
    expect(copy).toMatchObject({ name: 'InvalidRequest', message: 'The specified copy source is larger than the maximum allowable size for a copy source: 4096' });
    await expect(s3.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'copy.bin' }))).rejects.toMatchObject({ name: 'NotFound' });
    const inParts = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: 'copy.bin' }));
    const copiedParts = [];
    for (const [PartNumber, range] of [[1, 'bytes=0-4095'], [2, 'bytes=4096-8191'], [3, 'bytes=8192-8999']] as const) {
      const { CopyPartResult } = await s3.send(new UploadPartCopyCommand({ Bucket: 'uploads', Key: 'copy.bin', UploadId: inParts.UploadId, PartNumber, CopySource: 'uploads/parts.bin', CopySourceRange: range }));
      copiedParts.push({ PartNumber, ETag: CopyPartResult!.ETag });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'uploads', Key: 'copy.bin', UploadId: inParts.UploadId, MultipartUpload: { Parts: copiedParts } }));
    const copied = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'copy.bin' }))).Body!.transformToByteArray());
    expect(copied).toEqual(got);
  });
});
