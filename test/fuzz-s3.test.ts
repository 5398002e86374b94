import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyObjectCommand, CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';

// Requests a fuzzing campaign against the S3 port found answered wrongly.
describe('S3 requests found by fuzzing', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'fuzz' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await daemon?.cleanup();
  });

  // x-amz-meta-* names are the client's; JSON.parse, as an object literal would not, makes "__proto__" a plain key
  const metadata: Record<string, string> = JSON.parse('{"__proto__":"p","constructor":"c","a":"1"}');
  /** The x-amz-meta-* headers of a HEAD, read off the wire: the SDK's own Metadata object drops "__proto__" as the old daemon did. */
  async function metadataHeaders(key: string): Promise<string[][]> {
    const url = await getSignedUrl(s3, new HeadObjectCommand({ Bucket: 'fuzz', Key: key }));
    const response = await fetch(url, { method: 'HEAD' });
    expect(response.status).toBe(200);
    return [...response.headers].filter(([name]) => name.startsWith('x-amz-meta-')).sort();
  }
  const expected = [['x-amz-meta-__proto__', 'p'], ['x-amz-meta-a', '1'], ['x-amz-meta-constructor', 'c']];

  it('keeps user metadata named like what objects inherit (x-amz-meta-__proto__, x-amz-meta-constructor)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'fuzz', Key: 'meta', Body: 'x', Metadata: metadata }));
    expect(await metadataHeaders('meta')).toEqual(expected);
  });

  it('keeps them on a copy that replaces the metadata, and on one that copies it', async () => {
    await s3.send(new CopyObjectCommand({ Bucket: 'fuzz', Key: 'replaced', CopySource: 'fuzz/meta', MetadataDirective: 'REPLACE', Metadata: metadata }));
    await s3.send(new CopyObjectCommand({ Bucket: 'fuzz', Key: 'copied', CopySource: 'fuzz/meta' }));
    for (const key of ['replaced', 'copied']) expect(await metadataHeaders(key), key).toEqual(expected);
  });
});
