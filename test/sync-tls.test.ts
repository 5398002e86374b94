import { chmodSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

describe('sync over mutual TLS (mqtts://, client certificate)', () => {
  let pki: TestPki;
  let cloud: CloudBroker;
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    pki = makeTestPki('gw-tls');
    // Mosquitto runs as the user "mosquitto": let it read the throwaway keys.
    chmodSync(pki.dir, 0o755);
    for (const file of readdirSync(pki.dir)) chmodSync(join(pki.dir, file), 0o644);
    cloud = await CloudBroker.create({ ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey });
    await cloud.start();
  });

  afterAll(async () => {
    for (const daemon of daemons) await daemon.cleanup();
    await cloud?.destroy();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const gateway = async (mqtt: Record<string, unknown>) => {
    const daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: `mqtts://127.0.0.1:${cloud.tlsPort}`, reconnectMinMs: 100, reconnectMaxMs: 300, ...mqtt } },
        sync: { outbound: [{ name: 'tls', from: 'tls/#', to: 'cloud/${topic}', id: 'none' }] },
      },
    });
    daemons.push(daemon);
    return daemon;
  };

  it('connects with the client certificate and delivers', async () => {
    const subscriber = await CloudSubscriber.connect(cloud.url, 'cloud/#', 'tls-sub');
    try {
      const daemon = await gateway({ clientId: 'gw-tls', ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
      await eventually(async () => (await status(daemon)).online).catch(async (error) => {
        throw new Error(`${error.message}: ${JSON.stringify(await status(daemon))} ${JSON.stringify(daemon.logs.filter((l) => l.level >= 40))}`);
      });
      const device = await connectClient(daemon.mqttUrl, { clientId: 'tls-device' });
      await device.publishAsync('tls/1', 'over TLS', { qos: 1 });
      device.end(true);
      await eventually(() => subscriber.messages.length === 1);
      expect(subscriber.messages[0]).toMatchObject({ topic: 'cloud/tls/1', payload: 'over TLS' });
    } finally {
      await subscriber.end();
    }
  });

  it('stays offline with the reason when the cloud refuses it (no client certificate), and keeps buffering', async () => {
    const daemon = await gateway({ clientId: 'gw-nocert', ca: pki.caCert });
    const device = await connectClient(daemon.mqttUrl, { clientId: 'tls-device-2' });
    await device.publishAsync('tls/2', 'kept', { qos: 1 });
    device.end(true);
    const offline = await eventually(async () => {
      const current = await status(daemon);
      return current.lastError && current;
    });
    expect(offline).toMatchObject({ online: false, outbox: { items: 1 } });
    expect(offline.lastError).not.toBe('');
    const text = await outpost(daemon.socket, ['sync', 'status']);
    expect(text.stdout).toMatch(/offline since .*\(/);
  });

  it('waits longer than reconnectMaxMs between attempts while the cloud refuses its certificate (unknown CA)', async () => {
    const daemon = await gateway({ clientId: 'gw-unknown-ca', ca: pki.caCert, cert: pki.selfSignedCert, key: pki.selfSignedKey, refusedRetryMaxMs: 3000 });
    // reconnectMaxMs is 300: a later next attempt is the longer backoff of a refusal
    const refused = await eventually(async () => {
      const current = await status(daemon);
      return current.nextAttempt !== null && Date.parse(current.nextAttempt) - Date.now() > 300 && current;
    }, 20_000, 100);
    expect(refused.online).toBe(false);
    expect(refused.lastError).toBe('the cloud refused the TLS connection (alert "unknown ca"): does it know the certificate of cloud.mqtt.cert?');
  });
});
