import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest } from './helpers/mqtt.js';

/** One keep-alive connection: sends a request, resolves with the next complete answer's status line, or the error that closed it. */
class Connection {
  private received = '';
  private closed: string | undefined;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk) => { this.received += chunk; });
    socket.on('error', (error) => { this.closed = error.message; });
    socket.on('close', () => { this.closed ??= 'closed'; });
  }

  static async open(port: number): Promise<Connection> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new Connection(socket);
  }

  send(path: string): void {
    this.received = '';
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  }

  async answer(): Promise<string> {
    for (let waited = 0; waited < 5000; waited += 10) {
      const head = this.received.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(this.received)?.[1] ?? 0);
      if (head >= 0 && this.received.length >= head + 4 + length) return this.received.slice(0, this.received.indexOf('\r\n'));
      if (this.closed) return this.closed;
      await sleep(10);
    }
    return 'no answer in 5 s';
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A client that sends its whole request, body and all, before it reads (as Python's http.client and
 * much device code do), and `then` after it (a request pipelined behind): resolves with all it
 * received, or the error that ended it.
 */
async function sendAllThenRead(where: { port: number } | { path: string }, head: string, bodyBytes: number, then = ''): Promise<string> {
  // it goes on sending after the server's FIN, as a client busy writing does
  const socket = connect({ ...('port' in where ? { port: where.port, host: '127.0.0.1' } : { path: where.path }), allowHalfOpen: true });
  let received = '';
  let failed: string | undefined;
  socket.on('data', (chunk) => { received += chunk; });
  socket.on('error', (error: NodeJS.ErrnoException) => { failed ??= error.code ?? error.message; });
  const closed = once(socket, 'close');
  try {
    await once(socket, 'connect');
    socket.write(`${head}Content-Length: ${bodyBytes}\r\n\r\n`);
    const chunk = Buffer.alloc(1 << 20, 0x7b);
    for (let sent = 0; sent < bodyBytes && !failed; sent += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bodyBytes - sent));
      await new Promise((resolve) => socket.write(part, resolve));
    }
    socket.end(then);
    await Promise.race([closed, sleep(10_000)]);
    return failed ?? received;
  } finally {
    socket.destroy();
  }
}

describe('keep-alive connections', () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
  });
  afterAll(async () => {
    daemon.process.kill('SIGCONT');
    await daemon.cleanup();
  });

  it('answer a request that arrived as the idle timeout fired while the daemon was busy, instead of resetting it', async () => {
    // the S3 API (an unsigned ListBuckets: AccessDenied) and the HTTP port
    const connections = await Promise.all([Connection.open(daemon.port('s3')), Connection.open(daemon.port('http'))]);
    const paths = ['/', '/healthz'];
    try {
      connections.forEach((connection, index) => connection.send(paths[index]));
      expect(await Promise.all(connections.map((connection) => connection.answer()))).toEqual(['HTTP/1.1 403 Forbidden', 'HTTP/1.1 200 OK']);
      // Node closes a connection idle for its keep-alive timeout (5 s) and a second: the daemon is
      // stopped before then and the next requests sent after, so it wakes with its timers due and
      // the requests waiting to be read
      await sleep(5_500);
      daemon.process.kill('SIGSTOP');
      await sleep(1_500);
      connections.forEach((connection, index) => connection.send(paths[index]));
      await sleep(100);
      daemon.process.kill('SIGCONT');
      expect(await Promise.all(connections.map((connection) => connection.answer()))).toEqual(['HTTP/1.1 403 Forbidden', 'HTTP/1.1 200 OK']);
    } finally {
      daemon.process.kill('SIGCONT');
      for (const connection of connections) connection.close();
    }
  });

  it('are still closed once idle past the timeout', async () => {
    const connection = await Connection.open(daemon.port('http'));
    try {
      connection.send('/healthz');
      expect(await connection.answer()).toBe('HTTP/1.1 200 OK');
      await sleep(7_000);
      connection.send('/healthz');
      expect(await connection.answer()).toMatch(/closed|ECONNRESET|EPIPE/);
    } finally {
      connection.close();
    }
  });

  it('answer a request target that is no path (or one a URL parser reads a host in) with 400 or 404, and go on serving', async () => {
    const healthz = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    // `//[` made the URL parser throw outside the handler's try: the daemon ended (exit 70)
    const broken = await sendAllThenRead({ port: daemon.port('http') }, 'GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\n', 0, healthz);
    expect(broken).toMatch(/^HTTP\/1\.1 404 Not Found\r\n.*HTTP\/1\.1 200 OK\r\n/s);
    const star = await sendAllThenRead({ port: daemon.port('http') }, 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n', 0, healthz);
    expect(star).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n.*HTTP\/1\.1 200 OK\r\n/s);
    // routed by the path as sent, not as `/healthz` under a host `evil`
    const hosted = await sendAllThenRead({ port: daemon.port('http') }, 'GET //evil/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 0, healthz);
    expect(hosted).toMatch(/^HTTP\/1\.1 404 Not Found\r\n.*HTTP\/1\.1 200 OK\r\n/s);
    const admin = await sendAllThenRead({ path: daemon.socket }, 'OPTIONS * HTTP/1.1\r\nHost: localhost\r\n', 0);
    expect(admin).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(daemon.process.exitCode).toBeNull();
  });

  it('end after a refused body with its answer, not a reset, when the client sends the whole body before reading', async () => {
    const mib = 1024 * 1024;
    // S3: a bad signature, refused before a body too large to read and keep the connection for
    const s3 = await sendAllThenRead({ port: daemon.port('s3') }, 'PUT /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + 'Authorization: AWS4-HMAC-SHA256 Credential=AKIANOSUCHKEY/20261204/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n'
      + 'x-amz-date: 20261204T000000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n', 24 * mib);
    expect(s3).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n.*<Code>(InvalidAccessKeyId|RequestTimeTooSkewed)<\/Code>/s);
    // the HTTP port: an unsigned shadow update
    const http = await sendAllThenRead({ port: daemon.port('http') }, 'POST /things/t1/shadow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n', 24 * mib);
    expect(http).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    // a small body refused unread is read and dropped, and the connection goes on
    const kept = await sendAllThenRead({ port: daemon.port('http') }, 'POST /things/t1/shadow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n', mib / 2,
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(kept).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n.*HTTP\/1\.1 200 OK\r\n/s);
    // the admin API: a body over its limit, and a request pipelined behind it, which is not served
    const thing = JSON.stringify({ name: 'pipelined', password: 'pw' });
    const admin = await sendAllThenRead({ path: daemon.socket }, 'POST /v1/things HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n', 24 * mib,
      `POST /v1/things HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${thing.length}\r\n\r\n${thing}`);
    expect(admin).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n.*request body over/s);
    expect(admin).not.toContain('201 Created');
    expect((await adminRequest(daemon.socket, 'GET', '/v1/things/pipelined'))?.status).toBe(404);
  });
});
