import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { Sha256 } from './helpers/sigv4.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';

/** A request on a raw socket: its head and what of its body is sent so far; `answer` once the server closes it. */
interface OpenRequest { socket: Socket; answer: Promise<{ status: number; body: string }> }

function openRequest(target: { port: number } | { path: string }, head: string, body: Buffer): OpenRequest {
  const socket = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    let response = '';
    socket.on('data', (chunk) => { response += chunk; });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0), body: response.slice(response.indexOf('\r\n\r\n') + 4) }));
  });
  socket.write(head);
  socket.write(body);
  return { socket, answer };
}

const MIB = 1024 * 1024;

describe('request bodies held whole in memory', () => {
  let daemon: TestDaemon;
  let signer: SignatureV4;
  let s3: S3Client;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { http: { auth: 'none', maxBodyMemoryBytes: 8 * MIB } } });
    const credentials = await addKey(daemon);
    s3 = s3Client(daemon, credentials);
    await s3.send(new CreateBucketCommand({ Bucket: 'held' }));
    signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Sha256 as never, uriEscapePath: false, applyChecksum: false });
  });
  afterAll(async () => {
    try {
      expect(daemon.logs.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await daemon.cleanup();
    }
  });

  const invoke = (announced: number, sent: number) => openRequest({ port: daemon.port('http') },
    `POST /2015-03-31/functions/absent/invocations HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: ${announced}\r\nconnection: close\r\n\r\n`,
    Buffer.alloc(sent, 0x20));

  async function deleteObjects(size: number): Promise<OpenRequest> {
    const port = daemon.port('s3');
    const body = Buffer.from(`<Delete>${' '.repeat(size - 46)}<Object><Key>k</Key></Object></Delete>`);
    const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port, path: '/held', query: { delete: '' }, headers: {
      host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(body.length),
      'content-md5': createHash('md5').update(body).digest('base64'),
    } });
    const head = `POST /held?delete= HTTP/1.1\r\n${Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}connection: close\r\n\r\n`;
    return openRequest({ port }, head, body);
  }

  const adminPost = (size: number) => openRequest({ path: join(daemon.dataDir, 'admin.sock') },
    `POST /v1/things HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${size + 11}\r\nconnection: close\r\n\r\n`,
    Buffer.from(`{"name":"${'x'.repeat(size)}"}`));

  it('are bounded together across the HTTP, S3 and admin listeners: one beyond is refused with its protocol\'s "slow down", and the room comes back when a request ends', async () => {
    // 6 MB of a synchronous Invoke taken as announced, its body not yet sent
    const held = invoke(6_000_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const lambda = await invoke(3_000_000, 3_000_000).answer;
    expect(lambda.status).toBe(429);
    expect(JSON.parse(lambda.body)).toMatchObject({ Type: 'User', message: expect.stringContaining('http.maxBodyMemoryBytes') });
    const s3 = await (await deleteObjects(3 * MIB)).answer;
    expect(s3.status).toBe(503);
    expect(s3.body).toContain('<Code>SlowDown</Code>');
    const admin = await adminPost(3 * MIB).answer;
    expect(admin.status).toBe(503);
    expect(JSON.parse(admin.body).error).toMatch(/http\.maxBodyMemoryBytes/);
    // smaller ones still fit beside the held one
    expect((await invoke(2, 2).answer).status).toBe(400);

    held.socket.destroy();
    // once it is gone, the same requests are read and answered on their merits
    await eventually(async () => expect((await invoke(3_000_000, 3_000_000).answer).status).toBe(400));
    const deleted = await (await deleteObjects(3 * MIB)).answer;
    expect(deleted.status).toBe(200);
    expect(deleted.body).toContain('<Deleted><Key>k</Key></Deleted>');
    expect((await adminPost(3 * MIB).answer).status).toBe(400);
  });

  it('hold the S3 listings a client is slow to read too: one beyond is refused with SlowDown, and listings go on once it is read', async () => {
    // 850 keys of 1,000 escaped characters: a listing of 4.4 MB
    const keys = Array.from({ length: 850 }, (_, i) => `listed/${String(i).padStart(4, '0')}${'&'.repeat(989)}`);
    for (let first = 0; first < keys.length; first += 25) {
      await Promise.all(keys.slice(first, first + 25).map((Key) => s3.send(new PutObjectCommand({ Bucket: 'held', Key, Body: '' }))));
    }
    const port = daemon.port('s3');
    const listing = async () => {
      const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/held', query: { 'list-type': '2', prefix: 'listed/' },
        headers: { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
      const head = `GET /held?list-type=2&prefix=listed%2F HTTP/1.1\r\n${Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}connection: close\r\n\r\n`;
      return openRequest({ port }, head, Buffer.alloc(0));
    };
    // a client that does not read: most of its 4.4 MB waits in the daemon
    const unread = await listing();
    unread.socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const refused = await (await listing()).answer;
    expect(refused.status).toBe(503);
    expect(refused.body).toContain('<Code>SlowDown</Code>');
    // once it is read to its end, the memory is back
    unread.socket.resume();
    expect((await unread.answer).status).toBe(200);
    const listed = await (await listing()).answer;
    expect(listed.status).toBe(200);
    expect(listed.body.match(/<Key>/g)).toHaveLength(850);
  }, 60_000);

  it('hold the Invoke results a client is slow to read too: the Invokes after them are refused with 429 until they are read', async () => {
    const pkg = writePackage({ 'index.js': 'exports.handler = async () => "x".repeat(5_000_000);\n', 'template.yaml': template('Large', { Handler: 'index.handler', MemorySize: 256 }) });
    try {
      expect((await outpost(daemon.socket, ['deploy', pkg.dir])).code).toBe(0);
      const port = daemon.port('http');
      const head = `POST /2015-03-31/functions/Large/invocations HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n`;
      // clients that do not read: most of each 5 MB result waits in the daemon, until more than 8 MiB do
      const unread: OpenRequest[] = [];
      for (let i = 0; i < 6; i++) {
        const request = openRequest({ port }, head, Buffer.from('{}'));
        request.socket.pause();
        unread.push(request);
        await new Promise((resolve) => setTimeout(resolve, 700));
      }
      for (const request of unread) request.socket.resume();
      const answers = await Promise.all(unread.map((request) => request.answer));
      expect(answers.slice(0, 2).map((answer) => answer.status)).toEqual([200, 200]);
      expect(answers[5].status).toBe(429);
      expect(JSON.parse(answers[5].body)).toMatchObject({ message: expect.stringContaining('http.maxBodyMemoryBytes') });
      // once they are read, Invokes go on
      expect((await openRequest({ port }, head, Buffer.from('{}')).answer).status).toBe(200);
    } finally {
      pkg.remove();
    }
  }, 60_000);
});
