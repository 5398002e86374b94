import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestDaemon } from './helpers/daemon.js';
import { collectMessages, connectClient, outpost } from './helpers/mqtt.js';
import { invoke, template, writePackage } from './helpers/functions.js';


// An unmodified SDK v3 client: no endpoint, region or credentials in the code, all from the environment.
const HANDLER = `
const { IoTDataPlaneClient, PublishCommand, UpdateThingShadowCommand } = require(process.env.SDK);
const client = new IoTDataPlaneClient({});
exports.handler = async (event) => {
  const env = {};
  for (const key of ['AWS_ENDPOINT_URL_IOT_DATA_PLANE', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_LAMBDA', 'AWS_ACCESS_KEY_ID', 'AWS_REGION']) env[key] = process.env[key];
  if (event.envOnly) return { env, hasSecret: typeof process.env.AWS_SECRET_ACCESS_KEY === 'string' };
  await client.send(new PublishCommand({ topic: 'fn/out/' + event.id, qos: 1, payload: Buffer.from(JSON.stringify({ from: 'function', id: event.id })) }));
  const updated = await client.send(new UpdateThingShadowCommand({ thingName: 'lamp', payload: Buffer.from(JSON.stringify({ state: { reported: { on: event.on } } })) }));
  return { shadowVersion: JSON.parse(Buffer.from(updated.payload).toString()).version };
};
`;

describe('functions: unmodified AWS SDK v3 clients reach the gateway', () => {
  let daemon: TestDaemon;
  let httpPort = 0;
  let s3Port = 0;
  const pkg = writePackage({
    'template.yaml': template('SdkUser', { Handler: 'index.handler', Timeout: 10, Environment: { Variables: { SDK: join(ROOT, 'node_modules', '@aws-sdk', 'client-iot-data-plane') } } }),
    'index.js': HANDLER,
  });

  beforeAll(async () => {
    // Ports 0: the functions learn the ports chosen. Unsigned requests below test Publish's own
    // checks; the function's signed ones are verified all the same.
    daemon = await TestDaemon.start({ config: { http: { port: 0, auth: 'none' }, s3: { port: 0 }, mqtt: { allowAnonymous: true, anonymousPolicy: { subscribe: ['#', '$aws/things/#'] } } } });
    [httpPort, s3Port] = [daemon.port('http'), daemon.port('s3')];
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('sets the endpoint variables and the functions service key', async () => {
    const { result } = await invoke(daemon.socket, 'SdkUser', { envOnly: true });
    expect(result.functionError, JSON.stringify(result.payload)).toBeUndefined();
    expect(result.payload.env).toEqual({
      AWS_ENDPOINT_URL_IOT_DATA_PLANE: `http://127.0.0.1:${httpPort}`,
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${httpPort}`,
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}`,
      AWS_ACCESS_KEY_ID: expect.stringMatching(/^AKIA[A-Z2-7]{16}$/),
      AWS_REGION: 'local',
    });
    expect(result.payload.hasSecret).toBe(true);
  });

  it('publishes with IoT Data Plane Publish and updates a shadow; an MQTT client sees both', async () => {
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'sdk-watcher' });
    try {
      const messages = collectMessages(watcher, 2, 10_000);
      await watcher.subscribeAsync(['fn/out/+', '$aws/things/lamp/shadow/update/accepted'], { qos: 1 });
      const { result } = await invoke(daemon.socket, 'SdkUser', { id: 7, on: true });
      expect(result.functionError, JSON.stringify(result.payload)).toBeUndefined();
      const got = await messages;
      const byTopic = Object.fromEntries(got.map((m) => [m.topic, JSON.parse(m.payload)]));
      expect(byTopic['fn/out/7']).toEqual({ from: 'function', id: 7 });
      expect(byTopic['$aws/things/lamp/shadow/update/accepted']).toMatchObject({ state: { reported: { on: true } }, version: result.payload.shadowVersion });
    } finally {
      watcher.end(true);
    }
  });

  it('refuses bad Publish requests with InvalidRequestException and publishes nothing', async () => {
    const post = (path: string, body = 'x') => fetch(`http://127.0.0.1:${httpPort}${path}`, { method: 'POST', body });
    for (const [path, message] of [
      ['/topics/a%2F%2B', 'expected a topic without + or # wildcards'],
      ['/topics/a?qos=2', 'Invalid qos: "2": expected 0 or 1'],
      ['/topics/a?retain=maybe', 'Invalid retain: "maybe": expected true or false'],
    ]) {
      const refused = await post(path);
      expect(refused.status, path).toBe(400);
      expect(refused.headers.get('x-amzn-errortype'), path).toBe('InvalidRequestException');
      expect((await refused.json()).message, path).toContain(message);
    }
    const tooLarge = await post('/topics/a', 'x'.repeat(128 * 1024 + 1));
    expect(tooLarge.status).toBe(413);
  });
});
