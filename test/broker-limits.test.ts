import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, addThing, collectMessages, connectAndCollect, connectClient } from './helpers/mqtt.js';

describe('broker limits and listeners', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true, maxConnections: 3, ws: { enabled: true } },
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
      expect(received).toContain('WATCHDOG=1');
      await daemon.cleanup();
      expect(received).toContain('STOPPING=1');
    } finally {
      socket.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
