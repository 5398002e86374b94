import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyObjectCommand, CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash } from 'node:crypto';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { addKey, s3Client, s3Endpoint, type S3Credentials } from './helpers/objects.js';
import { Sha256 } from './helpers/sigv4.js';

// Requests a fuzzing campaign against the S3 port found answered wrongly.
describe('S3 requests found by fuzzing', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  let credentials: S3Credentials;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
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

  /** A DeleteObjects with this body as it is (the SDK would escape its `&`), signed with the SDK's signer. */
  async function deleteObjects(xml: string): Promise<{ status: number; body: string }> {
    const { port } = new URL(s3Endpoint(daemon));
    const signer = new SignatureV4({ credentials, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false });
    const headers = { host: `127.0.0.1:${port}`, 'content-md5': createHash('md5').update(xml).digest('base64') };
    const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: Number(port), path: '/fuzz', query: { delete: '' }, headers, body: xml });
    const response = await fetch(`${s3Endpoint(daemon)}/fuzz?delete`, { method: 'POST', headers: signed.headers as Record<string, string>, body: xml });
    return { status: response.status, body: await response.text() };
  }

  // XML 1.0 §4.1 WFC Entity Declared: a request has no DTD, so only amp, lt, gt, quot and apos are
  it('refuses a reference to an entity named like what objects inherit as MalformedXML, deleting nothing', async () => {
    const inherited = 'afunction Object() { [native code] }b';
    await s3.send(new PutObjectCommand({ Bucket: 'fuzz', Key: inherited, Body: 'x' }));
    for (const reference of ['&constructor;', '&toString;', '&__proto__;', '&_undeclared;']) {
      const answer = await deleteObjects(`<Delete><Object><Key>a${reference}b</Key></Object></Delete>`);
      expect(answer.status, reference).toBe(400);
      expect(answer.body, reference).toContain('<Code>MalformedXML</Code>');
    }
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'fuzz', Key: inherited }))).ContentLength).toBe(1);
    const predefined = await deleteObjects('<Delete><Object><Key>a&amp;b</Key></Object></Delete>');
    expect(predefined.body).toContain('<Deleted><Key>a&amp;b</Key></Deleted>');
  });
});

describe('sync of S3 objects found by fuzzing', () => {
  it('uploads user metadata named x-amz-meta-__proto__ to the cloud with the object', { timeout: 60_000 }, async () => {
    const cloudDaemon = await TestDaemon.start({ config: {} });
    let gateway: TestDaemon | undefined;
    try {
      const cloudKey = await addKey(cloudDaemon);
      const cloudS3 = s3Client(cloudDaemon, { ...cloudKey });
      await cloudS3.send(new CreateBucketCommand({ Bucket: 'cloud' }));
      gateway = await TestDaemon.start({
        config: {
          cloud: { s3: { endpoint: s3Endpoint(cloudDaemon), bucket: 'cloud', forcePathStyle: true, ...cloudKey, retryMinMs: 100, retryMaxMs: 300 } },
          sync: { objects: [{ name: 'meta', from: 'meta' }] },
        },
      });
      const local = s3Client(gateway, await addKey(gateway));
      await local.send(new CreateBucketCommand({ Bucket: 'meta' }));
      await local.send(new PutObjectCommand({ Bucket: 'meta', Key: 'm', Body: 'x', Metadata: JSON.parse('{"__proto__":"p","a":"1"}') }));
      const url = await getSignedUrl(cloudS3, new HeadObjectCommand({ Bucket: 'cloud', Key: 'm' }));
      const head = await eventually(async () => {
        const response = await fetch(url, { method: 'HEAD' });
        return response.status === 200 ? response : undefined;
      }, 20_000, 200);
      expect([...head.headers].filter(([name]) => name.startsWith('x-amz-meta-')).sort()).toEqual([['x-amz-meta-__proto__', 'p'], ['x-amz-meta-a', '1']]);
      local.destroy();
      cloudS3.destroy();
    } finally {
      await gateway?.cleanup();
      await cloudDaemon.cleanup();
    }
  });
});
