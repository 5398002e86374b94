import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { addKey } from './helpers/objects.js';

describe('S3 API over TLS', () => {
  let pki: TestPki;
  let daemon: TestDaemon;

  beforeAll(async () => {
    pki = makeTestPki('unused');
    daemon = await TestDaemon.start({ config: { s3: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey } } } });
  });
  afterAll(async () => {
    await daemon.cleanup();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('serves HTTPS on s3.port when s3.tls is enabled', async () => {
    expect(daemon.listeners.find((listener) => listener.name === 's3')).toMatchObject({ protocol: 'https' });
    const s3 = new S3Client({
      endpoint: `https://127.0.0.1:${daemon.port('s3')}`, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
      credentials: await addKey(daemon),
      requestHandler: { httpsAgent: new Agent({ ca: readFileSync(pki.caCert) }) },
    });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'secure' }));
      await s3.send(new PutObjectCommand({ Bucket: 'secure', Key: 'secret.txt', Body: 'over tls' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'secure', Key: 'secret.txt' }))).Body!.transformToString()).toBe('over tls');
    } finally {
      s3.destroy();
    }
  });

  it('refuses to start with TLS enabled but no certificate', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const error = await TestDaemon.start({ config: { s3: { tls: { enabled: true } } }, dataDir }).catch((e: Error) => e);
    rmSync(dataDir, { recursive: true, force: true });
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('expected "cert" and "key" when TLS is enabled');
  });
});
