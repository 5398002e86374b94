import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { freePort } from './helpers/cloud.js';

// The cloud is a second outpostd: like AWS IoT Core, it refuses an 11th shadow request in flight on one connection (429).
const SHADOW_TOPICS = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
const THINGS = Array.from({ length: 24 }, (_, i) => `pump-${i}`);

describe('shadow sync of many shadows over one cloud connection', () => {
  let cloudPort: number;
  let cloud: TestDaemon | undefined;
  let gateway: TestDaemon;

  const reported = async (url: string, thing: string) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `reader-${Math.random().toString(36).slice(2)}` }, [`$aws/things/${thing}/shadow/get/+`]);
    try {
      const answer = await client.request(`$aws/things/${thing}/shadow/get`);
      return answer.outcome === 'accepted' ? answer.body.state?.reported : undefined;
    } finally {
      client.end();
    }
  };

  beforeAll(async () => {
    cloudPort = await freePort();
    gateway = await TestDaemon.start({
      config: {
        mqtt: SHADOW_TOPICS,
        cloud: { mqtt: { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'gw-many', reconnectMinMs: 100, reconnectMaxMs: 300 } },
        sync: { shadows: THINGS.map((thing) => ({ thing })) },
      },
    });
  });

  afterAll(async () => {
    await gateway?.cleanup();
    await cloud?.cleanup();
  });

  it('syncs them all on connect without the cloud refusing a request as too many in flight', async () => {
    const device = await ShadowMqttClient.connect(gateway.mqttUrl, { clientId: 'devices' }, THINGS.map((thing) => `$aws/things/${thing}/shadow/update/+`));
    try {
      for (const [i, thing] of THINGS.entries()) {
        expect((await device.request(`$aws/things/${thing}/shadow/update`, { state: { reported: { i } } })).outcome).toBe('accepted');
      }
    } finally {
      device.client.end(true);
    }
    // The cloud comes up: one full sync of every shadow at once.
    cloud = await TestDaemon.start({ config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
    const cloudUrl = `mqtt://127.0.0.1:${cloudPort}`;
    await eventually(async () => {
      const figures = JSON.parse((await outpost(gateway.socket, ['sync', 'status', '--json'])).stdout);
      return figures.shadows.every((shadow: any) => shadow.lastSync !== null);
    }, 20_000, 200).catch(async (error) => {
      const figures = JSON.parse((await outpost(gateway.socket, ['sync', 'status', '--json'])).stdout);
      throw new Error(`${error.message}: ${JSON.stringify(figures.shadows.filter((shadow: any) => shadow.lastSync === null))}`);
    });
    for (const [i, thing] of THINGS.entries()) expect(await reported(cloudUrl, thing)).toEqual({ i });
    const refused = gateway.logs.filter((entry) => entry.msg === 'shadow sync failed');
    expect(refused.map((entry) => entry.err?.message)).toEqual([]);
  });
});
