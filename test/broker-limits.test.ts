import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import mqttPacket from 'mqtt-packet';
import { RawMqtt, addThing, collectMessages, connectAndCollect, connectClient, messagesWithin, subscribeGranted } from './helpers/mqtt.js';

describe('broker limits and listeners', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true, maxConnections: 3, ws: { enabled: true, allowedOrigins: ['HTTPS://Dashboard.example:8443/'] } },
        admin: { tcp: { enabled: true, port: 0, token: 'a-token-of-some-length' } },
      },
    });
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('speaks MQTT over WebSocket', async () => {
    const client = await connectClient(`ws://127.0.0.1:${daemon.port('mqtt-ws')}`, { clientId: 'ws-client' });
    const echo = collectMessages(client, 1);
    await client.subscribeAsync('ws/echo', { qos: 1 });
    await client.publishAsync('ws/echo', 'over websocket', { qos: 1 });
    expect((await echo)[0].payload).toBe('over websocket');
    client.end(true);
  });

  it('closes a WebSocket connection that sends MQTT in a text frame, taking nothing of it (MQTT-6.0.0-1)', async () => {
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'ws-text-watcher' });
    const seen = messagesWithin(subscriber, 1500);
    await subscriber.subscribeAsync('ws/text', { qos: 1 });
    const socket = new WebSocket(`ws://127.0.0.1:${daemon.port('mqtt-ws')}`, 'mqtt');
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    const frames: Buffer[] = [];
    socket.on('message', (data) => frames.push(data as Buffer));
    socket.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'ws-text', keepalive: 30 }));
    await eventually(() => frames.length > 0);
    socket.send(mqttPacket.generate({ cmd: 'publish', topic: 'ws/text', payload: Buffer.from('four'), qos: 1, messageId: 4, retain: false, dup: false }).toString('latin1'));
    expect(await closed).toBe(1003);
    // the CONNACK, and no PUBACK
    expect(frames.length).toBe(1);
    expect(await seen).toEqual([]);
    subscriber.end(true);
  });

  it('refuses a WebSocket upgrade from a web page whose origin is not allowed, with 403 before the upgrade', async () => {
    const url = `ws://127.0.0.1:${daemon.port('mqtt-ws')}`;
    const upgrade = (origin: string) => new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(url, 'mqtt', { origin });
      socket.once('open', () => { socket.terminate(); resolve(101); });
      socket.once('unexpected-response', (_request, response) => { response.resume(); resolve(response.statusCode!); });
      socket.once('error', reject);
    });
    // a page elsewhere, one of the gateway's own address, and a sandboxed one ("null") are all refused
    for (const origin of ['http://attacker.example', `http://127.0.0.1:${daemon.port('mqtt-ws')}`, 'null', 'https://dashboard.example:8444']) {
      expect(await upgrade(origin)).toBe(403);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="origin_not_allowed"\} 4/);
    // the page allowed (a browser writes its origin in lower case) talks MQTT; programs sending no Origin always do
    const dashboard = await connectClient(url, { clientId: 'dashboard', wsOptions: { origin: 'https://dashboard.example:8443' } });
    dashboard.end(true);
  });

  it('refuses connections beyond maxConnections and counts them', async () => {
    const held = await Promise.all([1, 2, 3].map((n) => connectClient(daemon.mqttUrl, { clientId: `held-${n}` })));
    await expect(connectClient(daemon.mqttUrl, { clientId: 'one-too-many', connectTimeout: 2000 })).rejects.toThrow();
    for (const client of held) client.end(true);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="max_connections"\} [1-9]/);
    // Slots free up again once clients leave.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const again = await connectClient(daemon.mqttUrl, { clientId: 'after-limit' });
    again.end(true);
  });

  it('bounds the WebSocket port\'s sockets before their upgrade too, and answers a plain HTTP request at once', async () => {
    const port = daemon.port('mqtt-ws');
    const halfUpgrade = () => new Promise<Socket & { ended: Promise<boolean> }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const ended = new Promise<boolean>((done) => socket.once('close', () => done(true)));
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        socket.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nx-padding: ${'x'.repeat(8000)}`);
        resolve(Object.assign(socket, { ended }));
      });
      socket.once('error', reject);
    });
    const closedWithin = (socket: { ended: Promise<boolean> }, ms: number) => Promise.race([socket.ended, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
    const held = await Promise.all([1, 2, 3].map(() => halfUpgrade()));
    const beyond = await halfUpgrade();
    expect(await closedWithin(beyond, 2000)).toBe(true);
    for (const socket of held) expect(await closedWithin(socket, 50)).toBe(false);
    for (const socket of held) socket.destroy();
    await Promise.all(held.map((socket) => socket.ended));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const plain = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
    expect(plain.status).toBe(426);
  });

  it('refuses a client id longer than mqtt.maxClientIdBytes with CONNACK 2 (MQTT-3.1.3-9)', async () => {
    const connack = async (clientId: string) => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 });
      const returnCode = (await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode;
      raw.end();
      await raw.waitClosed();
      return returnCode;
    };
    expect(await connack('c'.repeat(128))).toBe(0);
    expect(await connack('c'.repeat(129))).toBe(2);
    expect(await connack('é'.repeat(65))).toBe(2);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="identifier_rejected"\} 2/);
  });

  it('enforces keep-alive: a silent client is disconnected after 1.5 × its keep-alive', async () => {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'silent', keepalive: 1 });
    expect((await raw.waitFor((p) => p.cmd === 'connack'))?.returnCode).toBe(0);
    const started = Date.now();
    expect(await raw.waitClosed(5000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('serves the admin API over TCP only with the bearer token', async () => {
    const url = `http://127.0.0.1:${daemon.port('admin-tcp')}`;
    expect((await fetch(`${url}/v1/status`)).status).toBe(401);
    expect((await fetch(`${url}/v1/status`, { headers: { Authorization: 'Bearer wrong-token-of-length' } })).status).toBe(401);
    const ok = await fetch(`${url}/v1/status`, { headers: { Authorization: 'Bearer a-token-of-some-length' } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).state).toBe('running');
  });
});

describe('CONNECT packets being received', () => {
  it('hold at most a shared budget: a client that never finishes its CONNECTs cannot fill memory, and others still log in', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    const raws: RawMqtt[] = [];
    try {
      // each announces a CONNECT near maxPacketSize (256 KiB) and sends part of it, as a slow sender would
      const announced = 262_000;
      const header = Buffer.from([0x10, (announced & 0x7f) | 0x80, ((announced >> 7) & 0x7f) | 0x80, announced >> 14]);
      for (let i = 0; i < 40; i++) {
        const raw = await RawMqtt.open(daemon.port('mqtt'));
        raw.send(Buffer.concat([header, Buffer.alloc(100_000, 0x41)]));
        raws.push(raw);
      }
      const closed = await Promise.all(raws.map((raw) => raw.waitClosed(2000)));
      // 40 of them would hold 10 MB of a small board's memory until connectTimeout
      expect(closed.filter(Boolean).length).toBeGreaterThan(0);
      expect(closed.filter((isClosed) => !isClosed).length).toBeGreaterThan(0);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="connect_budget"\} [1-9]/);
      // a CONNECT of the usual size never waits on the budget; a large one (a 60 KB will) does
      (await connectClient(daemon.mqttUrl, { clientId: 'usual' })).end(true);
      const connectLarge = () => connectClient(daemon.mqttUrl, { clientId: 'large-will', will: { topic: 'wills/large', payload: Buffer.alloc(60_000, 1), qos: 0, retain: false } });
      await expect(connectLarge()).rejects.toThrow();
      // and is taken once the budget is given back, as those connections close
      for (const raw of raws) raw.end();
      (await eventually(() => connectLarge().catch(() => undefined))).end(true);
    } finally {
      for (const raw of raws) raw.end();
      await daemon.cleanup();
    }
  }, 30_000);
});

describe('packets of admitted clients being received', () => {
  it('hold at most mqtt.maxReceivingBytes together: one beyond closes its connection (counted), CONNECTs keep their own budget, and the room comes back', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxReceivingBytes: 1024 * 1024 } } });
    const raws: RawMqtt[] = [];
    try {
      // each announces a PUBLISH of 200,000 bytes and sends half of it, as a slow sender would
      const announced = 200_000;
      const header = Buffer.from([0x30, (announced & 0x7f) | 0x80, ((announced >> 7) & 0x7f) | 0x80, announced >> 14, 0, 1, 0x74]);
      for (let i = 0; i < 8; i++) {
        const raw = await RawMqtt.open(daemon.port('mqtt'));
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `slow-${i}`, keepalive: 0 });
        expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
        raw.send(Buffer.concat([header, Buffer.alloc(100_000, 0x41)]));
        raws.push(raw);
      }
      const closed = await Promise.all(raws.map((raw) => raw.waitClosed(2000)));
      // five of them fit in 1 MiB
      expect(closed.filter((isClosed) => !isClosed).length).toBe(5);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="receive_budget"\} 3/);
      // a small packet never waits on it, nor does a large CONNECT
      const client = await connectClient(daemon.mqttUrl, { clientId: 'large-will', will: { topic: 'wills/large', payload: Buffer.alloc(60_000, 1), qos: 0, retain: false } });
      await client.publishAsync('small', 'fits', { qos: 1 });
      client.end(true);
      const publishLarge = async () => {
        const publisher = await connectClient(daemon.mqttUrl, { clientId: 'large' });
        try {
          await Promise.race([publisher.publishAsync('large', Buffer.alloc(200_000, 1), { qos: 1 }),
            new Promise((_resolve, reject) => publisher.once('close', () => reject(new Error('closed'))))]);
        } finally {
          publisher.end(true);
        }
      };
      await expect(publishLarge()).rejects.toThrow('closed');
      for (const raw of raws) raw.end();
      await eventually(() => publishLarge().then(() => true, () => false));
    } finally {
      for (const raw of raws) raw.end();
      await daemon.cleanup();
    }
  }, 30_000);
});

/** A masked binary WebSocket frame (the mask key zeros) announcing `announced` bytes of payload, followed by `payload`. */
function frame(announced: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82; // FIN, binary
  header[1] = 0x80 | 127; // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(announced), 2);
  return Buffer.concat([header, payload]);
}

/** A raw socket asking the MQTT WebSocket listener on `port` for an upgrade; `ended` once it closes; rejects `failed` on a socket error. */
function upgrading(port: number, failed: (error: Error) => void): Socket & { ended: Promise<boolean> } {
  const socket = connect(port, '127.0.0.1');
  const ended = new Promise<boolean>((done) => socket.once('close', () => done(true)));
  socket.on('error', () => undefined);
  socket.once('error', failed);
  socket.once('connect', () => socket.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n`
    + `sec-websocket-key: ${Buffer.alloc(16, 7).toString('base64')}\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: mqtt\r\n\r\n`));
  return Object.assign(socket, { ended });
}

describe('WebSocket messages being received before the client is admitted', () => {
  /** Upgrades a raw socket, sends `first` (whole messages) and then `sent` bytes of a message announced as `announced` bytes, as a slow sender would. */
  const halfSentMessage = (port: number, announced: number, sent: number, first = Buffer.alloc(0)) => new Promise<Socket & { ended: Promise<boolean> }>((resolve, reject) => {
    const socket = upgrading(port, reject);
    socket.once('data', (answer) => {
      if (!answer.toString().startsWith('HTTP/1.1 101')) return reject(new Error(answer.toString()));
      socket.write(Buffer.concat([first, frame(announced, Buffer.alloc(sent, 0x41))]));
      resolve(socket);
    });
  });
  const closedWithin = (socket: { ended: Promise<boolean> }) => Promise.race([socket.ended, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))]);

  it('hold at most the CONNECT budget together: ws keeps a message until its end, unseen by the CONNECT\'s own bound', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, ws: { enabled: true } } } });
    const sockets: Array<Socket & { ended: Promise<boolean> }> = [];
    try {
      const port = daemon.port('mqtt-ws');
      // 40 messages of nearly maxPacketSize, each 250 KB in: 10 MB of a small board's memory until connectTimeout
      for (let i = 0; i < 40; i++) sockets.push(await halfSentMessage(port, 262_000, 250_000));
      const closed = await Promise.all(sockets.map(closedWithin));
      expect(closed.filter(Boolean).length).toBeGreaterThan(0);
      expect(closed.filter((isClosed) => !isClosed).length).toBeGreaterThan(0);
      const refusedFor = async (reason: string) => {
        const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
        return Number(new RegExp(`outpost_mqtt_connections_refused_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics)![1]);
      };
      const refusedEarlier = await refusedFor('connect_budget');
      expect(refusedEarlier).toBeGreaterThan(0);
      // a usual CONNECT never waits on the budget
      (await connectClient(`ws://127.0.0.1:${port}`, { clientId: 'usual-ws' })).end(true);
      for (const socket of sockets) socket.destroy();
      await Promise.all(sockets.map((socket) => socket.ended));
      sockets.length = 0;
      // and neither while the CONNECT's login waits its turn behind others: ws reads on meanwhile
      await addThing(daemon.socket, 'slow-login', 'pw');
      const waiting = Array.from({ length: 60 }, (_, i) => connectClient(daemon.mqttUrl, { clientId: `queued-${i}`, username: 'slow-login', password: `wrong-${i}`, connectTimeout: 60_000 }).catch(() => undefined));
      const connectPacket = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'slow-login', keepalive: 30, username: 'slow-login', password: Buffer.from('pw') });
      for (let i = 0; i < 40; i++) sockets.push(await halfSentMessage(port, 262_000, 250_000, frame(connectPacket.length, connectPacket)));
      const closedWaiting = await Promise.all(sockets.map(closedWithin));
      expect(closedWaiting.filter(Boolean).length).toBeGreaterThan(0);
      // closed for the budget, not refused for the queue of logins (128 may wait)
      expect(await refusedFor('connect_budget')).toBeGreaterThan(refusedEarlier);
      expect(await refusedFor('server_unavailable')).toBe(0);
      await Promise.all(waiting);
      // a message over maxPacketSize is refused by its announced length (close 1009), before any of it is buffered
      const huge = new WebSocket(`ws://127.0.0.1:${port}`, 'mqtt');
      await new Promise((resolve, reject) => { huge.once('open', resolve); huge.once('error', reject); });
      const closeCode = new Promise<number>((resolve) => huge.once('close', resolve));
      huge.send(Buffer.alloc(1024 * 1024, 0x41));
      expect(await closeCode).toBe(1009);
    } finally {
      for (const socket of sockets) socket.destroy();
      await daemon.cleanup();
    }
  }, 30_000);
});

describe('WebSocket messages of admitted clients being received', () => {
  it('hold at most mqtt.maxReceivingBytes together: ws keeps a message until its end, before the parser sees its length', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxReceivingBytes: 1024 * 1024, ws: { enabled: true } } } });
    const port = daemon.port('mqtt-ws');
    const sockets: Array<Socket & { ended: Promise<boolean> }> = [];
    /** Upgrades, logs in, and once admitted sends `sent` bytes of a message announced as `announced`. */
    const admittedThenSlow = (clientId: string, announced: number, sent: number) => new Promise<Socket & { ended: Promise<boolean> }>((resolve, reject) => {
      const socket = upgrading(port, reject);
      let answer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        answer = Buffer.concat([answer, chunk]);
        const text = answer.toString('latin1');
        if (!text.startsWith('HTTP/1.1 101')) return reject(new Error(text));
        const connack = answer.indexOf(Buffer.from([0x82, 0x04, 0x20, 0x02, 0x00, 0x00]));
        if (connack === -1) return;
        socket.off('data', onData);
        socket.write(frame(announced, Buffer.alloc(sent, 0x41)));
        resolve(socket);
      };
      socket.on('data', onData);
      socket.once('data', () => {
        const connectPacket = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 });
        socket.write(frame(connectPacket.length, connectPacket));
      });
    });
    try {
      // 150 KB of a 200 KB PUBLISH each: about seven fit in 1 MiB
      for (let i = 0; i < 10; i++) sockets.push(await admittedThenSlow(`slow-ws-${i}`, 200_000, 150_000));
      const closed = await Promise.all(sockets.map((socket) => Promise.race([socket.ended, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))])));
      expect(closed.filter(Boolean).length).toBeGreaterThan(0);
      expect(closed.filter((isClosed) => !isClosed).length).toBeGreaterThan(4);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="receive_budget"\} [1-9]/);
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="connect_budget"\} 0/);
      // whole messages take none of it for long: once those are gone, a large one goes through
      for (const socket of sockets) socket.destroy();
      const client = await connectClient(`ws://127.0.0.1:${port}`, { clientId: 'large-ws' });
      await client.subscribeAsync('large/#', { qos: 1 });
      const received = collectMessages(client, 1);
      await client.publishAsync('large/photo', Buffer.alloc(200_000, 1), { qos: 1 });
      expect((await received)[0].payload.length).toBe(200_000);
      client.end(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await daemon.cleanup();
    }
  }, 30_000);
});

describe('wills', () => {
  it('publishes the will of a client cut off by kill -9 once the daemon is back', async () => {
    let daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'willer', 'pw', { publish: ['w/#'], subscribe: ['w/#'], clientIds: ['willer*'] });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'willer-watch', username: 'willer', password: 'pw', clean: false });
    await watcher.subscribeAsync('w/status/#', { qos: 1 });
    watcher.end(true);
    const device = await connectClient(daemon.mqttUrl, {
      clientId: 'willer-device', username: 'willer', password: 'pw',
      will: { topic: 'w/status/device', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    await daemon.kill();
    device.end(true);
    daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
    try {
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'willer-watch', username: 'willer', password: 'pw', clean: false }, 1);
      expect((await messages)[0]).toMatchObject({ topic: 'w/status/device', payload: 'gone' });
      client.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('wills left by a kill -9', () => {
  it('are dropped (counted) at the next start when the configuration no longer lets their client publish them', async () => {
    let daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    await addThing(daemon.socket, 'plain', 'pw');
    await addThing(daemon.socket, 'kept', 'pw', { publish: ['things/kept/#'], subscribe: ['#'], clientIds: ['kept*'] });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'kept-watch', username: 'kept', password: 'pw', clean: false });
    await watcher.subscribeAsync('#', { qos: 1 });
    watcher.end(true);
    const will = (topic: string) => ({ topic, payload: Buffer.from(`gone from ${topic}`), qos: 1 as const, retain: false });
    const devices = await Promise.all([
      connectClient(daemon.mqttUrl, { clientId: 'anon-device', will: will('status/anon') }),
      connectClient(daemon.mqttUrl, { clientId: 'plain-1', username: 'plain', password: 'pw', will: will('things/plain/status') }),
      connectClient(daemon.mqttUrl, { clientId: 'keptsensor', username: 'kept', password: 'pw', will: will('things/kept/status') }),
    ]);
    await daemon.kill();
    for (const device of devices) device.end(true);
    // anonymous access off, and things without a policy of their own may publish telemetry only
    daemon = await TestDaemon.start({ config: { mqtt: { defaultPolicy: { publish: ['things/${thing}/telemetry'] } } }, dataDir: daemon.dataDir });
    try {
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'kept-watch', username: 'kept', password: 'pw', clean: false }, 1);
      const topics = messagesWithin(client, 1500);
      expect((await messages)[0]).toMatchObject({ topic: 'things/kept/status', payload: 'gone from things/kept/status' });
      expect(await topics).toEqual(['things/kept/status']);
      client.end(true);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_dropped_total\{reason="not_authorized"\} 2\n/);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('wills refused at CONNECT', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'lamp', 'pw', { publish: ['lamp/#'], subscribe: ['lamp/#', '$aws/things/lamp/shadow/#'], clientIds: ['lamp*'] });
  });
  afterAll(async () => { await daemon.cleanup(); });

  async function connackOf(clientId: string, will: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean }): Promise<number | undefined> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 30, username: 'lamp', password: Buffer.from('pw'), will });
    const connack = await raw.waitFor((packet) => packet.cmd === 'connack');
    expect(await raw.waitClosed(connack?.returnCode === 0 ? 300 : 5000)).toBe(connack?.returnCode !== 0);
    raw.end();
    return connack?.returnCode;
  }

  it('refuses a will its policy does not let the client publish, or on a daemon-only topic, with CONNACK 5; closes on a will topic with wildcards', async () => {
    const payload = Buffer.from('{"state":{"power":"on"}}');
    // AWS IoT and Mosquitto refuse the connection: a will kept until a kill -9 would be published unchecked at the next start
    expect(await connackOf('lamp-1', { topic: 'other/thing', payload, qos: 1, retain: true })).toBe(5);
    expect(await connackOf('lamp-2', { topic: '$aws/things/lamp/shadow/update/delta', payload, qos: 1, retain: true })).toBe(5);
    // MQTT-3.3.2-2: a will topic is a topic name, published as one
    expect(await connackOf('lamp-3', { topic: 'lamp/#', payload, qos: 1, retain: true })).toBeUndefined();
    expect(await connackOf('lamp-4', { topic: 'lamp/status', payload, qos: 1, retain: true })).toBe(0);
    const listed = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(listed).toMatch(/outpost_mqtt_connections_refused_total\{reason="not_authorized"\} 2/);
  });
});

describe('systemd notification', () => {
  it('sends READY=1 once listening, WATCHDOG=1 at half the interval, and STOPPING=1', async () => {
    const unixDgram = createRequire(import.meta.url)('unix-dgram');
    const dir = mkdtempSync(join(tmpdir(), 'outpost-notify-'));
    const socketPath = join(dir, 'notify.sock');
    const received: string[] = [];
    const socket = unixDgram.createSocket('unix_dgram', (message: Buffer) => received.push(message.toString()));
    socket.bind(socketPath);
    try {
      const daemon = await TestDaemon.start({ config: {}, env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '1000000' } });
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !received.some((m) => m.startsWith('WATCHDOG=1'))) await new Promise((r) => setTimeout(r, 50));
      expect(received[0]).toMatch(/^READY=1\nSTATUS=mqtt 127\.0\.0\.1:\d+/);
      // the admin socket is a path, not an address with a port
      expect(received[0]).toContain(`admin ${daemon.socket}\n`);
      expect(received).toContain('WATCHDOG=1');
      await daemon.cleanup();
      expect(received).toContain('STOPPING=1');
    } finally {
      socket.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('subscription limits', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxSubscriptionsPerClient: 3, maxSubscriptions: 8 } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  let messageId = 0;
  async function connectRaw(clientId: string, clean: boolean): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 30 });
    expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
    return raw;
  }
  async function granted(raw: RawMqtt, filters: string[]): Promise<number[]> {
    const id = ++messageId;
    raw.send({ cmd: 'subscribe', messageId: id, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) });
    return (await raw.waitFor((packet) => packet.cmd === 'suback' && packet.messageId === id))?.granted;
  }

  it('answers SUBACK 0x80 for filters beyond a client\'s and the broker\'s limits, counting persistent sessions\' stored filters, and frees them on unsubscribe and disconnect', async () => {
    const persistent = await connectRaw('limits-persistent', false);
    expect(await granted(persistent, ['a/1', 'a/2', 'a/3', 'a/4'])).toEqual([1, 1, 1, 128]);
    // a filter the client holds already is not a new one
    expect(await granted(persistent, ['a/1'])).toEqual([1]);
    // the persistent session's three count twice (aedes' router and the store), so 6 of 8 are taken
    const clean = await connectRaw('limits-clean', true);
    expect(await granted(clean, ['b/1', 'b/2', 'b/3'])).toEqual([1, 1, 128]);
    persistent.end();
    await persistent.waitClosed();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await granted(clean, ['b/3'])).toEqual([1]);
    clean.send({ cmd: 'unsubscribe', messageId: ++messageId, unsubscriptions: ['b/1'] });
    await clean.waitFor((packet) => packet.cmd === 'unsuback');
    expect(await granted(clean, ['b/4'])).toEqual([1]);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_subscriptions_refused_total\{reason="per_client_limit"\} 1/);
    expect(metrics).toMatch(/outpost_mqtt_subscriptions_refused_total\{reason="broker_limit"\} 1/);
    clean.end();
  });

  it('keeps no filter a persistent session was refused: nothing queued on it while offline reaches the client after it reconnects', async () => {
    await addThing(daemon.socket, 'holder', 'pw', { publish: ['things/holder/#'], subscribe: ['things/holder/#'], clientIds: ['holder*'] });
    const connect = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'holder-1', keepalive: 30, username: 'holder', password: Buffer.from('pw') });
      expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
      return raw;
    };
    const holder = await connect();
    // refused by the policy, in the same SUBSCRIBE as a granted filter (aedes stored both)
    expect(await granted(holder, ['things/holder/inbox', 'secret/#'])).toEqual([1, 128]);
    holder.end();
    await holder.waitClosed();
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'limits-publisher' });
    await publisher.publishAsync('secret/plans', 'not for holder', { qos: 1 });
    await publisher.publishAsync('things/holder/inbox', 'for holder', { qos: 1 });
    publisher.end(true);
    const again = await connect();
    await again.waitFor((packet) => packet.cmd === 'publish' && packet.topic === 'things/holder/inbox');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(again.packets.filter((packet) => packet.cmd === 'publish').map((packet) => packet.topic)).toEqual(['things/holder/inbox']);
    again.end();
  });
});

describe('the QoS a subscriber gets', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  async function subscriber(clientId: string, clean: boolean, filters: Record<string, 0 | 1 | 2>): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 30 });
    expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
    if (Object.keys(filters).length > 0) {
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: Object.entries(filters).map(([topic, qos]) => ({ topic, qos })) });
      expect((await raw.waitFor((packet) => packet.cmd === 'suback'))?.granted).toEqual(Object.values(filters));
    }
    return raw;
  }
  async function publishQos2(topic: string): Promise<void> {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: `qos-publisher-${topic.replace(/\//g, '-')}` });
    await publisher.publishAsync(topic, 'exactly once', { qos: 2 });
    publisher.end(true);
  }
  const deliveredQos = async (raw: RawMqtt, topic: string) => (await raw.waitFor((packet) => packet.cmd === 'publish' && packet.topic === topic))?.qos;

  it('is the publication\'s, at most the highest granted among the matching filters (MQTT-3.3.5-1, MQTT-3.8.4-6), online and queued while offline', async () => {
    // a wildcard filter granted QoS 1 does not get a QoS 2 publication at QoS 2
    const wildcard = await subscriber('qos-wildcard', true, { 'qa/+': 1 });
    // overlapping filters: the highest grant wins, whichever the router calls first
    const overlapping = await subscriber('qos-overlapping', true, { 'qb/#': 0, 'qb/+': 2 });
    const persistent = await subscriber('qos-persistent', false, { 'qc/#': 1 });
    persistent.end();
    await persistent.waitClosed();
    await publishQos2('qa/x');
    await publishQos2('qb/x');
    await publishQos2('qc/x');
    expect(await deliveredQos(wildcard, 'qa/x')).toBe(1);
    expect(await deliveredQos(overlapping, 'qb/x')).toBe(2);
    const back = await subscriber('qos-persistent', false, {});
    const queued = await back.waitFor((packet) => packet.cmd === 'publish' && packet.topic === 'qc/x');
    // queued while the client was away, sent for the first time: no duplicate (MQTT-3.3.1-1)
    expect([queued?.qos, queued?.dup]).toEqual([1, false]);
    for (const raw of [wildcard, overlapping, back]) raw.end();
  });

  it('is sent again with DUP set, after a reconnect, when the client had not acknowledged it (MQTT-3.3.1-1, MQTT-4.4.0-1)', async () => {
    const unacknowledging = await subscriber('qos-redelivered', false, { 'qd/#': 1 });
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'qos-publisher-qd' });
    await publisher.publishAsync('qd/x', 'again', { qos: 1 });
    publisher.end(true);
    const first = await unacknowledging.waitFor((packet) => packet.cmd === 'publish');
    expect([first?.qos, first?.dup]).toEqual([1, false]);
    // no PUBACK: the session keeps the message
    unacknowledging.end();
    await unacknowledging.waitClosed();
    const back = await subscriber('qos-redelivered', false, {});
    const again = await back.waitFor((packet) => packet.cmd === 'publish');
    expect([again?.topic, again?.messageId, again?.dup]).toEqual(['qd/x', first?.messageId, true]);
    back.end();
  });

  it('is sent with RETAIN 0 when a retained publication was queued for the session while the client was away (MQTT-3.3.1-9)', async () => {
    const away = await subscriber('qos-retained-queued', false, { 'qe/#': 1 });
    away.end();
    await away.waitClosed();
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'qos-publisher-qe' });
    await publisher.publishAsync('qe/x', 'kept and queued', { qos: 1, retain: true });
    publisher.end(true);
    const back = await subscriber('qos-retained-queued', false, {});
    const queued = await back.waitFor((packet) => packet.cmd === 'publish');
    // it matched a subscription the client held: only one a new SUBSCRIBE brings is sent as retained
    expect([queued?.topic, queued?.qos, queued?.retain]).toEqual(['qe/x', 1, false]);
    back.end();
    const fresh = await subscriber('qos-retained-fresh', true, {});
    fresh.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'qe/#', qos: 1 }] });
    const retained = await fresh.waitFor((packet) => packet.cmd === 'publish');
    expect([retained?.topic, retained?.retain]).toEqual(['qe/x', true]);
    fresh.end();
  });
});

describe('a subscriber that stops reading', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxClientBacklogBytes: 262144 } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  /** A client subscribed to `filter` that then reads nothing. */
  async function stalledSubscriber(clientId: string, filter: string, qos: 0 | 1): Promise<RawMqtt> {
    const stalled = await RawMqtt.open(daemon.port('mqtt'));
    stalled.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 });
    expect((await stalled.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
    stalled.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] });
    await stalled.waitFor((packet) => packet.cmd === 'suback');
    stalled.socket.pause();
    return stalled;
  }

  it('loses live QoS 0 messages beyond mqtt.maxClientBacklogBytes (counted) and holds up no one else', async () => {
    const stalled = await stalledSubscriber('stalled', 'firehose/#', 0);
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'watcher' });
    await watcher.subscribeAsync('alarm/#', { qos: 1 });
    const alarm = collectMessages(watcher, 1, 15_000);
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'firehose' });
    // far more than the loopback socket's buffers take: the rest waits in the daemon, or is dropped
    const chunk = Buffer.alloc(60 * 1024, 7);
    for (let i = 0; i < 400; i++) publisher.publish('firehose/data', chunk, { qos: 0 });
    await publisher.publishAsync('alarm/door', 'open', { qos: 1 });
    // before: delivery to everyone waited for the stalled socket to drain (30 s), PUBACK included
    const delivered = await Promise.race([alarm.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))]);
    expect(delivered).toBe(true);
    const figures = async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      const figure = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1]);
      return { dropped: figure(/outpost_mqtt_dropped_total\{reason="slow_consumer"\} (\d+)/), sent: figure(/outpost_mqtt_messages_sent_total (\d+)/) };
    };
    expect((await figures()).dropped).toBeGreaterThan(0);
    // each of the 400 and the alarm either sent or dropped, not both
    await eventually(async () => { const { sent, dropped } = await figures(); return sent + dropped === 401; });
    publisher.end(true);
    watcher.end(true);
    stalled.end();
  }, 30_000);

  it('of QoS 1 messages is disconnected after 10 s of taking none, logged and counted', async () => {
    const stalled = await stalledSubscriber('stalled-qos1', 'photos/#', 1);
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'camera' });
    const photo = Buffer.alloc(60 * 1024, 7);
    for (let i = 0; i < 200; i++) publisher.publish('photos/new', photo, { qos: 1 });
    expect(await eventually(() => daemon.logs.find((line) => line.msg === 'disconnected a client that took nothing sent to it for 10 s'), 25_000))
      .toMatchObject({ level: 40, clientId: 'stalled-qos1' });
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics.split("\n").filter((line) => line.includes("slow_consumer"))).toContain('outpost_mqtt_connections_refused_total{reason="slow_consumer"} 1');
    publisher.end(true);
    stalled.end();
  }, 40_000);
});

describe('subscribers that stop reading, together', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxClientBacklogBytes: 1024 * 1024, maxBacklogBytes: 512 * 1024 } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('hold at most mqtt.maxBacklogBytes between them, not mqtt.maxClientBacklogBytes each; a subscriber that keeps up gets every message', async () => {
    const stalled: RawMqtt[] = [];
    for (let i = 0; i < 4; i++) {
      const client = await RawMqtt.open(daemon.port('mqtt'));
      client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `stalled-${i}`, keepalive: 0 });
      expect((await client.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
      client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'firehose/#', qos: 0 }] });
      await client.waitFor((packet) => packet.cmd === 'suback');
      client.socket.pause();
      stalled.push(client);
    }
    const reader = await connectClient(daemon.mqttUrl, { clientId: 'reader' });
    await reader.subscribeAsync('firehose/#', { qos: 0 });
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'firehose' });
    const chunk = Buffer.alloc(60 * 1024, 7);
    // 24 MB to each: far more than the loopback sockets' buffers take; in rounds the reader takes
    for (let round = 0; round < 20; round++) {
      const got = collectMessages(reader, 20, 15_000);
      for (let i = 0; i < 20; i++) publisher.publish('firehose/data', chunk, { qos: 0 });
      expect(await got).toHaveLength(20);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    const figure = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1]);
    expect(figure(/outpost_mqtt_dropped_total\{reason="slow_consumer"\} (\d+)/)).toBeGreaterThan(0);
    // each stalled client alone stays under its own 1 MiB; together they would hold 4 MiB. Over
    // the bound: the message that crossed it, and what each held when it was found behind (the
    // rest of one write of at most 64 KiB and a message)
    const backlog = figure(/outpost_mqtt_backlog_bytes (\d+)/);
    expect(backlog).toBeGreaterThan(0);
    expect(backlog).toBeLessThan(512 * 1024 + chunk.length + 4 * (64 * 1024 + chunk.length));
    publisher.end(true);
    reader.end(true);
    for (const client of stalled) client.end();
    await eventually(async () => /outpost_mqtt_backlog_bytes 0$/m.test(await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text()));
  }, 60_000);

  it('deliver again to clients that caught up, though nothing was written to anyone since (no /metrics scrape either)', async () => {
    const subscribers: RawMqtt[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await RawMqtt.open(daemon.port('mqtt'));
      // a long keep-alive: no PINGRESP is written meanwhile, which would have the broker look again
      client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `catching-up-${i}`, keepalive: 600 });
      expect((await client.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
      client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'burst/#', qos: 0 }] });
      await client.waitFor((packet) => packet.cmd === 'suback');
      client.socket.pause();
      subscribers.push(client);
    }
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'burst', keepalive: 600 });
    const chunk = Buffer.alloc(60 * 1024, 7);
    for (let i = 0; i < 300; i++) await publisher.publishAsync('burst/large', chunk, { qos: 0 });
    // both hold the 512 KiB between them; then they read everything
    for (const client of subscribers) client.socket.resume();
    const received = () => subscribers.reduce((sum, client) => sum + client.packets.length, 0);
    await eventually(async () => {
      const before = received();
      await new Promise((resolve) => setTimeout(resolve, 500));
      return received() === before;
    }, 20_000);
    for (let i = 0; i < 10; i++) {
      await publisher.publishAsync('burst/small', `small ${i}`, { qos: 0 });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const client of subscribers) {
      expect(await eventually(() => client.packets.filter((packet) => packet.topic === 'burst/small').length === 10 || undefined, 5_000)).toBe(true);
    }
    publisher.end(true);
    for (const client of subscribers) client.end();
  }, 60_000);
});

describe('a long topic filter', () => {
  it('gets SUBACK 0x80 beyond mqtt.maxFilterBytes (counted), before it takes any room or memory', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxFilterBytes: 64, maxSubscriptionsPerClient: 2 } } });
    try {
      const client = await connectClient(daemon.mqttUrl, { clientId: 'long-filters' });
      const long = `long/${'x'.repeat(59)}`;
      const longer = `long/${'é'.repeat(30)}`;
      expect(await subscribeGranted(client, [long, longer])).toEqual([1, 128]);
      // the refused one took no room among the client's two filters
      expect(await subscribeGranted(client, ['short/1'])).toEqual([1]);
      client.end(true);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_subscriptions_refused_total\{reason="filter_too_long"\} 1/);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('subscription limits and persistent sessions coming back', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxSubscriptions: 6 } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  async function persistentClient(clientId: string, filters: string[]): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 30 });
    expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
    if (filters.length > 0) {
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) });
      expect((await raw.waitFor((packet) => packet.cmd === 'suback'))?.granted).toEqual(filters.map(() => 1));
    }
    return raw;
  }

  it('restores the filters a session holds whatever the limits are at its return, and delivers on them', async () => {
    for (const [clientId, filters] of [['back-a', ['a/1', 'a/2']], ['back-b', ['b/1', 'b/2']]] as const) {
      const raw = await persistentClient(clientId, [...filters]);
      raw.end();
      await raw.waitClosed();
    }
    // four stored; back, both count twice (router and store): eight, over the limit of six
    const a = await persistentClient('back-a', []);
    const b = await persistentClient('back-b', []);
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'back-publisher' });
    await publisher.publishAsync('b/2', 'still there', { qos: 1 });
    publisher.end(true);
    expect((await b.waitFor((packet) => packet.cmd === 'publish'))?.topic).toBe('b/2');
    a.end();
    b.end();
  });
});

describe('QoS 2 PUBLISHes awaiting their PUBREL', () => {
  /** A raw MQTT 3.1.1 connection to the daemon, accepted. */
  async function openRaw(daemon: TestDaemon, clientId: string, clean: boolean): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 30 });
    expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
    return raw;
  }

  /** Sends QoS 2 PUBLISHes of `payloadBytes` to held/qos2 (never released) and waits for the PUBREC of each, or the close. */
  async function holdUnreleased(raw: RawMqtt, messageIds: number[], payloadBytes: number): Promise<void> {
    for (const messageId of messageIds) {
      raw.send({ cmd: 'publish', topic: 'held/qos2', payload: Buffer.alloc(payloadBytes, 1), qos: 2, messageId, dup: false, retain: false });
      await raw.waitFor((packet) => packet.cmd === 'pubrec' && packet.messageId === messageId);
    }
  }

  it('are at most mqtt.maxAwaitingRel per connection and per persistent session: one more closes the connection (counted)', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxAwaitingRel: 5 } } });
    try {
      const open = (clientId: string, clean: boolean) => openRaw(daemon, clientId, clean);
      const hold = (raw: RawMqtt, messageIds: number[]) => holdUnreleased(raw, messageIds, 1000);
      // each would be held whole until its PUBREL: 1000 of maxPacketSize (aedes' own bound) are 256 MB
      const hoarder = await open('hoarder', true);
      await hold(hoarder, [1, 2, 3, 4, 5]);
      // two beyond it in one write: one connection closed, counted once
      const beyond = (messageId: number) => mqttPacket.generate({ cmd: 'publish', topic: 'held/qos2', payload: Buffer.alloc(1000, 1), qos: 2, messageId, dup: false, retain: false });
      hoarder.send(Buffer.concat([beyond(6), beyond(7)]));
      expect(hoarder.packets.filter((packet) => packet.cmd === 'pubrec').map((packet) => packet.messageId)).toEqual([1, 2, 3, 4, 5]);
      expect(await hoarder.waitClosed()).toBe(true);
      // a persistent session keeps them across its connections: each connection alone would stay within the bound
      const first = await open('hoarder-persistent', false);
      await hold(first, [1, 2, 3]);
      first.end();
      await first.waitClosed();
      const second = await open('hoarder-persistent', false);
      await hold(second, [4, 5, 6]);
      expect(second.packets.filter((packet) => packet.cmd === 'pubrec').map((packet) => packet.messageId)).toEqual([4, 5]);
      expect(await second.waitClosed()).toBe(true);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="awaiting_rel_limit"\} 2/);
      // a client that releases them publishes as many as it likes
      const released = await connectClient(daemon.mqttUrl, { clientId: 'releasing' });
      for (let i = 0; i < 12; i++) await released.publishAsync('held/qos2', `message ${i}`, { qos: 2 });
      released.end(true);
    } finally {
      await daemon.cleanup();
    }
  });

  it('hold at most mqtt.maxAwaitingRelBytes per connection and per persistent session, and mqtt.maxAwaitingRelBytesInMemory of clean sessions together: one beyond closes the connection (counted)', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxAwaitingRelBytes: 10_000, maxAwaitingRelBytesInMemory: 25_000 } } });
    try {
      const open = (clientId: string, clean: boolean) => openRaw(daemon, clientId, clean);
      // 4096 bytes of payload and 9 of topic: two fit in 10 000 bytes, three do not
      const hold = (raw: RawMqtt, messageIds: number[]) => holdUnreleased(raw, messageIds, 4096);
      const pubrecs = (raw: RawMqtt) => raw.packets.filter((packet) => packet.cmd === 'pubrec').map((packet) => packet.messageId);
      const hoarder = await open('bytes-hoarder', true);
      await hold(hoarder, [1, 2, 3]);
      expect(pubrecs(hoarder)).toEqual([1, 2]);
      expect(await hoarder.waitClosed()).toBe(true);
      // a persistent session keeps them across its connections
      const first = await open('bytes-persistent', false);
      await hold(first, [1]);
      first.end();
      await first.waitClosed();
      const second = await open('bytes-persistent', false);
      await hold(second, [2, 3]);
      expect(pubrecs(second)).toEqual([2]);
      expect(await second.waitClosed()).toBe(true);
      // clean sessions' are in memory: three clients within their own bound fill the shared one
      const holders = [await open('memory-a', true), await open('memory-b', true), await open('memory-c', true)];
      for (const holder of holders) await hold(holder, [1, 2]);
      expect(holders.map(pubrecs)).toEqual([[1, 2], [1, 2], [1, 2]]);
      const late = await open('memory-late', true);
      await hold(late, [1]);
      expect(pubrecs(late)).toEqual([]);
      expect(await late.waitClosed()).toBe(true);
      // released, they make room again
      holders[0].send({ cmd: 'pubrel', messageId: 1 });
      holders[0].send({ cmd: 'pubrel', messageId: 2 });
      expect(await holders[0].waitFor((packet) => packet.cmd === 'pubcomp' && packet.messageId === 2)).toBeDefined();
      const after = await open('memory-after', true);
      await hold(after, [1]);
      expect(pubrecs(after)).toEqual([1]);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="awaiting_rel_limit"\} 3/);
      for (const raw of [...holders, after]) raw.end();
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('a persistent session\'s messages in flight', () => {
  it('count against neither queue bound, nor are dropped for the queue\'s room, as Mosquitto\'s max_inflight_messages apart from max_queued_messages', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxQueuedMessages: 3, maxQueuedBytesPerSession: 1000 } } });
    try {
      const subscribe = async (clientId: string, filter: string) => {
        const raw = await RawMqtt.open(daemon.port('mqtt'));
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 30 });
        expect((await raw.waitFor((packet) => packet.cmd === 'connack'))?.returnCode).toBe(0);
        if (filter) {
          raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] });
          expect((await raw.waitFor((packet) => packet.cmd === 'suback'))?.granted).toEqual([1]);
        }
        return raw;
      };
      const received = (raw: RawMqtt) => raw.packets.filter((packet) => packet.cmd === 'publish').map((packet) => packet.payload.toString().slice(0, 2));
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'inflight-publisher' });
      const send = async (topic: string, names: string[], bytes = 2) => {
        for (const name of names) await publisher.publishAsync(topic, name.padEnd(bytes, '.'), { qos: 1 });
      };
      // two sent and never acknowledged (in flight) before each subscriber goes away
      const counted = await subscribe('inflight-count', 'count/t');
      const bytes = await subscribe('inflight-bytes', 'bytes/t');
      await send('count/t', ['m1', 'm2']);
      await send('bytes/t', ['b1', 'b2'], 300);
      await counted.waitFor(() => received(counted).length === 2);
      await bytes.waitFor(() => received(bytes).length === 2);
      counted.end();
      bytes.end();
      await counted.waitClosed();
      await bytes.waitClosed();
      // offline: three more fit beside them, by count (the oldest queued, not one in flight, goes) and by bytes (3 × 307 of 1000)
      await send('count/t', ['m3', 'm4', 'm5', 'm6']);
      await send('bytes/t', ['b3', 'b4', 'b5', 'b6'], 300);
      publisher.end(true);
      const countedBack = await subscribe('inflight-count', '');
      const bytesBack = await subscribe('inflight-bytes', '');
      await countedBack.waitFor(() => received(countedBack).length === 5);
      await bytesBack.waitFor(() => received(bytesBack).length === 5);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received(countedBack)).toEqual(['m1', 'm2', 'm4', 'm5', 'm6']);
      expect(received(bytesBack)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
      // the two sent again are the same messages, marked as such (MQTT-3.3.1-1)
      expect(countedBack.packets.filter((packet) => packet.cmd === 'publish').map((packet) => packet.dup)).toEqual([true, true, false, false, false]);
      countedBack.end();
      bytesBack.end();
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('retained messages', () => {
  /**
   * Publishes two retained messages ([topic, payload bytes]) with mqtt.maxRetainedBytes 1000: a later
   * subscriber gets only the first, and the second is counted as dropped.
   */
  async function expectOnlyFirstRetained(first: [string, number], second: [string, number]): Promise<void> {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxRetainedBytes: 1000 } } });
    try {
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'retainer' });
      await publisher.publishAsync(first[0], Buffer.alloc(first[1], 0x61), { qos: 1, retain: true });
      await publisher.publishAsync(second[0], Buffer.alloc(second[1], 0x62), { qos: 1, retain: true });
      publisher.end(true);
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'late-subscriber' }, 2, 1000);
      await client.subscribeAsync('kept/#', { qos: 1 });
      expect((await messages.catch((error: Error) => error.message))).toMatch(/^got 1 of 2 messages: \[\{"topic":"kept\/a"/);
      client.end(true);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_dropped_total\{reason="retained_limit"\} 1/);
    } finally {
      await daemon.cleanup();
    }
  }

  it('count their topic against mqtt.maxRetainedBytes too: retained messages with long topics cannot fill the disk', async () => {
    // 500 bytes of topic and 100 of payload: 1006 with the 406 of the first
    await expectOnlyFirstRetained(['kept/a', 400], [`kept/${'x'.repeat(495)}`, 100]);
  });

  it('hold at most mqtt.maxRetainedBytes together: one beyond is not retained (counted)', async () => {
    await expectOnlyFirstRetained(['kept/a', 800], ['kept/b', 300]);
  });

  it('sent on SUBSCRIBE to clients that then leave cost nothing once they are gone: 20,000 of them in a 48 MB heap', async () => {
    const count = 20_000;
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } }, env: { NODE_OPTIONS: '--max-old-space-size=48' } });
    try {
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'retainer' });
      for (let first = 0; first < count; first += 1000) {
        await Promise.all(Array.from({ length: 1000 }, (_, i) => publisher.publishAsync(`many/${(first + i) % 100}/${first + i}`, Buffer.alloc(100, 0x61), { qos: 1, retain: true })));
      }
      publisher.end(true);
      // each leaves while its retained messages are still being sent
      const leavers = await Promise.all([1, 2].map(() => RawMqtt.open(daemon.port('mqtt'))));
      leavers.forEach((leaver, n) => {
        leaver.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `leaver-${n}`, keepalive: 60 });
        leaver.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'many/#', qos: 0 }] });
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const leaver of leavers) leaver.end();
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'stayer' }, count, 30_000);
      await client.subscribeAsync('many/#', { qos: 0 });
      expect((await messages).length).toBe(count);
      client.end(true);
      expect(daemon.process.exitCode).toBeNull();
    } finally {
      await daemon.cleanup();
    }
  }, 90_000);
});
