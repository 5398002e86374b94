import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestDaemon } from './helpers/daemon.js';

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
});
