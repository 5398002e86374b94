import { connect } from 'node:net';
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
  if (event.bucket) {
    const { S3Client, PutObjectCommand, ListObjectsV2Command } = require(process.env.S3_SDK);
    const s3 = new S3Client({});
    await s3.send(new PutObjectCommand({ Bucket: event.bucket, Key: 'from-function.txt', Body: 'written by a function' }));
    return { keys: (await s3.send(new ListObjectsV2Command({ Bucket: event.bucket }))).Contents.map((object) => object.Key) };
  }
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
    'template.yaml': template('SdkUser', { Handler: 'index.handler', Timeout: 10, Environment: { Variables: {
      SDK: join(ROOT, 'node_modules', '@aws-sdk', 'client-iot-data-plane'), S3_SDK: join(ROOT, 'node_modules', '@aws-sdk', 'client-s3') } } }),
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

  it('stores objects with an S3 client signing for the functions\' region (local), which the S3 API takes beside s3.region', async () => {
    expect(await outpost(daemon.socket, ['buckets', 'create', 'from-functions'])).toMatchObject({ code: 0 });
    const { result } = await invoke(daemon.socket, 'SdkUser', { bucket: 'from-functions' });
    expect(result.functionError, JSON.stringify(result.payload)).toBeUndefined();
    expect(result.payload).toEqual({ keys: ['from-function.txt'] });
    expect((await outpost(daemon.socket, ['objects', 'get', 'from-functions/from-function.txt', '-'])).stdout).toBe('written by a function');
  });

  it('refuses bad Publish requests with InvalidRequestException and publishes nothing', async () => {
    const post = (path: string, body = 'x') => fetch(`http://127.0.0.1:${httpPort}${path}`, { method: 'POST', body });
    for (const [path, message] of [
      ['/topics/a%2F%2B', 'expected a topic without + or # wildcards'],
      // as over MQTT (a libmosquitto subscriber drops the connection a control character arrives on)
      ['/topics/a%2Fb%01c?retain=true', 'Invalid topic name: "a/b\\u0001c": expected a topic without control characters or non-characters'],
      ['/topics/a%00b', 'expected a topic without control characters'],
      ['/topics/a?qos=2', 'Invalid qos: "2": expected 0 or 1'],
      ['/topics/a?retain=maybe', 'Invalid retain: "maybe": expected true or false'],
    ]) {
      const refused = await post(path);
      expect(refused.status, path).toBe(400);
      expect(refused.headers.get('x-amzn-errortype'), path).toBe('InvalidRequestException');
      expect((await refused.json()).message, path).toContain(message);
    }
    // a path that does not decode is a malformed topic, not a missing endpoint
    const undecodable = await post('/topics/a%C3%28');
    expect([undecodable.status, (await undecodable.json()).message]).toEqual([400, 'Bad Request: the request path is not valid percent-encoding (UTF-8): /topics/a%C3%28']);
    const tooLarge = await post('/topics/a', 'x'.repeat(128 * 1024 + 1));
    expect(tooLarge.status).toBe(413);
  });

  it('asks for a body (100 Continue) only when it reads it: a request refused before is refused before its body is sent', async () => {
    /**
     * One request over its own connection, its body sent only after a 100 Continue (or at once
     * without `Expect`): what came back by the time the server closed the connection, and whether the body went.
     */
    const exchange = (path: string, body: Buffer, headers: Record<string, string>) => new Promise<{ response: string; bodySent: boolean }>((resolve, reject) => {
      const socket = connect(httpPort, '127.0.0.1');
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to ${path} within 10 s`)); }, 10_000);
      let response = '';
      let bodySent = false;
      const sendBody = () => { bodySent = true; socket.write(body); };
      socket.on('data', (chunk) => {
        response += chunk;
        if (!bodySent && response.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) sendBody();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => { clearTimeout(timer); resolve({ response, bodySent }); });
      const head = Object.entries({ host: `127.0.0.1:${httpPort}`, 'content-length': String(body.length), ...headers }).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
      if (!('expect' in headers)) sendBody();
    });
    const invocations = '/2015-03-31/functions/SdkUser/invocations';
    const expecting = { expect: '100-continue' };

    const allowed = await exchange(invocations, Buffer.from('{"envOnly":true}'), { ...expecting, connection: 'close' });
    expect(allowed.bodySent).toBe(true);
    expect(allowed.response).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    expect(allowed.response).toContain('"hasSecret":true');
    const published = await exchange('/topics/continued', Buffer.from('hello'), { ...expecting, connection: 'close' });
    expect(published.response).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);

    // refused without a 100: the client never sends the body, and the server closes the connection
    const overLimit = Buffer.alloc(6 * 1024 * 1024 + 1, 'x');
    const tooLarge = await exchange(invocations, overLimit, expecting);
    expect(tooLarge.bodySent).toBe(false);
    expect(tooLarge.response).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(tooLarge.response.toLowerCase()).toContain('x-amzn-errortype: requestentitytoolargeexception');
    expect(tooLarge.response.toLowerCase()).toContain('connection: close');
    // an Event over its own limit (1 MiB), within the synchronous one, likewise
    const largeEvent = await exchange(invocations, Buffer.alloc(1100000, 'x'), { ...expecting, 'x-amz-invocation-type': 'Event' });
    expect(largeEvent.bodySent).toBe(false);
    expect(largeEvent.response).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(largeEvent.response).toContain('1100000 byte payload is too large for the Event invocation type (limit 1048576 bytes)');
    for (const [path, status] of [['/nowhere', '404 Not Found'], ['/topics/a%2F%2B', '400 Bad Request']]) {
      const refused = await exchange(path, Buffer.from('x'), expecting);
      expect(refused.bodySent, path).toBe(false);
      expect(refused.response, path).toMatch(new RegExp(`^HTTP/1\\.1 ${status}\\r\\n`));
    }
    // without Expect, a body announced over the limit is refused as it arrives, not read first
    const announced = await new Promise<string>((resolve, reject) => {
      const socket = connect(httpPort, '127.0.0.1');
      const timer = setTimeout(() => { socket.destroy(); reject(new Error('no 413 within 10 s')); }, 10_000);
      let response = '';
      socket.on('data', (chunk) => {
        response += chunk;
        if (response.includes('\r\n\r\n')) { clearTimeout(timer); socket.destroy(); resolve(response); }
      });
      socket.on('error', () => undefined);
      socket.write(`POST ${invocations} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${1024 * 1024 * 1024}\r\n\r\n{`);
    });
    expect(announced).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
  });
});
