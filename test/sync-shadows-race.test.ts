import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { connectClient } from './helpers/mqtt.js';
import { freePort } from './helpers/cloud.js';
import { straceWorks } from './helpers/strace.js';

const SHADOW_TOPICS = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
const TOPIC = '$aws/things/pump/shadow';
// The cloud (a second outpostd) answers a shadow update only after its log's fdatasync, here held 700 ms:
// time for the device to change the shadow again while a sync's cloud write is under way.
const SLOW_CLOUD = ['strace', '-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:delay_enter=700000'];

describe.skipIf(!straceWorks)('shadow sync when the device changes the shadow again during a sync', () => {
  let cloudPort: number;
  let cloud: TestDaemon;
  let gateway: TestDaemon;

  const get = async (url: string) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `reader-${Math.random().toString(36).slice(2)}` }, [`${TOPIC}/get/+`]);
    try {
      const answer = await client.request(`${TOPIC}/get`);
      return answer.outcome === 'accepted' ? answer.body.state : undefined;
    } finally {
      client.end();
    }
  };
  const update = async (url: string, state: unknown) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `writer-${Math.random().toString(36).slice(2)}` }, [`${TOPIC}/update/+`]);
    try {
      expect((await client.request(`${TOPIC}/update`, { state }, 10_000)).outcome).toBe('accepted');
    } finally {
      client.end();
    }
  };
  const cloudUrl = () => `mqtt://127.0.0.1:${cloudPort}`;
  const gatewayConfig = () => ({
    mqtt: SHADOW_TOPICS,
    cloud: { mqtt: { url: cloudUrl(), clientId: 'gw-race', reconnectMinMs: 100, reconnectMaxMs: 300 } },
    sync: { shadows: [{ thing: 'pump' }] },
  });

  beforeAll(async () => {
    cloudPort = await freePort();
    cloud = await TestDaemon.start({ config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } }, wrapper: SLOW_CLOUD, startTimeoutMs: 60_000 });
    gateway = await TestDaemon.start({ config: gatewayConfig() });
  }, 90_000);

  afterAll(async () => {
    await gateway?.cleanup();
    if (cloud) {
      // strace's child is the daemon: stopping strace would leave it running
      const pid = Number(readFileSync(`/proc/${cloud.process.pid}/task/${cloud.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      if (pid) process.kill(pid, 'SIGTERM');
      await cloud.cleanup();
    }
  }, 30_000);

  it('keeps the device\'s newest desired value: the cloud\'s copy of its earlier one is no change of the cloud\'s', async () => {
    await update(cloudUrl(), { desired: { mode: 'a', speed: 1 } });
    await eventually(async () => (await get(gateway.mqttUrl))?.desired?.speed === 1, 10_000, 100);

    // As the sync writes the device's 'b' to the cloud, the device (a local app) sets 'c'.
    const watcher = await connectClient(cloudUrl(), { clientId: 'watcher' });
    const device = await connectClient(gateway.mqttUrl, { clientId: 'hmi' });
    try {
      await watcher.subscribeAsync(`${TOPIC}/update`, { qos: 1 });
      let changedAgain = false;
      watcher.on('message', (_topic, payload) => {
        const request = JSON.parse(payload.toString());
        if (!changedAgain && String(request.clientToken).startsWith('outpost-sync-') && request.state?.desired?.mode === 'b') {
          changedAgain = true;
          device.publish(`${TOPIC}/update`, JSON.stringify({ state: { desired: { mode: 'c' } } }), { qos: 1 });
        }
      });
      // Both sides change: the cloud's speed 2 is readable at once, announced only with its answer 700 ms later;
      // the device's mode 'b' syncs at once, so one sync writes both sides: locally (speed) and to the cloud (mode).
      const operator = await connectClient(cloudUrl(), { clientId: 'operator' });
      operator.publish(`${TOPIC}/update`, JSON.stringify({ state: { desired: { speed: 2 } } }), { qos: 1 });
      await eventually(async () => (await get(cloudUrl()))?.desired?.speed === 2, 5000, 20);
      operator.end();
      await update(gateway.mqttUrl, { desired: { mode: 'b' } });
      await eventually(() => changedAgain, 10_000);
      const settled = (state: any) => state?.desired?.mode === 'c' && state?.desired?.speed === 2;
      await eventually(async () => settled(await get(gateway.mqttUrl)) && settled(await get(cloudUrl())), 15_000, 200)
        .catch(async (error) => {
          throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl))}, cloud ${JSON.stringify(await get(cloudUrl()))}`);
        });
    } finally {
      watcher.end(true);
      device.end(true);
    }
  }, 60_000);

  it('brings a cloud change down while the device reports more often than a cloud write takes', async () => {
    // Each cloud write is answered 700 ms late; the device reports every 150 ms, so a local write made
    // only after the cloud write always found the local shadow changed again (409), and so for ever.
    const device = await connectClient(gateway.mqttUrl, { clientId: 'meter' });
    let count = 0;
    const reporting = setInterval(() => {
      device.publish(`${TOPIC}/update`, JSON.stringify({ state: { reported: { count: ++count } } }), { qos: 1 });
    }, 150);
    try {
      await update(cloudUrl(), { desired: { setpoint: 42 } });
      await eventually(async () => (await get(gateway.mqttUrl))?.desired?.setpoint === 42, 12_000, 200);
    } finally {
      clearInterval(reporting);
      device.end(true);
    }
    // once the device stops, its last report reaches the cloud
    await eventually(async () => (await get(cloudUrl()))?.reported?.count === count, 15_000, 200);
    expect((await get(gateway.mqttUrl))?.reported?.count).toBe(count);
  }, 60_000);

  it('loses nothing to a kill -9 between a sync\'s local write and its cloud write', async () => {
    const watcher = await connectClient(cloudUrl(), { clientId: 'kill-watcher' });
    let killed: Promise<void> | undefined;
    try {
      await watcher.subscribeAsync(`${TOPIC}/update`, { qos: 1 });
      watcher.on('message', (_topic, payload) => {
        const request = JSON.parse(payload.toString());
        // the sync's cloud write of the device's report: the cloud's setpoint is written locally already
        if (!killed && String(request.clientToken).startsWith('outpost-sync-') && request.state?.reported?.level === 3) killed = gateway.kill();
      });
      const operator = await connectClient(cloudUrl(), { clientId: 'operator-2' });
      operator.publish(`${TOPIC}/update`, JSON.stringify({ state: { desired: { setpoint: 7 } } }), { qos: 1 });
      await eventually(async () => (await get(cloudUrl()))?.desired?.setpoint === 7, 5000, 20);
      operator.end();
      await update(gateway.mqttUrl, { reported: { level: 3 } });
      await eventually(() => killed !== undefined, 10_000, 10);
      await killed;
    } finally {
      watcher.end(true);
    }
    gateway = await TestDaemon.start({ dataDir: gateway.dataDir, config: gatewayConfig() });
    const settled = (state: any) => state?.desired?.setpoint === 7 && state?.reported?.level === 3;
    await eventually(async () => settled(await get(gateway.mqttUrl)) && settled(await get(cloudUrl())), 15_000, 200)
      .catch(async (error) => {
        throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl))}, cloud ${JSON.stringify(await get(cloudUrl()))}`);
      });
    expect(await get(gateway.mqttUrl)).toEqual(await get(cloudUrl()));
  }, 60_000);
});
