import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { S3Client as SyncS3Client } from '../src/sync/objects/s3-client.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { freePort } from './helpers/cloud.js';

// The sync agent's S3 client opens a body given as a function (the local object's GET) only once its
// connection to the cloud is up, so that an attempt the cloud refuses reads nothing of the object.

const KEY = { accessKeyId: 'AKIAOUTPOSTTESTKEY01', secretAccessKey: 'outpost/test/secret/0123456789abcdefghij' };

/** Takes every PUT's body (kept, as text) and answers 200. */
function bodyTaker(): { handler: (req: IncomingMessage, res: ServerResponse) => void; received: string[] } {
  const received: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push(Buffer.concat(chunks).toString());
      res.writeHead(200, { ETag: '"0"', 'Content-Length': 0 }).end();
    });
  };
  return { handler, received };
}

const listening = (server: Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));

describe('sync S3 client: a body opened once connected', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki('unused');
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  for (const protocol of ['http', 'https'] as const) {
    it(`opens it after the connection is made (${protocol}: new and kept-alive sockets), and sends it`, async () => {
      const { handler, received } = bodyTaker();
      // the server's part of a TLS handshake held back 100 ms (its certificate chosen by the name the
      // client asked for): opened at the TCP connection, the body would come before it
      const certificates = createSecureContext({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) });
      const handshakes: string[] = [];
      const server = protocol === 'https'
        ? createHttpsServer({ SNICallback: (name, done) => setTimeout(() => {
          handshakes.push(name);
          done(null, certificates);
        }, 100) }, handler)
        : createHttpServer(handler);
      const connections: unknown[] = [];
      server.on('connection', (socket) => connections.push(socket));
      const port = await listening(server);
      const client = new SyncS3Client({ endpoint: `${protocol}://localhost:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: KEY, connections: 1,
        onlyCertificate: protocol === 'https' ? readFileSync(pki.caCert, 'utf8') : undefined });
      try {
        for (const round of [1, 2]) {
          const openedAfter: Array<[connections: number, secured: number]> = [];
          const etag = await client.putObject('cloud', `round-${round}.txt`, async () => {
            openedAfter.push([connections.length, handshakes.length]);
            return Readable.from([Buffer.from(`body ${round}`)]);
          }, 6, { metadata: {} });
          expect(etag).toBe('"0"');
          // one connection for both rounds (the second kept alive), past its TLS handshake when it is one
          expect(openedAfter).toEqual([[1, protocol === 'https' ? 1 : 0]]);
        }
        expect(received).toEqual(['body 1', 'body 2']);
      } finally {
        client.destroy();
        server.closeAllConnections();
        server.close();
      }
    });
  }

  it('never opens it when the connection is refused, and fails the request with the error of opening it', async () => {
    const refused = new SyncS3Client({ endpoint: `http://127.0.0.1:${await freePort()}`, region: 'us-east-1', forcePathStyle: true, credentials: KEY, connections: 1 });
    let opened = 0;
    const open = async () => {
      opened++;
      return Readable.from([Buffer.from('x')]);
    };
    await expect(refused.putObject('cloud', 'a.txt', open, 1, { metadata: {} })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(refused.uploadPart('cloud', 'a.txt', 'upload', 1, open, 1)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(opened).toBe(0);
    refused.destroy();

    const { handler, received } = bodyTaker();
    const server = createHttpServer(handler);
    const port = await listening(server);
    const client = new SyncS3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: KEY, connections: 1 });
    try {
      class LocalObjectGone extends Error {}
      await expect(client.putObject('cloud', 'b.txt', async () => { throw new LocalObjectGone('changed meanwhile'); }, 1, { metadata: {} })).rejects.toBeInstanceOf(LocalObjectGone);
      expect(received).toEqual([]);
    } finally {
      client.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});
