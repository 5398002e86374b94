import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { collectMessages, connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * Mosquitto as an MQTT 5 cloud that announces Maximum QoS 0 and Retain Available 0 in its CONNACK
 * and, as it says it does (mosquitto.conf(5)), disconnects a client that publishes above them.
 */
describe('an MQTT 5 cloud that takes QoS 0 only and no retained messages', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  let device: MqttClient;
  let subscriber: CloudSubscriber;

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    // after the listener line: max_qos is a setting of that listener
    appendFileSync(join(cloud.dir, 'mosquitto.conf'), 'max_qos 0\nretain_available false\n');
    await cloud.start();
    subscriber = await CloudSubscriber.connect(cloud.url, 'gw/#', 'cloud-limits-sub');
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-limits', protocolVersion: 5, reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: {
          outbound: [{ name: 'telemetry', from: 'sensors/#', to: 'gw/${topic}', id: 'none', qos: 1 }],
          inbound: [{ name: 'commands', from: 'commands/#', to: 'cloud/${topic}', qos: 1 }],
        },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
  });

  afterAll(async () => {
    device?.end(true);
    await subscriber?.end();
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('gets the QoS 1 rule\'s messages at QoS 0 on one connection, says so in sync status, and still delivers inbound', async () => {
    const online = await eventually(async () => {
      const figures = await status(daemon);
      return figures.online && figures;
    }, 10_000);
    expect(online.cloudLimits).toEqual({ maximumQoS: 0, retainAvailable: false, maximumPacketSize: null });
    expect((await outpost(daemon.socket, ['sync', 'status'])).stdout).toMatch(/the cloud takes QoS 0 only: QoS 1 rules and shadow requests go at QoS 0/);

    await device.publishAsync('sensors/a', 'one', { qos: 1 });
    // retained locally: the cloud gets it without RETAIN, which it would refuse (the agent never sets it)
    await device.publishAsync('sensors/b', 'two', { qos: 1, retain: true });
    await device.publishAsync('sensors/a', 'three', { qos: 1 });
    await eventually(() => subscriber.messages.length === 3, 10_000);
    expect(subscriber.messages.map((message) => message.payload)).toEqual(['one', 'two', 'three']);
    const drained = await eventually(async () => {
      const figures = await status(daemon);
      return figures.outbox.items === 0 && figures;
    }, 10_000);
    // the same connection: the cloud closed none for a refused QoS
    expect(drained.online).toBe(true);
    expect(drained.since).toBe(online.since);
    expect(drained.deadLetters).toBe(0);

    // inbound: a QoS 1 subscription the cloud grants at QoS 0 still brings its messages
    const local = await connectClient(daemon.mqttUrl, { clientId: 'commands' });
    const commander = await connectClient(cloud.url, { clientId: 'cloud-commander', protocolVersion: 5 });
    try {
      await local.subscribeAsync('cloud/commands/#', { qos: 1 });
      const received = collectMessages(local, 1);
      await commander.publishAsync('commands/reboot', 'now', { qos: 0 });
      expect(await received).toEqual([expect.objectContaining({ topic: 'cloud/commands/reboot', payload: 'now' })]);
    } finally {
      local.end(true);
      commander.end(true);
    }
    expect((await status(daemon)).since).toBe(online.since);
  });
});
