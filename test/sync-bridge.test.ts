import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { collectMessages, connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber } from './helpers/cloud.js';
import { callAdmin } from '../src/cli/admin-client.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

describe('sync bridge to a Mosquitto cloud', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw1', reconnectMinMs: 100, reconnectMaxMs: 400, maxMessageBytes: 2048 } },
        sync: {
          drainRate: 200,
          outbound: [
            { name: 'telemetry', from: 'sensors/#', to: 'gw1/${topic}' },
            { name: 'raw', from: 'raw/#', to: 'gw1/raw/${id}', id: 'none', liveFirst: false },
            // also matches what the inbound rule publishes: those are not sent back
            { name: 'replies', from: 'cloud/#', to: 'gw1/replies/${topic}' },
          ],
          inbound: [{ name: 'commands', from: 'cmd/#', to: 'cloud/${topic}' }],
        },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor-1' });
  });

  afterAll(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('buffers while the cloud is down and delivers everything in order, with stable ids, once it is up', async () => {
    const offline = await status(daemon);
    expect(offline).toMatchObject({ enabled: true, online: false });
    for (let i = 0; i < 300; i++) {
      await device.publishAsync(`sensors/${i % 3}`, JSON.stringify({ i }), { qos: 1 });
    }
    const buffered = await status(daemon);
    expect(buffered.rules.find((r: any) => r.rule === 'telemetry')).toMatchObject({ backlog: 300, dropped: 0 });
    expect(buffered.rules[0].oldestAgeSeconds).toBeGreaterThanOrEqual(0);

    // Sending paused until the cloud side has subscribed.
    await outpost(daemon.socket, ['sync', 'pause']);
    await cloud.start();
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw1/#');
    await outpost(daemon.socket, ['sync', 'resume']);
    try {
      await eventually(() => subscriber.messages.length >= 300, 15_000);
      for (let t = 0; t < 3; t++) {
        const values = subscriber.messages.filter((m) => m.topic === `gw1/sensors/${t}`).map((m) => JSON.parse(m.payload));
        expect(values.map((v) => v.payload.i)).toEqual(Array.from({ length: 100 }, (_, k) => k * 3 + t));
        // The envelope: id "<clientId>:<seq>", the local topic, the enqueue time and the JSON payload.
        expect(values[0]).toMatchObject({ id: expect.stringMatching(/^gw1:\d+$/), topic: `sensors/${t}`, ts: expect.any(Number) });
      }
      expect(new Set(subscriber.messages.map((m) => m.id)).size).toBe(300);
      const drained = await eventually(async () => {
        const s = await status(daemon);
        return s.outbox.items === 0 && s;
      });
      expect(drained).toMatchObject({ online: true, inFlight: 0 });
      expect(drained.rules.find((r: any) => r.rule === 'telemetry')).toMatchObject({ backlog: 0, delivered: 300, lastSuccess: expect.any(String) });
    } finally {
      await subscriber.end();
    }
  });

  it('sends a live message at once while the backlog drains at sync.drainRate', async () => {
    await outpost(daemon.socket, ['sync', 'pause']);
    for (let i = 0; i < 400; i++) await device.publishAsync('sensors/bulk', String(i), { qos: 1 });
    // Paused, the items stay in the outbox; resuming with a reconnect makes them backlog.
    expect((await status(daemon)).paused).toBe(true);
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw1/#', 'cloud-live');
    try {
      await cloud.stop();
      await eventually(async () => !(await status(daemon)).online);
      await cloud.start();
      await eventually(async () => (await status(daemon)).online);
      await outpost(daemon.socket, ['sync', 'resume']);
      await eventually(() => subscriber.messages.length >= 20);
      await device.publishAsync('sensors/live', 'now', { qos: 1 });
      await eventually(() => subscriber.messages.some((m) => m.topic === 'gw1/sensors/live'), 3000);
      // At 200/s the 400 backlog items take ~2 s: the live one overtook most of them.
      const liveAt = subscriber.messages.findIndex((m) => m.topic === 'gw1/sensors/live');
      expect(liveAt).toBeLessThan(300);
      const during = await status(daemon);
      expect(during.lanes.find((l: any) => l.lane === 'backlog').items).toBeGreaterThan(0);
      await eventually(() => subscriber.messages.length >= 401, 10_000);
      const bulk = subscriber.messages.filter((m) => m.topic === 'gw1/sensors/bulk').map((m) => JSON.parse(m.payload).payload);
      expect(bulk).toEqual(Array.from({ length: 400 }, (_, i) => i));
    } finally {
      await subscriber.end();
    }
  });

  it('puts the stable id in the topic with ${id} and sends the raw payload with id: none', async () => {
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw1/raw/+', 'cloud-raw');
    try {
      await device.publishAsync('raw/x', Buffer.from([0, 1, 2]), { qos: 1 });
      await eventually(() => subscriber.messages.length >= 1);
      expect(subscriber.messages[0].topic).toMatch(/^gw1\/raw\/gw1:\d+$/);
      expect(Buffer.from(subscriber.messages[0].payload)).toEqual(Buffer.from([0, 1, 2]));
    } finally {
      await subscriber.end();
    }
  });

  it('delivers cloud messages of inbound rules to local subscribers, and does not send them back', async () => {
    const local = await connectClient(daemon.mqttUrl, { clientId: 'listener' });
    const replies = await CloudSubscriber.connect(cloud.url, 'gw1/replies/#', 'cloud-replies');
    try {
      await local.subscribeAsync('cloud/#', { qos: 1 });
      const received = collectMessages(local, 2);
      const publisher = await connectClient(cloud.url, { clientId: 'cloud-app' });
      await publisher.publishAsync('cmd/valve', '{"open":true}', { qos: 1 });
      publisher.end(true);
      // a local client's message on the same topic is the outbound rule's to send
      await device.publishAsync('cloud/cmd/valve', '{"open":"local"}', { qos: 1 });
      expect(await received).toEqual([
        expect.objectContaining({ topic: 'cloud/cmd/valve', payload: '{"open":true}' }),
        expect.objectContaining({ topic: 'cloud/cmd/valve', payload: '{"open":"local"}' }),
      ]);
      await eventually(() => replies.messages.length > 0, 5000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      // one message, the local client's (in its envelope)
      expect(replies.messages.map((message) => message.payload.includes('local'))).toEqual([true]);
      // counted for the inbound rule, as outbound rules' deliveries are for theirs
      const figures = await status(daemon);
      expect(figures.inbound).toEqual([{ rule: 'commands', delivered: 1, failures: 0, lastSuccess: expect.any(String), lastFailure: null }]);
      expect((await outpost(daemon.socket, ['sync', 'status'])).stdout).toMatch(/^INBOUND +DELIVERED +FAILURES +LAST SUCCESS +LAST FAILURE\ncommands +1 +0 +\d{4}-\S+ +-$/m);
    } finally {
      await replies.end();
      local.end(true);
    }
  });

  it('dead-letters a message the cloud cannot take, with the reason, and retries it on request', async () => {
    await device.publishAsync('sensors/big', 'x'.repeat(3000), { qos: 1 });
    const letters = await eventually(async () => {
      const listed = JSON.parse((await outpost(daemon.socket, ['sync', 'dlq', 'ls', '--json'])).stdout).deadLetters;
      return listed.length > 0 && listed;
    });
    expect(letters[0]).toMatchObject({ rule: 'telemetry', cloudTopic: 'gw1/sensors/big', reason: expect.stringMatching(/^MessageTooLarge/) });
    const table = await outpost(daemon.socket, ['sync', 'dlq', 'ls']);
    expect(table.stdout).toContain('MessageTooLarge');
    const s = await status(daemon);
    expect(s.rules.find((r: any) => r.rule === 'telemetry')).toMatchObject({ deadLettered: 1, lastFailure: { reason: expect.stringMatching(/MessageTooLarge/) } });
    const retried = await outpost(daemon.socket, ['sync', 'dlq', 'retry', String(letters[0].id)]);
    expect(retried.stdout).toContain('retried 1');
    // Still too large: back in the list, counted again.
    await eventually(async () => (await status(daemon)).rules.find((r: any) => r.rule === 'telemetry').deadLettered === 2);
    const text = await outpost(daemon.socket, ['sync', 'status']);
    expect(text.stdout).toMatch(/online since/);
    expect(text.stdout).toMatch(/telemetry/);

    // a rule's ${id} is listed as it was sent, not as the rule writes it
    await device.publishAsync('raw/big', 'x'.repeat(3000), { qos: 1 });
    const raw = await eventually(async () => {
      const listed = JSON.parse((await outpost(daemon.socket, ['sync', 'dlq', 'ls', '--json'])).stdout).deadLetters;
      return listed.find((letter: any) => letter.rule === 'raw');
    });
    expect(raw.cloudTopic).toBe(`gw1/raw/gw1:${raw.itemId}`);
  });

  it('refuses bad admin requests with a clear error and changes nothing', async () => {
    const before = await status(daemon);
    for (const [method, path, body, message] of [
      ['GET', '/v1/sync/dlq?limit=abc', undefined, 'expected "limit" to be 1-10000'],
      ['POST', '/v1/sync/dlq/retry', { id: 'one' }, 'expected {"id": N} or {"all": true}'],
      ['POST', '/v1/sync/dlq/retry', [], 'expected a JSON object body'],
    ] as const) {
      await expect(callAdmin({ socket: daemon.socket }, method, path, body)).rejects.toThrow(message);
    }
    const retried = await outpost(daemon.socket, ['sync', 'dlq', 'retry', '999999']);
    expect(retried.stderr).toBe('outpost: skipped 999999: no such dead letter\n');
    expect(retried.code).toBe(1);
    const cli = await outpost(daemon.socket, ['sync', 'dlq', 'retry']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('expected a dead-letter ID, or --all');
    expect((await status(daemon)).outbox).toEqual(before.outbox);
  });

  it('exports the figures as Prometheus metrics', async () => {
    const response = await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/outpost_sync_online 1/);
    expect(text).toMatch(/outpost_sync_delivered_total\{rule="telemetry"\} \d+/);
    expect(text).toMatch(/outpost_sync_dead_lettered_total\{rule="telemetry"\} 2/);
    expect(text).toMatch(/outpost_sync_lane_items\{lane="backlog"\} 0/);
    expect(text).toMatch(/^outpost_sync_inbound_delivered_total\{rule="commands"\} 1$/m);
    expect(text).toMatch(/^outpost_sync_inbound_failures_total\{rule="commands"\} 0$/m);
  });
});
