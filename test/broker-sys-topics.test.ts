import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import type { MqttClient } from 'mqtt';
import { collectMessages, connectClient, mosquittoClient, subscribeGranted } from './helpers/mqtt.js';

// Mosquitto's $SYS/broker/… topics, as dashboards and `mosquitto_sub -t '$SYS/#'` read them.
const MONITOR_POLICY = { publish: ['#'], subscribe: ['#', '$SYS/#'] };

/** "topic: payload" of each message `client` gets within `ms`. */
async function messagesWithin(client: MqttClient, ms: number): Promise<string[]> {
  const got: string[] = [];
  const onMessage = (topic: string, payload: Buffer) => got.push(`${topic}: ${payload.toString()}`);
  client.on('message', onMessage);
  await new Promise((resolve) => setTimeout(resolve, ms));
  client.off('message', onMessage);
  return got;
}

describe('the broker\'s $SYS/broker topics', () => {
  let daemon: TestDaemon;
  const config = { mqtt: { allowAnonymous: true, anonymousPolicy: MONITOR_POLICY, sysIntervalSeconds: 1 } };

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config });
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('are retained for a subscriber whose policy names $SYS, and follow the broker every interval', async () => {
    // mosquitto_sub gets the figures at once on subscribing, retained (-R would leave them out)
    const [host, port] = [new URL(daemon.mqttUrl).hostname, new URL(daemon.mqttUrl).port];
    // (a topic and a payload both hold spaces: "retained messages/count", "12 seconds")
    const read = await mosquittoClient('mosquitto_sub', ['-h', host, '-p', port, '-t', '$SYS/broker/#', '-F', '%t\t%p', '--retained-only', '-W', '2']);
    const figures = Object.fromEntries(read.stdout.trim().split('\n').map((line) => line.split('\t')));
    expect(figures).toMatchObject({
      '$SYS/broker/version': expect.stringMatching(/^outpostd \d+\.\d+\.\d+$/),
      '$SYS/broker/uptime': expect.stringMatching(/^\d+ seconds$/),
      '$SYS/broker/clients/connected': expect.stringMatching(/^\d+$/),
      '$SYS/broker/clients/maximum': expect.stringMatching(/^\d+$/),
      '$SYS/broker/publish/messages/received': expect.stringMatching(/^\d+$/),
      '$SYS/broker/publish/messages/sent': expect.stringMatching(/^\d+$/),
      '$SYS/broker/publish/messages/dropped': '0',
      '$SYS/broker/bytes/received': expect.stringMatching(/^\d+$/),
      '$SYS/broker/bytes/sent': expect.stringMatching(/^\d+$/),
      '$SYS/broker/retained messages/count': '0',
    });

    const monitor = await connectClient(daemon.mqttUrl, { clientId: 'monitor' });
    await monitor.subscribeAsync('$SYS/broker/clients/connected', { qos: 0 });
    await monitor.subscribeAsync('$SYS/broker/retained messages/count', { qos: 0 });
    const devices = await Promise.all([1, 2, 3].map((n) => connectClient(daemon.mqttUrl, { clientId: `device-${n}` })));
    await devices[0].publishAsync('site/state', 'up', { qos: 1, retain: true });
    const updates = await messagesWithin(monitor, 3000);
    expect(updates).toContain('$SYS/broker/clients/connected: 4');
    expect(updates).toContain('$SYS/broker/retained messages/count: 1');
    for (const device of devices) device.end(true);
    monitor.end(true);
  });

  it('carry no other clients\' ids or filters: aedes\' own $SYS/<broker id>/… topics (new/clients, new/subscribes, heartbeat…) reach no client', async () => {
    const monitor = await connectClient(daemon.mqttUrl, { clientId: 'sys-monitor' });
    await monitor.subscribeAsync('$SYS/#', { qos: 0 });
    const other = await connectClient(daemon.mqttUrl, { clientId: 'other-client' });
    await other.subscribeAsync('secret/topic/#', { qos: 1 });
    await other.unsubscribeAsync('secret/topic/#');
    other.end(true);
    const topics = await messagesWithin(monitor, 2500);
    expect(topics.length).toBeGreaterThan(0);
    expect(topics.filter((topic) => !topic.startsWith('$SYS/broker/'))).toEqual([]);
    monitor.end(true);
  });

  it('reach no filter starting with a wildcard, are not the clients\' to publish, and need a policy naming them', async () => {
    const everything = await connectClient(daemon.mqttUrl, { clientId: 'everything' });
    await everything.subscribeAsync('#', { qos: 0 });
    await everything.subscribeAsync('+/broker/#', { qos: 0 });
    // MQTT-4.7.2-1
    expect((await messagesWithin(everything, 2500)).filter((message) => message.startsWith('$SYS/'))).toEqual([]);
    const forger = await connectClient(daemon.mqttUrl, { clientId: 'forger' });
    await forger.publishAsync('$SYS/broker/version', 'mosquitto version 2.0.11', { qos: 1, retain: true });
    const reader = await connectClient(daemon.mqttUrl, { clientId: 'reader' });
    const version = collectMessages(reader, 1);
    await reader.subscribeAsync('$SYS/broker/version', { qos: 0 });
    expect((await version)[0]).toMatchObject({ payload: expect.stringMatching(/^outpostd /), retain: true });
    for (const client of [everything, forger, reader]) client.end(true);

    // the default anonymous policy ('#') does not open $SYS
    const closed = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, sysIntervalSeconds: 1 } } });
    try {
      const client = await connectClient(closed.mqttUrl, { clientId: 'plain' });
      expect(await subscribeGranted(client, ['$SYS/broker/#'], 0)).toEqual([128]);
      client.end(true);
    } finally {
      await closed.cleanup();
    }
  });

  it('are kept in memory only: nothing on disk, a restart starts them afresh; sysIntervalSeconds 0 publishes none', async () => {
    const db = new Database(join(daemon.dataDir, 'outpost.db'), { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM broker_retained_messages WHERE topic LIKE '$SYS/%'").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    await daemon.kill();
    daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: { ...config, mqtt: { ...config.mqtt, sysIntervalSeconds: 0 } } });
    const client = await connectClient(daemon.mqttUrl, { clientId: 'after-restart' });
    const got = messagesWithin(client, 2500);
    await client.subscribeAsync('$SYS/broker/#', { qos: 0 });
    expect(await got).toEqual([]);
    client.end(true);
  });
});
