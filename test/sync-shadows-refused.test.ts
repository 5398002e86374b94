import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { freePort } from './helpers/cloud.js';

// The cloud is a second outpostd with AWS's 8 KB shadow documents; the gateway's own shadows take 64 KiB,
// so a document the device keeps locally is one the cloud refuses (413).
const SHADOW_TOPICS = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
const TOPIC = '$aws/things/pump/shadow';

describe('shadow sync when a side refuses an update for good', () => {
  let cloudPort: number;
  let cloud: TestDaemon;
  let gateway: TestDaemon;
  let watcher: MqttClient;
  /** The agent's update requests the cloud received. */
  const sent: any[] = [];

  const get = async (url: string, topic = TOPIC) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `reader-${Math.random().toString(36).slice(2)}` }, [`${topic}/get/+`]);
    try {
      const answer = await client.request(`${topic}/get`);
      return answer.outcome === 'accepted' ? answer.body.state : undefined;
    } finally {
      client.end();
    }
  };
  const update = async (url: string, state: unknown, topic = TOPIC) => {
    const client = await ShadowMqttClient.connect(url, { clientId: `writer-${Math.random().toString(36).slice(2)}` }, [`${topic}/update/+`]);
    try {
      expect((await client.request(`${topic}/update`, { state })).outcome).toBe('accepted');
    } finally {
      client.end();
    }
  };
  const shadowStatus = async (daemon = gateway) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout).shadows[0];
  const cloudUrl = () => `mqtt://127.0.0.1:${cloudPort}`;
  /**
   * Why a side's shadow refused an update, as the daemon logged it. Not the status's last error: a
   * sync of a change seen meanwhile, which the refused part no longer rides along with, may clear it at once.
   */
  const loggedRefusal = (daemon: TestDaemon, side: 'cloud' | 'local') => daemon.logs
    .find((line: any) => line.msg === 'shadow sync failed' && line.err?.message?.startsWith(`the ${side} shadow refused`))?.err.message as string | undefined;

  beforeAll(async () => {
    cloudPort = await freePort();
    cloud = await TestDaemon.start({ config: { mqtt: { ...SHADOW_TOPICS, port: cloudPort } } });
    watcher = await connectClient(cloudUrl(), { clientId: 'watcher' });
    await watcher.subscribeAsync(`${TOPIC}/update`, { qos: 1 });
    watcher.on('message', (_topic, payload) => {
      const request = JSON.parse(payload.toString());
      if (String(request.clientToken).startsWith('outpost-sync-')) sent.push(request);
    });
    gateway = await TestDaemon.start({
      config: {
        mqtt: SHADOW_TOPICS,
        shadows: { maxDocumentBytes: 65536 },
        cloud: { mqtt: { url: cloudUrl(), clientId: 'gw-refused', reconnectMinMs: 100, reconnectMaxMs: 300 } },
        sync: { shadows: [{ thing: 'pump' }] },
      },
    });
  });

  afterAll(async () => {
    watcher?.end(true);
    await gateway?.cleanup();
    await cloud?.cleanup();
  });

  it('still brings the cloud\'s changes down, does not resend the refused update on a timer, and sends it once it fits', async () => {
    await update(gateway.mqttUrl, { reported: { temp: 20 } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.temp === 20, 10_000, 100);

    const log = 'x'.repeat(9000);
    await update(gateway.mqttUrl, { reported: { log } });
    expect(await eventually(() => loggedRefusal(gateway, 'cloud'), 10_000, 100))
      .toMatch(/^the cloud shadow refused the update: 413 The payload exceeds the maximum size allowed/);

    // The operator's desired change reaches the device although the device's report cannot reach the cloud.
    await update(cloudUrl(), { desired: { speed: 5 } });
    await eventually(async () => (await get(gateway.mqttUrl))?.desired?.speed === 5, 10_000, 100)
      .catch(async (error) => {
        throw new Error(`${error.message}: local ${JSON.stringify(await get(gateway.mqttUrl))?.slice(0, 200)}, last error ${(await shadowStatus()).lastError}`);
      });
    const local = await get(gateway.mqttUrl);
    expect(local).toEqual({ desired: { speed: 5 }, reported: { temp: 20, log }, delta: { speed: 5 } });
    expect(await get(cloudUrl())).toEqual({ desired: { speed: 5 }, reported: { temp: 20 }, delta: { speed: 5 } });

    // Nothing changes now: the refused update is not sent again and again (AWS charges each).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const quiet = sent.length;
    await new Promise((resolve) => setTimeout(resolve, 6500));
    expect(sent.length).toBe(quiet);

    // The device shortens its report: the pending change goes, now that the cloud takes it.
    await update(gateway.mqttUrl, { reported: { log: 'short' } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.log === 'short', 10_000, 100);
    await eventually(async () => (await shadowStatus()).lastError === null, 10_000, 100);
    expect(await get(cloudUrl())).toEqual({ desired: { speed: 5 }, reported: { temp: 20, log: 'short' }, delta: { speed: 5 } });
    expect(await get(gateway.mqttUrl)).toEqual(await get(cloudUrl()));
  }, 60_000);

  it('leaves a change the cloud refused out of the shadow\'s later updates until the device changes it', async () => {
    await update(gateway.mqttUrl, { reported: { temp: 20, log: 'short' } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.log === 'short', 10_000, 100);
    const log = 'y'.repeat(9000);
    await update(gateway.mqttUrl, { reported: { log } });
    // set aside; the shadow's last error says so until a later sync of the shadow succeeds (one may
    // follow at once, for a change seen meanwhile), the keys set aside stay in the status until then
    const refused = await eventually(async () => {
      const shadow = await shadowStatus();
      return shadow.refusedChanges.length > 0 && shadow;
    }, 10_000, 100);
    expect(refused.refusedChanges).toEqual(['reported.log']);
    expect((await outpost(gateway.socket, ['sync', 'status'])).stdout).toContain('not synced, refused by the cloud: reported.log');
    expect(gateway.logs.some((line: any) => line.msg?.startsWith('the cloud refused these changes of the device for good') && line.keys?.includes('reported.log'))).toBe(true);

    // The device's next report goes alone: the refused log does not ride along (and get it refused too).
    const before = sent.length;
    await update(gateway.mqttUrl, { reported: { temp: 21 } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.temp === 21, 10_000, 100);
    expect(sent.slice(before).map((request) => request.state)).toEqual([{ reported: { temp: 21 } }]);
    const synced = await shadowStatus();
    expect(synced).toMatchObject({ lastError: null, refusedChanges: ['reported.log'] });
    expect((await get(cloudUrl()))?.reported).toEqual({ temp: 21, log: 'short' });
    expect((await get(gateway.mqttUrl))?.reported).toEqual({ temp: 21, log });

    // A new value of the refused key is a change again, sent once it fits.
    await update(gateway.mqttUrl, { reported: { log: 'fits' } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.log === 'fits', 10_000, 100);
    await eventually(async () => (await shadowStatus()).refusedChanges.length === 0, 10_000, 100);
    expect(await get(gateway.mqttUrl)).toEqual(await get(cloudUrl()));
  }, 60_000);

  it('sends the keys the cloud takes from an update it refused, and sets aside only the keys it refuses', async () => {
    await update(gateway.mqttUrl, { reported: { temp: 21, log: 'fits', mode: null } });
    await eventually(async () => (await shadowStatus()).lastError === null && (await get(cloudUrl()))?.reported?.log === 'fits', 10_000, 100);
    const before = sent.length;
    // One report of the device, three keys: the log is too large for the cloud, the others are not.
    const log = 'z'.repeat(9000);
    await update(gateway.mqttUrl, { reported: { temp: 30, log, mode: { state: 'run', since: 5 } } });
    await eventually(async () => (await get(cloudUrl()))?.reported?.mode?.since === 5, 10_000, 100)
      .catch(async (error) => {
        throw new Error(`${error.message}: cloud ${JSON.stringify(await get(cloudUrl()))?.slice(0, 200)}, last error ${(await shadowStatus()).lastError}`);
      });
    expect((await get(cloudUrl()))?.reported).toEqual({ temp: 30, log: 'fits', mode: { state: 'run', since: 5 } });
    const refused = await eventually(async () => {
      const shadow = await shadowStatus();
      return shadow.refusedChanges.length > 0 && shadow;
    }, 10_000, 100);
    expect(refused.refusedChanges).toEqual(['reported.log']);
    const setAside = gateway.logs.filter((line: any) => line.msg?.startsWith('the cloud refused these changes of the device for good'));
    expect(setAside.at(-1).keys).toEqual(['reported.log']);
    // the whole update, refused; then halves of it, down to the log alone (a bounded number of updates)
    const attempts = sent.slice(before).map((request) => request.state);
    expect(attempts[0]).toEqual({ reported: { temp: 30, log, mode: { state: 'run', since: 5 } } });
    expect(attempts.length).toBeLessThanOrEqual(8);

    // the refused log waits for the device's next value of it, which goes once it fits
    await update(gateway.mqttUrl, { reported: { log: 'fits again' } });
    await eventually(async () => (await shadowStatus()).refusedChanges.length === 0, 10_000, 100);
    await eventually(async () => (await get(cloudUrl()))?.reported?.log === 'fits again', 10_000, 100);
    expect(await get(gateway.mqttUrl)).toEqual(await get(cloudUrl()));
  }, 60_000);

  it('still sends the device\'s changes up when the device\'s shadow refuses the cloud\'s', async () => {
    // a gateway whose shadows take 1 KiB only
    const VALVE = '$aws/things/valve/shadow';
    const small = await TestDaemon.start({
      config: {
        mqtt: SHADOW_TOPICS,
        shadows: { maxDocumentBytes: 1024 },
        cloud: { mqtt: { url: cloudUrl(), clientId: 'gw-small', reconnectMinMs: 100, reconnectMaxMs: 300 } },
        sync: { shadows: [{ thing: 'valve' }] },
      },
    });
    try {
      await update(small.mqttUrl, { reported: { open: false } }, VALVE);
      await eventually(async () => (await get(cloudUrl(), VALVE))?.reported?.open === false, 10_000, 100);
      const program = 'p'.repeat(2000);
      // with a key the device's shadow takes: that one reaches the device
      await update(cloudUrl(), { desired: { program, mode: 'auto' } }, VALVE);
      expect(await eventually(() => loggedRefusal(small, 'local'), 10_000, 100))
        .toMatch(/^the local shadow refused the update: 413 The payload exceeds the maximum size allowed/);
      await eventually(async () => (await get(small.mqttUrl, VALVE))?.desired?.mode === 'auto', 10_000, 100);

      await update(small.mqttUrl, { reported: { open: true } }, VALVE);
      await eventually(async () => (await get(cloudUrl(), VALVE))?.reported?.open === true, 10_000, 100);
      // the cloud's change is still the cloud's: set aside for the device, not taken back
      expect((await get(cloudUrl(), VALVE))?.desired).toEqual({ program, mode: 'auto' });
      expect(await get(small.mqttUrl, VALVE)).toEqual({ desired: { mode: 'auto' }, reported: { open: true }, delta: { mode: 'auto' } });
      expect(await shadowStatus(small)).toMatchObject({ refusedByDevice: ['desired.program'] });

      await update(cloudUrl(), { desired: { program: 'short' } }, VALVE);
      await eventually(async () => (await get(small.mqttUrl, VALVE))?.desired?.program === 'short', 10_000, 100);
      await eventually(async () => (await shadowStatus(small)).lastError === null, 10_000, 100);
      expect(await get(small.mqttUrl, VALVE)).toEqual(await get(cloudUrl(), VALVE));
    } finally {
      await small.cleanup();
    }
  }, 60_000);

  it('leaves a cloud change the device refused out of the device\'s later updates until the cloud changes it, across a kill -9', async () => {
    const TANK = '$aws/things/tank/shadow';
    // a gateway whose shadows take 1 KiB only
    const config = {
      mqtt: SHADOW_TOPICS,
      shadows: { maxDocumentBytes: 1024 },
      cloud: { mqtt: { url: cloudUrl(), clientId: 'gw-tank', reconnectMinMs: 100, reconnectMaxMs: 300 } },
      sync: { shadows: [{ thing: 'tank' }] },
    };
    let small = await TestDaemon.start({ config });
    const setAsideLogs = () => small.logs.filter((line: any) => line.msg?.startsWith("the device's shadow refused these changes of the cloud for good"));
    try {
      await update(small.mqttUrl, { reported: { level: 1 } }, TANK);
      await eventually(async () => (await get(cloudUrl(), TANK))?.reported?.level === 1, 10_000, 100);
      const program = 'p'.repeat(2000);
      await update(cloudUrl(), { desired: { program } }, TANK);
      expect(await eventually(() => loggedRefusal(small, 'local'), 10_000, 100)).toMatch(/^the local shadow refused the update: 413 /);

      // The operator's next change reaches the device alone: the refused program does not ride along (and get it refused too).
      await update(cloudUrl(), { desired: { speed: 3 } }, TANK);
      await eventually(async () => (await get(small.mqttUrl, TANK))?.desired?.speed === 3, 10_000, 100)
        .catch(async (error) => {
          throw new Error(`${error.message}: local ${JSON.stringify(await get(small.mqttUrl, TANK))}, last error ${(await shadowStatus(small)).lastError}`);
        });
      await eventually(async () => (await shadowStatus(small)).lastError === null, 10_000, 100);
      expect(await get(small.mqttUrl, TANK)).toEqual({ desired: { speed: 3 }, reported: { level: 1 }, delta: { speed: 3 } });
      // still the operator's in the cloud, not taken back
      expect((await get(cloudUrl(), TANK))?.desired).toEqual({ program, speed: 3 });
      expect(await shadowStatus(small)).toMatchObject({ refusedByDevice: ['desired.program'], refusedChanges: [] });
      expect((await outpost(small.socket, ['sync', 'status'])).stdout).toContain('not synced, refused by the device: desired.program');
      expect(setAsideLogs()).toHaveLength(1);
      expect(setAsideLogs()[0].keys).toEqual(['desired.program']);

      // What was set aside is on disk: after a kill -9 the full sync on connect leaves it aside too.
      await small.kill();
      small = await TestDaemon.start({ dataDir: small.dataDir, config });
      await eventually(async () => (await shadowStatus(small)).lastSync !== null, 10_000, 100);
      expect(await shadowStatus(small)).toMatchObject({ lastError: null, refusedByDevice: ['desired.program'] });
      await update(cloudUrl(), { desired: { speed: 4 } }, TANK);
      await eventually(async () => (await get(small.mqttUrl, TANK))?.desired?.speed === 4, 10_000, 100);
      expect((await get(small.mqttUrl, TANK))?.desired).toEqual({ speed: 4 });
      expect(setAsideLogs()).toHaveLength(0);

      // A new value of the refused key is a change again, and reaches the device once it fits.
      await update(cloudUrl(), { desired: { program: 'short' } }, TANK);
      await eventually(async () => (await get(small.mqttUrl, TANK))?.desired?.program === 'short', 10_000, 100);
      await eventually(async () => (await shadowStatus(small)).refusedByDevice.length === 0, 10_000, 100);
      expect(await get(small.mqttUrl, TANK)).toEqual(await get(cloudUrl(), TANK));
      expect((await shadowStatus(small)).lastError).toBeNull();
    } finally {
      await small.cleanup();
    }
  }, 60_000);
});
