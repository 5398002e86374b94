import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
const laneItems = (figures: any) => Object.fromEntries(figures.lanes.map((lane: any) => [lane.lane, lane.items]));

describe('sync status: the lanes', () => {
  let cloud: CloudBroker;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-lanes', reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: {
          outbound: [
            { name: 'telemetry', from: 'sensors/#', to: 'gw/${topic}' },
            { name: 'strict', from: 'events/#', to: 'gw/${topic}', liveFirst: false },
          ],
        },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
  });

  afterAll(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.destroy();
  });

  it('counts what goes out in the backlog lane as backlog: all of it while offline, and strict-order rules always', async () => {
    for (let i = 0; i < 3; i++) await device.publishAsync('sensors/a', String(i), { qos: 1 });
    const offline = await status(daemon);
    expect(offline.online).toBe(false);
    // sent as backlog once a connection comes up
    expect(laneItems(offline)).toEqual({ live: 0, backlog: 3 });

    await outpost(daemon.socket, ['sync', 'pause']);
    await cloud.start();
    await eventually(async () => (await status(daemon)).online);
    for (let i = 0; i < 2; i++) {
      await device.publishAsync('sensors/a', `live ${i}`, { qos: 1 });
      await device.publishAsync('events/a', `strict ${i}`, { qos: 1 });
    }
    // liveFirst: false keeps the strict rule behind the backlog, at the drain rate
    expect(laneItems(await status(daemon))).toEqual({ live: 2, backlog: 5 });

    await outpost(daemon.socket, ['sync', 'resume']);
    const drained = await eventually(async () => {
      const figures = await status(daemon);
      return figures.outbox.items === 0 && figures;
    });
    expect(laneItems(drained)).toEqual({ live: 0, backlog: 0 });
    expect(drained.lanes.map((lane: any) => lane.bytes)).toEqual([0, 0]);
  });
});
