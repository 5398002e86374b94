import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

describe('inbound rules on AWS IoT reserved topics', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  let local: MqttClient;

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    await cloud.start();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-jobs', reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: {
          inbound: [
            { name: 'commands', from: 'cmd/#', to: 'cloud/${topic}' },
            // AWS IoT Jobs, as a Greengrass core relays them to local devices
            { name: 'jobs', from: '$aws/things/gw-jobs/jobs/#' },
          ],
          // shadow sync of the same thing uses $aws/things/gw-jobs/shadow/… only
          shadows: [{ thing: 'gw-jobs' }],
        },
      },
    });
    local = await connectClient(daemon.mqttUrl, { clientId: 'job-runner' });
  });

  afterAll(async () => {
    local?.end(true);
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('delivers a cloud message on $aws/things/{thing}/jobs/… to local subscribers', async () => {
    await eventually(async () => (await status(daemon)).online);
    const received: Array<{ topic: string; payload: string }> = [];
    local.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
    await local.subscribeAsync(['cloud/#', '$aws/things/gw-jobs/jobs/#'], { qos: 1 });
    const publisher = await connectClient(cloud.url, { clientId: 'aws-iot-jobs' });
    try {
      // The rules' filters are subscribed in one SUBSCRIBE: once a command arrives, the jobs filter is in place too.
      await eventually(async () => {
        await publisher.publishAsync('cmd/ping', 'ping', { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        return received.length > 0;
      }, 10_000);
      await publisher.publishAsync('$aws/things/gw-jobs/jobs/notify', '{"jobs":{"QUEUED":[{"jobId":"j1"}]}}', { qos: 1 });
      await eventually(() => received.some((message) => message.topic.startsWith('$aws/')), 5000).catch(() => undefined);
      expect(received.filter((message) => message.topic.startsWith('$aws/')))
        .toEqual([{ topic: '$aws/things/gw-jobs/jobs/notify', payload: '{"jobs":{"QUEUED":[{"jobId":"j1"}]}}' }]);
    } finally {
      publisher.end(true);
    }
  });

  it('delivers a retained cloud command once, not again after every reconnect of a session the cloud kept', async () => {
    await eventually(async () => (await status(daemon)).online);
    const received: string[] = [];
    local.on('message', (topic, payload) => { if (topic === 'cloud/cmd/valve') received.push(payload.toString()); });
    await local.subscribeAsync('cloud/cmd/valve', { qos: 1 });
    const publisher = await connectClient(cloud.url, { clientId: 'aws-iot-retained' });
    await publisher.publishAsync('cmd/valve', 'open', { qos: 1, retain: true });
    await publisher.endAsync(true);
    await eventually(() => received.length === 1, 10_000);
    // Mosquitto keeps the gateway's session across its restarts: the filters are still subscribed
    for (let restart = 0; restart < 2; restart++) {
      await cloud.stop();
      await eventually(async () => !(await status(daemon)).online, 10_000);
      await cloud.start();
      await eventually(async () => (await status(daemon)).online, 10_000);
    }
    // a SUBSCRIBE's retained copy comes with its SUBACK, right after the connection is up
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(received).toEqual(['open']);
  });
});

describe('inbound rules over MQTT 5', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  const config = () => ({
    mqtt: { allowAnonymous: true },
    cloud: { mqtt: { url: cloud.url, clientId: 'gw-v5', protocolVersion: 5, reconnectMinMs: 100, reconnectMaxMs: 400 } },
    sync: { inbound: [{ name: 'commands', from: 'cmd/#', to: 'cloud/${topic}' }] },
  });

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    await cloud.start();
    daemon = await TestDaemon.start({ config: config() });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('keeps the cloud session while the gateway is away: a command sent meanwhile arrives after it is back', async () => {
    // A local listener with a persistent session, so that it gets what the gateway delivers while it reconnects.
    const listener = await connectClient(daemon.mqttUrl, { clientId: 'valve', clean: false });
    await listener.subscribeAsync('cloud/#', { qos: 1 });
    const publisher = await connectClient(cloud.url, { clientId: 'cloud-app-v5' });
    try {
      const received: string[] = [];
      listener.on('message', (_topic, payload) => received.push(payload.toString()));
      await eventually(async () => (await status(daemon)).online);
      await eventually(async () => {
        await publisher.publishAsync('cmd/valve', 'first', { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        return received.length > 0;
      }, 10_000);
      listener.end(true);

      await daemon.stop();
      await publisher.publishAsync('cmd/valve', 'while away', { qos: 1 });
      daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: config() });
      await eventually(async () => (await status(daemon)).online);
      // Listening from the first packet on: the message the daemon queued for this session comes right
      // after the CONNACK, and a test process slow to read (a loaded machine) takes both at once, so
      // mqtt.js emits the message before connectClient's promise lets the test add a listener.
      const back = mqtt.connect(daemon.mqttUrl, { clientId: 'valve', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      const payloads: string[] = [];
      back.on('message', (_topic, payload) => payloads.push(payload.toString()));
      try {
        await eventually(() => payloads.includes('while away'), 5000).catch(() => undefined);
        expect(payloads).toContain('while away');
      } finally {
        back.end(true);
      }
    } finally {
      publisher.end(true);
    }
  });
});

describe('a burst of cloud messages larger than the inbound rules hold at once', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  const config = () => ({
    mqtt: { allowAnonymous: true, maxQueuedMessages: 10_000 },
    cloud: { mqtt: { url: cloud.url, clientId: 'gw-burst', reconnectMinMs: 100, reconnectMaxMs: 400 } },
    sync: { inbound: [{ name: 'burst', from: 'cmd/#', to: 'local/${topic}', qos: 1 }] },
  });

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    await cloud.start();
    daemon = await TestDaemon.start({ config: config() });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('takes all of it on one connection, each message once, reading no more of the cloud while 1,000 wait', async () => {
    const MESSAGES = 3000;
    // a device with a persistent session, offline: it gets what the gateway published meanwhile
    const device = await connectClient(daemon.mqttUrl, { clientId: 'burst-device', clean: false });
    await device.subscribeAsync('local/#', { qos: 1 });
    await device.endAsync();
    await eventually(async () => (await status(daemon)).online);
    await daemon.stop();
    // the cloud keeps the gateway's session and sends all of it at once when the gateway is back
    const publisher = await connectClient(cloud.url, { clientId: 'cloud-burst' });
    for (let i = 0; i < MESSAGES; i++) await publisher.publishAsync('cmd/valve', String(i), { qos: 1 });
    publisher.end(true);

    daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: config() });
    const inbound = async () => (await status(daemon)).inbound?.find((rule: any) => rule.rule === 'burst');
    await eventually(async () => (await inbound())?.delivered >= MESSAGES, 30_000);
    expect(daemon.process.exitCode).toBeNull();
    expect(await inbound()).toMatchObject({ delivered: MESSAGES, failures: 0 });
    const received: string[] = [];
    const back = mqtt.connect(daemon.mqttUrl, { clientId: 'burst-device', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    back.on('message', (_topic, payload) => received.push(payload.toString()));
    try {
      await eventually(() => received.length >= MESSAGES, 20_000).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => String(i)));
    } finally {
      back.end(true);
    }
  });
});
