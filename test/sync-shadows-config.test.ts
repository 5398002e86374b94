import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { freePort } from './helpers/cloud.js';

// The cloud is a second outpostd: its broker serves the AWS IoT shadow topics.
const SHADOW_TOPICS = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
const TOPIC = '$aws/things/pump/shadow';

describe('shadow sync of a shadow taken out of sync.shadows and put back', () => {
  let cloudPort: number;
  let cloud: TestDaemon;
  let gateway: TestDaemon | undefined;

  const request = async (url: string, operation: 'get' | 'update' | 'delete', body: Record<string, unknown> = {}) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `client-${Math.random().toString(36).slice(2)}` }, [`${TOPIC}/${operation}/+`]);
    try {
      return await client.request(`${TOPIC}/${operation}`, body);
    } finally {
      client.end();
    }
  };
  const state = async (url: string) => {
    const answer = await request(url, 'get');
    return answer.outcome === 'accepted' ? answer.body.state : undefined;
  };
  const cloudUrl = () => `mqtt://127.0.0.1:${cloudPort}`;
  const startGateway = (shadows: unknown[], dataDir?: string) => TestDaemon.start({
    dataDir,
    config: {
      mqtt: SHADOW_TOPICS,
      cloud: { mqtt: { url: cloudUrl(), clientId: 'gw-config', reconnectMinMs: 100, reconnectMaxMs: 300 } },
      sync: { shadows },
    },
  });

  beforeAll(async () => {
    cloudPort = await freePort();
    cloud = await TestDaemon.start({ config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
  });

  afterAll(async () => {
    await gateway?.cleanup();
    await cloud?.cleanup();
  });

  it('syncs it as new: what the cloud did while it was not synced does not wipe the device\'s state', async () => {
    gateway = await startGateway([{ thing: 'pump' }]);
    expect((await request(gateway.mqttUrl, 'update', { state: { reported: { temp: 20, serial: 'A-17' } } })).outcome).toBe('accepted');
    await eventually(async () => (await state(cloudUrl()))?.reported?.temp === 20, 10_000, 100);

    // Taken out of sync; meanwhile the cloud shadow is deleted (say the cloud thing was reset).
    await gateway.stop();
    gateway = await startGateway([], gateway.dataDir);
    expect((await request(cloudUrl(), 'delete')).outcome).toBe('accepted');
    await gateway.stop();

    // Put back: the device's state is what the cloud gets, not a delete it was not synced for.
    gateway = await startGateway([{ thing: 'pump' }], gateway.dataDir);
    const url = gateway.mqttUrl;
    await eventually(async () => (await state(cloudUrl()))?.reported?.temp === 20, 10_000, 100)
      .catch(async (error) => {
        throw new Error(`${error.message}: local ${JSON.stringify(await state(url))}, cloud ${JSON.stringify(await state(cloudUrl()))}`);
      });
    expect(await state(gateway.mqttUrl)).toEqual({ reported: { temp: 20, serial: 'A-17' } });
    expect(await state(cloudUrl())).toEqual({ reported: { temp: 20, serial: 'A-17' } });
  }, 60_000);
});
