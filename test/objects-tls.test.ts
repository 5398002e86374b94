import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
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

  it('serves a renewed certificate after SIGHUP (systemctl reload), and keeps the one in use when the new one does not load', async () => {
    const serverSerial = () => new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: daemon.port('s3'), ca: readFileSync(pki.caCert) }, () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.destroy();
      });
      socket.on('error', reject);
    });
    const logged = (matches: (line: any) => boolean) => eventually(() => daemon.logs.some(matches));
    const first = await serverSerial();
    execFileSync('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-extfile', 'server.ext', '-days', '2', '-out', 'server.pem'], { cwd: pki.dir, stdio: 'pipe' });
    daemon.process.kill('SIGHUP');
    await logged((line) => line.msg === 'SIGHUP: reloaded TLS files' && line.listeners.includes('s3'));
    const renewed = await serverSerial();
    expect(renewed).not.toBe(first);
    // a certificate that is not the key's: said, and the renewed one kept
    writeFileSync(pki.serverCert, readFileSync(pki.clientCert));
    daemon.process.kill('SIGHUP');
    await logged((line) => line.service === 'objects' && /^SIGHUP: kept the TLS files in use: s3\.tls: .*server\.pem, .*server\.key do not load/.test(line.msg));
    expect(await serverSerial()).toBe(renewed);
  });

  it('refuses to start with TLS enabled but no certificate', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const error = await TestDaemon.start({ config: { s3: { tls: { enabled: true } } }, dataDir }).catch((e: Error) => e);
    rmSync(dataDir, { recursive: true, force: true });
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('expected "cert" and "key" when TLS is enabled');
  });
});
