import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * Refusals that retrying does not heal (credentials, policies) back off up to refusedRetryMaxMs, not
 * the short cap of a cloud that is away, and lose nothing: once the operator fixes the cloud's side,
 * the next attempt goes through and the backlog arrives.
 */
describe('sync: a cloud that refuses the gateway', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it.each([4, 5] as const)('backs off beyond reconnectMaxMs while the cloud refuses the connection (MQTT %i), then delivers what waited', async (protocolVersion) => {
    const cloud = await CloudBroker.create(undefined, { 'cloud-app': 'app-secret', gateway: 'new-secret' });
    cleanups.push(() => cloud.destroy());
    await cloud.start();
    // the cloud application's persistent session, which gets what the gateway sends once it is let in
    const app = await connectClient(cloud.url, { clientId: 'cloud-app', clean: false, username: 'cloud-app', password: 'app-secret' });
    await app.subscribeAsync('gateways/#', { qos: 1 });
    await app.endAsync();

    const reconnectMaxMs = 400;
    const gateway = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: `gw-refused-${protocolVersion}`, protocolVersion, username: 'gateway', password: 'old-secret', reconnectMinMs: 100, reconnectMaxMs, refusedRetryMaxMs: 3000 } },
        sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', to: 'gateways/gw/${topic}', id: 'none' }] },
      },
    });
    cleanups.push(() => gateway.cleanup());
    const device = await connectClient(gateway.mqttUrl, { clientId: 'sensor' });
    cleanups.push(() => device.endAsync(true));
    await device.publishAsync('sensors/t', 'while refused', { qos: 1 });

    // the status says why, and when the next attempt is: later than reconnectMaxMs would allow
    const refused = await eventually(async () => {
      const now = await status(gateway);
      return now.nextAttempt !== null && Date.parse(now.nextAttempt) - Date.now() > reconnectMaxMs && now;
    }, 20_000, 100);
    expect(refused.online).toBe(false);
    expect(refused.lastError).toMatch(/^the cloud refused the connection: (bad user name or password|not authorized) \(CONNACK /);
    expect(refused.outbox.items).toBe(1);

    // the operator gives the gateway's password to the cloud: the next attempt is let in
    await cloud.stop();
    cloud.setUsers({ 'cloud-app': 'app-secret', gateway: 'old-secret' });
    await cloud.start();
    const received: string[] = [];
    // listening from the first packet on: the queued message may come with the CONNACK
    const back = mqtt.connect(cloud.url, { clientId: 'cloud-app', clean: false, username: 'cloud-app', password: 'app-secret', reconnectPeriod: 0, protocolVersion: 4 });
    cleanups.push(() => back.endAsync(true));
    back.on('message', (_topic, payload) => received.push(payload.toString()));
    await eventually(() => received.includes('while refused'), 15_000);
    const online = await status(gateway);
    expect(online).toMatchObject({ online: true, nextAttempt: null, deadLetters: 0 });
  });
});
