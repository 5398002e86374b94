import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';

/** A socket that sent half a request's headers and then nothing: what a slow or hostile client holds. */
function halfRequest(port: number): Promise<Socket & { ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const ended = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ${'x'.repeat(8000)}`);
      resolve(Object.assign(socket, { ended }));
    });
    socket.once('error', reject);
  });
}

/** A socket that sends nothing at all. */
function silentSocket(port: number): Promise<Socket & { ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const ended = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(Object.assign(socket, { ended })));
    socket.once('error', reject);
  });
}

async function closedWithin(socket: { ended: Promise<void> }, ms: number): Promise<boolean> {
  return Promise.race([socket.ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

// Each socket holds memory (its headers while they arrive); a board of 128 MB cannot give every
// client one, so each HTTP port takes a bounded number at once, as the MQTT listener does (the admin
// TCP port too: its token is checked only once the headers are in).
describe('connection limits of the S3, HTTP and admin TCP ports', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {
      s3: { maxConnections: 3 }, http: { auth: 'none', maxConnections: 2 },
      admin: { tcp: { enabled: true, port: 0, token: 'a-token-of-some-length', maxConnections: 2 } },
    } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  for (const [name, limit] of [['s3', 3], ['http', 2], ['admin-tcp', 2]] as const) {
    it(`closes a connection to the ${name} port beyond ${name}.maxConnections at once, and takes new ones once others end`, async () => {
      const held = await Promise.all(Array.from({ length: limit }, () => halfRequest(daemon.port(name))));
      const beyond = await halfRequest(daemon.port(name));
      expect(await closedWithin(beyond, 2000)).toBe(true);
      for (const socket of held) expect(await closedWithin(socket, 50)).toBe(false);
      for (const socket of held) socket.destroy();
      await Promise.all(held.map((socket) => socket.ended));
      // the server notices the closes on its next turn
      await new Promise((resolve) => setTimeout(resolve, 100));
      const status = (await fetch(`http://127.0.0.1:${daemon.port(name)}/${name === 's3' ? 'minio/health/live' : 'healthz'}`)).status;
      expect(status).toBeLessThan(500);
      const warned = daemon.logs.some((line) => line.msg === 'connections refused: maxConnections reached' && line.maxConnections === limit);
      expect(warned).toBe(true);
    });
  }

  it('closes connections that send nothing within the headers\' 10 s, so that they do not hold every place of a port for good', async () => {
    const ports = [['s3', 3], ['http', 2], ['admin-tcp', 2]] as const;
    const held = await Promise.all(ports.flatMap(([name, limit]) => Array.from({ length: limit }, () => silentSocket(daemon.port(name)))));
    const closed = await Promise.all(held.map((socket) => closedWithin(socket, 15_000)));
    expect(closed.every(Boolean)).toBe(true);
    for (const [name] of ports) {
      const status = (await fetch(`http://127.0.0.1:${daemon.port(name)}/${name === 's3' ? 'minio/health/live' : 'healthz'}`)).status;
      expect(status).toBeLessThan(500);
    }
  }, 30_000);
});
