import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ShadowMqttClient } from './helpers/shadow.js';
import { CloudBroker } from './helpers/cloud.js';
import { CloudS3 } from './helpers/cloud-s3.js';
import { addKey, s3Client } from './helpers/objects.js';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';

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
  }, 60_000);

  // The cloud S3 is a second outpostd, whose keys have grants: a read-only one is refused writes
  // with 403 AccessDenied, as a bucket policy would; an unknown one with 403 InvalidAccessKeyId.
  it.each(['AccessDenied', 'InvalidAccessKeyId'])('keeps the uploads while cloud S3 answers %s, backing off beyond retryMaxMs, and sends them once the key is fixed', async (code) => {
    const cloudDaemon = await TestDaemon.start();
    cleanups.push(() => cloudDaemon.cleanup());
    const writer = await addKey(cloudDaemon);
    const cloudS3 = s3Client(cloudDaemon, { ...writer });
    cleanups.push(async () => cloudS3.destroy());
    await cloudS3.send(new CreateBucketCommand({ Bucket: 'cloud' }));
    const refusedKey = code === 'AccessDenied' ? await addKey(cloudDaemon, ['--read', 'cloud']) : { accessKeyId: 'AKIAOUTPOSTUNKNOWN01', secretAccessKey: 'not-a-key-the-cloud-knows' };
    const proxy = await CloudS3.inFrontOf(cloudDaemon.port('s3'));
    cleanups.push(() => proxy.destroy());
    await proxy.up();

    const retryMaxMs = 300;
    const config = (credentials: { accessKeyId: string; secretAccessKey: string }) => ({
      cloud: { s3: { endpoint: proxy.endpoint, bucket: 'cloud', forcePathStyle: true, ...credentials, retryMinMs: 100, retryMaxMs, refusedRetryMaxMs: 3000 } },
      sync: { objects: [{ name: 'cams', from: 'cams', to: 'cloud/gw/' }] },
    });
    let gateway = await TestDaemon.start({ config: config(refusedKey) });
    cleanups.push(() => gateway.cleanup());
    const local = s3Client(gateway, await addKey(gateway));
    cleanups.push(async () => local.destroy());
    await local.send(new CreateBucketCommand({ Bucket: 'cams' }));
    for (const key of ['a.jpg', 'b.jpg', 'c.jpg']) await local.send(new PutObjectCommand({ Bucket: 'cams', Key: key, Body: `image ${key}` }));

    // AccessDenied, a policy's answer, may deny one prefix only: the rule's uploads are refused, not
    // the gateway's (the cloud answered and took the key); an unknown key refuses the gateway
    const ofTheRule = code === 'AccessDenied';
    const refused = await eventually(async () => {
      const now = await status(gateway);
      const next = ofTheRule ? now.uploads.refusedRules[0]?.nextAttempt : now.uploads.refused && now.uploads.nextAttempt;
      return next && Date.parse(next) - Date.now() > retryMaxMs && now;
    }, 20_000, 100);
    expect(refused.uploads).toMatchObject({ online: ofTheRule, uploaded: 0 });
    expect(ofTheRule ? refused.uploads.refusedRules[0].reason : refused.uploads.lastError).toMatch(new RegExp(`^${code}: `));
    expect(refused.rules.find((rule: any) => rule.rule === 'cams')).toMatchObject({ backlog: 3, deadLettered: 0 });
    expect(refused.deadLetters).toBe(0);
    // read while a wait is due (not during the attempt between two waits, which has no next attempt yet)
    const said = ofTheRule ? new RegExp(`cloud S3  reachable since .*; refuses rule cams's uploads since \\S+ \\(${code}: .*; next attempt \\S+\\)`)
      : new RegExp(`cloud S3  refuses the uploads since \\S+ \\(${code}: .*; next attempt \\S+\\)`);
    await eventually(async () => said.test((await outpost(gateway.socket, ['sync', 'status'])).stdout), 10_000, 100);

    // the operator gives the gateway a key the cloud takes
    await gateway.stop();
    gateway = await TestDaemon.start({ dataDir: gateway.dataDir, config: config(writer) });
    await eventually(async () => (await status(gateway)).rules.find((rule: any) => rule.rule === 'cams')?.backlog === 0, 20_000, 200);
    const listing = await cloudS3.send(new ListObjectsV2Command({ Bucket: 'cloud' }));
    expect((listing.Contents ?? []).map((object) => object.Key).sort()).toEqual(['gw/a.jpg', 'gw/b.jpg', 'gw/c.jpg']);
    expect((await status(gateway)).deadLetters).toBe(0);
  }, 60_000);

  // The cloud's shadow service is played by a client on a real Mosquitto, as a policy that denies
  // iot:GetThingShadow would answer: /get/rejected with 403, until the operator allows it.
  it('waits longer and longer while the cloud refuses a shadow get (403), without a get per device change, and syncs once allowed', async () => {
    const cloud = await CloudBroker.create();
    cleanups.push(() => cloud.destroy());
    await cloud.start();
    const topic = '$aws/things/pump/shadow';
    let refusing = true;
    let gets = 0;
    const cloudShadow = { state: { desired: { speed: 3 } as Record<string, unknown>, reported: {} as Record<string, unknown> }, version: 1 };
    const service = await connectClient(cloud.url, { clientId: 'cloud-shadow-service' });
    cleanups.push(() => service.endAsync(true));
    await service.subscribeAsync([`${topic}/get`, `${topic}/update`], { qos: 1 });
    service.on('message', (requestTopic, payload) => {
      const request = JSON.parse(payload.toString());
      const answer = (outcome: string, body: object) => void service.publishAsync(`${requestTopic}/${outcome}`, JSON.stringify({ ...body, clientToken: request.clientToken, timestamp: Math.floor(Date.now() / 1000) }), { qos: 1 });
      if (requestTopic.endsWith('/get')) {
        gets++;
        if (refusing) return answer('rejected', { code: 403, message: 'Forbidden' });
        const { desired, reported } = cloudShadow.state;
        return answer('accepted', { state: { desired, ...(Object.keys(reported).length > 0 ? { reported } : {}) }, version: cloudShadow.version });
      }
      Object.assign(cloudShadow.state.reported, request.state?.reported ?? {});
      answer('accepted', { state: request.state, version: ++cloudShadow.version });
    });

    const shadowTopics = { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } };
    const gateway = await TestDaemon.start({
      config: {
        mqtt: shadowTopics,
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-shadow-refused', reconnectMinMs: 100, reconnectMaxMs: 300, refusedRetryMaxMs: 12_000 } },
        sync: { shadows: [{ thing: 'pump' }] },
      },
    });
    cleanups.push(() => gateway.cleanup());
    const shadowStatus = async () => (await status(gateway)).shadows[0];

    // a sync failing for a cloud that does not answer is tried again 5 s later; refused, later than that
    const refused = await eventually(async () => {
      const shadow = await shadowStatus();
      return shadow.nextAttempt !== null && Date.parse(shadow.nextAttempt) - Date.now() > 5500 && shadow;
    }, 40_000, 100);
    expect(refused.lastError).toBe('the cloud shadow refused the get: 403 Forbidden');

    // the device reports meanwhile: its changes wait for the retry, which reads both sides anyway
    const device = await ShadowMqttClient.connect(gateway.mqttUrl, { clientId: 'pump' }, [`${topic}/update/+`, `${topic}/get/+`]);
    cleanups.push(async () => device.end());
    const getsBefore = gets;
    for (let temp = 1; temp <= 10; temp++) {
      expect((await device.request(`${topic}/update`, { state: { reported: { temp } } })).outcome).toBe('accepted');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // the retries that fell due meanwhile (at least 5 s apart), not one per report
    expect(gets - getsBefore).toBeLessThanOrEqual(2);

    // the operator allows the gets: the next attempt syncs both ways
    refusing = false;
    const synced = await eventually(async () => {
      const shadow = await shadowStatus();
      return shadow.lastError === null && shadow.lastSync !== null && shadow;
    }, 30_000, 200);
    expect(synced.nextAttempt).toBeNull();
    await eventually(() => cloudShadow.state.reported.temp === 10, 10_000);
    const local = await device.request(`${topic}/get`);
    expect(local.body.state.desired).toEqual({ speed: 3 });
  }, 90_000);
});
