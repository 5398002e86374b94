import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { freePort } from './helpers/cloud.js';

// The cloud is a second outpostd: its broker serves the AWS IoT shadow topics, versions and 409s included.
const SHADOW_TOPICS = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
const TOPIC = '$aws/things/pump/shadow';
const NAMED = '$aws/things/pump/shadow/name/config';
const TELEMETRY = '$aws/things/pump/shadow/name/telemetry';

describe('shadow sync with an AWS IoT-compatible cloud', () => {
  let cloudPort: number;
  let cloud: TestDaemon;
  let gateway: TestDaemon;
  const gatewayConfig = () => ({
    mqtt: SHADOW_TOPICS,
    cloud: { mqtt: { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'gw-shadows', reconnectMinMs: 100, reconnectMaxMs: 300 } },
    sync: {
      shadows: [
        { thing: 'pump' },
        { thing: 'pump', name: 'config', direction: 'cloud-to-device' },
        { thing: 'pump', name: 'telemetry', direction: 'device-to-cloud' },
        { thing: 'door' },
      ],
    },
  });

  const get = async (url: string, topic: string) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `reader-${Math.random().toString(36).slice(2)}` }, [`${topic}/get/+`]);
    try {
      const answer = await client.request(`${topic}/get`);
      return answer.outcome === 'accepted' ? answer.body : undefined;
    } finally {
      client.end();
    }
  };
  const update = async (url: string, topic: string, state: unknown) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `writer-${Math.random().toString(36).slice(2)}` }, [`${topic}/update/+`]);
    try {
      const answer = await client.request(`${topic}/update`, { state });
      expect(answer.outcome).toBe('accepted');
    } finally {
      client.end();
    }
  };
  const remove = async (url: string, topic: string) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `deleter-${Math.random().toString(36).slice(2)}` }, [`${topic}/delete/+`]);
    try {
      expect((await client.request(`${topic}/delete`)).outcome).toBe('accepted');
    } finally {
      client.end();
    }
  };
  const cloudUrl = () => `mqtt://127.0.0.1:${cloudPort}`;

  beforeAll(async () => {
    cloudPort = await freePort();
    cloud = await TestDaemon.start({ config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
    gateway = await TestDaemon.start({ config: gatewayConfig() });
  });

  afterAll(async () => {
    await gateway?.cleanup();
    await cloud?.cleanup();
  });

  it('sends local reported state to the cloud and cloud desired state to the device', async () => {
    await update(gateway.mqttUrl, TOPIC, { reported: { temp: 20 } });
    await eventually(async () => (await get(cloudUrl(), TOPIC))?.state?.reported?.temp === 20);
    const device = await ShadowMqttClient.connect(gateway.mqttUrl, { clientId: 'pump' }, [`${TOPIC}/update/delta`]);
    try {
      await update(cloudUrl(), TOPIC, { desired: { speed: 5 } });
      const delta = await device.nextEvent(`${TOPIC}/update/delta`, 8000);
      expect(delta.state).toEqual({ speed: 5 });
    } finally {
      device.end();
    }
    const local = await get(gateway.mqttUrl, TOPIC);
    expect(local.state).toMatchObject({ desired: { speed: 5 }, reported: { temp: 20 } });
    const status = JSON.parse((await outpost(gateway.socket, ['sync', 'status', '--json'])).stdout);
    expect(status.shadows).toContainEqual(expect.objectContaining({ thing: 'pump', name: null, direction: 'both', lastSync: expect.any(String), lastError: null }));
  });

  it('merges changes made on both sides while apart: reported — local wins, desired — cloud wins', async () => {
    await eventually(async () => (await get(cloudUrl(), TOPIC))?.state?.desired?.speed === 5 && (await get(gateway.mqttUrl, TOPIC))?.state?.desired?.speed === 5);
    await cloud.stop();
    await update(gateway.mqttUrl, TOPIC, { reported: { temp: 21 }, desired: { speed: 7 } });
    await gateway.stop();
    // The cloud changes too while the gateway is away (a desired change the device has not seen).
    cloud = await TestDaemon.start({ dataDir: cloud.dataDir, config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
    await update(cloudUrl(), TOPIC, { reported: { temp: 99, extra: 1 }, desired: { speed: 9, color: 'red' } });
    await update(cloudUrl(), NAMED, { desired: { interval: 60 } });

    gateway = await TestDaemon.start({ dataDir: gateway.dataDir, config: gatewayConfig() });
    const expected = { desired: { speed: 9, color: 'red' }, reported: { temp: 21, extra: 1 } };
    await eventually(async () => {
      const [local, remote] = [await get(gateway.mqttUrl, TOPIC), await get(cloudUrl(), TOPIC)];
      return JSON.stringify(local?.state) === JSON.stringify({ ...expected, delta: { speed: 9, color: 'red' } })
        && JSON.stringify(remote?.state) === JSON.stringify(local?.state);
    }, 10_000, 200).catch(async (error) => {
      throw new Error(`${error.message}: local ${JSON.stringify((await get(gateway.mqttUrl, TOPIC))?.state)}, cloud ${JSON.stringify((await get(cloudUrl(), TOPIC))?.state)}`);
    });
    // cloud-to-device: the named shadow follows the cloud.
    await eventually(async () => (await get(gateway.mqttUrl, NAMED))?.state?.desired?.interval === 60);
  });

  it('cloud-to-device shadows do not send local changes to the cloud', async () => {
    await update(gateway.mqttUrl, NAMED, { reported: { interval: 60 } });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await get(cloudUrl(), NAMED)).state.reported).toBeUndefined();
  });

  it('cloud-to-device shadows are put back on the device, whole, when the device deletes its copy', async () => {
    await eventually(async () => (await get(gateway.mqttUrl, NAMED))?.state?.desired?.interval === 60);
    await remove(gateway.mqttUrl, NAMED);
    await eventually(async () => (await get(gateway.mqttUrl, NAMED))?.state?.desired?.interval === 60, 8000, 200)
      .catch(async (error) => { throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl, NAMED))}`); });
    expect((await get(gateway.mqttUrl, NAMED)).state).toEqual({ desired: { interval: 60 }, delta: { interval: 60 } });
    expect((await get(cloudUrl(), NAMED)).state).toEqual({ desired: { interval: 60 }, delta: { interval: 60 } });
  });

  it('device-to-cloud shadows are put back in the cloud, whole, when the cloud shadow is deleted', async () => {
    await update(gateway.mqttUrl, TELEMETRY, { reported: { flow: 12, pressure: 3 } });
    await update(gateway.mqttUrl, TELEMETRY, { reported: { flow: 13 } });
    await eventually(async () => (await get(cloudUrl(), TELEMETRY))?.state?.reported?.flow === 13);
    await remove(cloudUrl(), TELEMETRY);
    await eventually(async () => (await get(cloudUrl(), TELEMETRY))?.state?.reported?.flow === 13, 8000, 200)
      .catch(async (error) => { throw new Error(`${error.message}: cloud ${JSON.stringify(await get(cloudUrl(), TELEMETRY))}`); });
    expect((await get(cloudUrl(), TELEMETRY)).state).toEqual({ reported: { flow: 13, pressure: 3 } });
    expect((await get(gateway.mqttUrl, TELEMETRY)).state).toEqual({ reported: { flow: 13, pressure: 3 } });
  });

  it('syncs a delete on either side at once, as a delete (a get then finds no shadow), without waiting for a reconnect', async () => {
    await update(cloudUrl(), TOPIC, { desired: { speed: 3 } });
    await eventually(async () => (await get(gateway.mqttUrl, TOPIC))?.state?.desired?.speed === 3);
    await remove(cloudUrl(), TOPIC);
    await eventually(async () => (await get(gateway.mqttUrl, TOPIC)) === undefined, 8000, 200)
      .catch(async (error) => { throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl, TOPIC))}`); });

    // re-created on the device: the cloud gets it, and then the device's delete
    await update(gateway.mqttUrl, TOPIC, { reported: { temp: 30 } });
    await eventually(async () => (await get(cloudUrl(), TOPIC))?.state?.reported?.temp === 30);
    await remove(gateway.mqttUrl, TOPIC);
    await eventually(async () => (await get(cloudUrl(), TOPIC)) === undefined, 8000, 200)
      .catch(async (error) => { throw new Error(`${error.message}: cloud ${JSON.stringify(await get(cloudUrl(), TOPIC))}`); });
    // and stays deleted on both sides
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await get(gateway.mqttUrl, TOPIC)).toBeUndefined();
    expect(await get(cloudUrl(), TOPIC)).toBeUndefined();
    const status = JSON.parse((await outpost(gateway.socket, ['sync', 'status', '--json'])).stdout);
    expect(status.online).toBe(true);
    expect(status.shadows.find((shadow: any) => shadow.name === null).lastError).toBeNull();
  });

  it('keeps a key one side added while the other deleted the shadow: the deleted side counts as empty, and the shadow is made again on it', async () => {
    const DOOR = '$aws/things/door/shadow';
    await update(cloudUrl(), DOOR, { desired: { locked: true }, reported: { locked: true } });
    await eventually(async () => (await get(gateway.mqttUrl, DOOR))?.state?.reported?.locked === true);
    // apart: the cloud adds the battery level, the device deletes its shadow
    await gateway.stop();
    await update(cloudUrl(), DOOR, { reported: { battery: 50 } });
    await cloud.stop();
    gateway = await TestDaemon.start({ dataDir: gateway.dataDir, config: gatewayConfig() });
    await remove(gateway.mqttUrl, DOOR);
    cloud = await TestDaemon.start({ dataDir: cloud.dataDir, config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
    // the device's delete takes what the cloud had (locked); the cloud's new key stays, on both sides
    const expected = { reported: { battery: 50 } };
    await eventually(async () => isDeepStrictEqual((await get(gateway.mqttUrl, DOOR))?.state, expected) && isDeepStrictEqual((await get(cloudUrl(), DOOR))?.state, expected), 15_000, 200)
      .catch(async (error) => { throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl, DOOR))}, cloud ${JSON.stringify(await get(cloudUrl(), DOOR))}`); });
  });

  it('does not sync again on the echo of its own writes: one cloud read per change, either side\'s', async () => {
    const requests: string[] = [];
    const watcher = await connectClient(cloudUrl(), { clientId: 'request-watcher' });
    try {
      await watcher.subscribeAsync([`${TOPIC}/get`, `${TOPIC}/update`], { qos: 1 });
      watcher.on('message', (topic, payload) => {
        if (String(JSON.parse(payload.toString()).clientToken).startsWith('outpost-sync-')) requests.push(topic.slice(TOPIC.length + 1));
      });
      const settled = async (check: () => Promise<boolean>) => {
        await eventually(check, 8000, 100);
        // time for an echo's sync, were there one
        await new Promise((resolve) => setTimeout(resolve, 1500));
      };
      await settled(async () => (await get(cloudUrl(), TOPIC))?.state?.reported?.temp === undefined);
      requests.length = 0;
      await update(gateway.mqttUrl, TOPIC, { reported: { temp: 31 } });
      await settled(async () => (await get(cloudUrl(), TOPIC))?.state?.reported?.temp === 31);
      expect(requests).toEqual(['get', 'update']);

      requests.length = 0;
      await update(cloudUrl(), TOPIC, { desired: { speed: 4 } });
      await settled(async () => (await get(gateway.mqttUrl, TOPIC))?.state?.desired?.speed === 4);
      expect(requests).toEqual(['get']);
    } finally {
      watcher.end(true);
    }
  });
});
