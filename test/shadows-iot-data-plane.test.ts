import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeleteThingShadowCommand, GetThingShadowCommand, IoTDataPlaneClient, ListNamedShadowsForThingCommand,
  ResourceNotFoundException, UpdateThingShadowCommand, ConflictException, ForbiddenException, UnauthorizedException, PublishCommand,
} from '@aws-sdk/client-iot-data-plane';
import { SignatureV4 } from '@smithy/signature-v4';
import { TestDaemon } from './helpers/daemon.js';
import { addThing, adminRequest, connectClient, messagesWithin, outpost } from './helpers/mqtt.js';
import { Sha256 } from './helpers/sigv4.js';

const json = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8'));
const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('the AWS SDK v3 IoT Data Plane client against the HTTP routes', () => {
  let daemon: TestDaemon;
  let client: IoTDataPlaneClient;
  const clients: IoTDataPlaneClient[] = [];
  const clientFor = (credentials: { accessKeyId: string; secretAccessKey: string }) => {
    const created = new IoTDataPlaneClient({ endpoint: `http://127.0.0.1:${daemon.port('http')}`, region: 'us-east-1', credentials, maxAttempts: 1 });
    clients.push(created);
    return created;
  };
  const keyFor = async (args: string[]) => JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', ...args, '--json'])).stdout);

  beforeAll(async () => {
    // With a configuration file (even an empty one) the data plane requires SigV4: http.auth defaults to sigv4.
    daemon = await TestDaemon.start({ config: {} });
    // An operator console: a thing whose policy covers every thing's shadows.
    await addThing(daemon.socket, 'console', 'pw', { publish: ['$aws/things/#'] });
    client = clientFor(await keyFor(['--thing', 'console']));
  });

  afterAll(async () => {
    for (const created of clients) created.destroy();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  // AWS documents https://IoT_data_endpoint/topics/url_encoded_topic_name?qos=1; the SDKs send sensors%2Ftemp,
  // programs that build the URL themselves (curl, requests) often sensors/temp
  it('publishes on a topic whose levels come as path segments, as on one URL-encoded, under the signing thing\'s policy', async () => {
    await addThing(daemon.socket, 'meter', 'pw');
    const key = await keyFor(['--thing', 'meter']);
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'meter-watch', username: 'meter', password: 'pw' });
    await watcher.subscribeAsync(['things/meter/#'], { qos: 1 });
    const signer = new SignatureV4({ credentials: key, region: 'us-east-1', service: 'iotdata', sha256: Sha256, uriEscapePath: true });
    const publish = async (path: string) => {
      const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: daemon.port('http'), path, query: { qos: '1' },
        headers: { host: `127.0.0.1:${daemon.port('http')}`, 'content-length': '2' }, body: 'on' });
      return (await fetch(`http://127.0.0.1:${daemon.port('http')}${path}?qos=1`, { method: 'POST', headers: signed.headers, body: 'on' })).status;
    };
    const arriving = messagesWithin(watcher, 1500);
    expect(await publish('/topics/things/meter/relay')).toBe(200);
    expect(await publish('/topics/things%2Fmeter%2Frelay%202')).toBe(200);
    // an empty level is a level: things/meter//x is not things/meter/x
    expect(await publish('/topics/things/meter//x')).toBe(200);
    expect(await publish('/topics/things/valve/relay')).toBe(403);
    expect(await arriving).toEqual(['things/meter/relay', 'things/meter/relay 2', 'things/meter//x']);
    watcher.end(true);
  });

  it('updates, gets and deletes a classic shadow', async () => {
    const updated = await client.send(new UpdateThingShadowCommand({ thingName: 'pump', payload: body({ state: { desired: { rpm: 1200 } }, clientToken: 'u1' }) }));
    expect(json(updated.payload)).toMatchObject({ state: { desired: { rpm: 1200 } }, version: 1, clientToken: 'u1' });

    const got = await client.send(new GetThingShadowCommand({ thingName: 'pump' }));
    expect(json(got.payload)).toMatchObject({ state: { desired: { rpm: 1200 }, delta: { rpm: 1200 } }, version: 1 });

    const conflict = client.send(new UpdateThingShadowCommand({ thingName: 'pump', payload: body({ state: { reported: { rpm: 1 } }, version: 7 }) }));
    await expect(conflict).rejects.toBeInstanceOf(ConflictException);
    await expect(conflict).rejects.toMatchObject({ message: 'Version conflict' });

    const deleted = await client.send(new DeleteThingShadowCommand({ thingName: 'pump' }));
    expect(json(deleted.payload)).toMatchObject({ version: 1 });
    await expect(client.send(new GetThingShadowCommand({ thingName: 'pump' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('works on named shadows and lists them page by page', async () => {
    for (const shadowName of ['alpha', 'beta', 'gamma']) {
      await client.send(new UpdateThingShadowCommand({ thingName: 'valve', shadowName, payload: body({ state: { reported: { open: shadowName === 'beta' } } }) }));
    }
    const beta = await client.send(new GetThingShadowCommand({ thingName: 'valve', shadowName: 'beta' }));
    expect(json(beta.payload)).toMatchObject({ state: { reported: { open: true } }, version: 1 });

    const first = await client.send(new ListNamedShadowsForThingCommand({ thingName: 'valve', pageSize: 2 }));
    expect(first.results).toEqual(['alpha', 'beta']);
    expect(first.nextToken).toBeTypeOf('string');
    const second = await client.send(new ListNamedShadowsForThingCommand({ thingName: 'valve', pageSize: 2, nextToken: first.nextToken }));
    expect(second.results).toEqual(['gamma']);
    expect(second.nextToken).toBeUndefined();

    await client.send(new DeleteThingShadowCommand({ thingName: 'valve', shadowName: 'alpha' }));
    expect((await client.send(new ListNamedShadowsForThingCommand({ thingName: 'valve' }))).results).toEqual(['beta', 'gamma']);
  });

  it("signs and serves a shadow name with '$' (AWS: [$a-zA-Z0-9:_-]+), such as the reserved $package", async () => {
    const updated = await client.send(new UpdateThingShadowCommand({ thingName: 'valve', shadowName: '$package', payload: body({ state: { reported: { agent: '1.2' } } }) }));
    expect(json(updated.payload)).toMatchObject({ version: 1 });
    expect(json((await client.send(new GetThingShadowCommand({ thingName: 'valve', shadowName: '$package' }))).payload)).toMatchObject({ state: { reported: { agent: '1.2' } } });
    const first = await client.send(new ListNamedShadowsForThingCommand({ thingName: 'valve', pageSize: 1 }));
    expect(first.results).toEqual(['$package']);
    expect((await client.send(new ListNamedShadowsForThingCommand({ thingName: 'valve', pageSize: 1, nextToken: first.nextToken }))).results).toEqual(['beta']);
    await client.send(new DeleteThingShadowCommand({ thingName: 'valve', shadowName: '$package' }));
  });

  it("refuses unsigned requests and bad signatures with 401, and with 403 what the signing thing's policy does not allow", async () => {
    const unsigned = await fetch(`http://127.0.0.1:${daemon.port('http')}/things/pump/shadow`);
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    expect(await unsigned.json()).toEqual({ code: 401, message: 'Unauthorized', timestamp: expect.any(Number) });

    const console = await keyFor(['--thing', 'console']);
    const wrongSecret = clientFor({ accessKeyId: console.accessKeyId, secretAccessKey: 'x'.repeat(40) });
    await expect(wrongSecret.send(new GetThingShadowCommand({ thingName: 'pump' }))).rejects.toBeInstanceOf(UnauthorizedException);
    const unknownKey = clientFor({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: console.secretAccessKey });
    await expect(unknownKey.send(new GetThingShadowCommand({ thingName: 'pump' }))).rejects.toBeInstanceOf(UnauthorizedException);

    // The default policy: a thing touches only its own shadows.
    await addThing(daemon.socket, 'pump-7', 'pw');
    const pump7 = clientFor(await keyFor(['--thing', 'pump-7']));
    const own = await pump7.send(new UpdateThingShadowCommand({ thingName: 'pump-7', payload: body({ state: { reported: { rpm: 900 } } }) }));
    expect(json(own.payload)).toMatchObject({ version: 1 });
    const other = pump7.send(new UpdateThingShadowCommand({ thingName: 'valve', shadowName: 'beta', payload: body({ state: { reported: { open: false } } }) }));
    await expect(other).rejects.toBeInstanceOf(ForbiddenException);
    await expect(pump7.send(new ListNamedShadowsForThingCommand({ thingName: 'valve' }))).rejects.toBeInstanceOf(ForbiddenException);
    await pump7.send(new PublishCommand({ topic: 'things/pump-7/status', payload: Buffer.from('up') }));
    await expect(pump7.send(new PublishCommand({ topic: 'things/valve/status', payload: Buffer.from('up') }))).rejects.toBeInstanceOf(ForbiddenException);
    await expect(pump7.send(new PublishCommand({ topic: '$outpost/dlq/x', payload: Buffer.from('up') }))).rejects.toBeInstanceOf(ForbiddenException);
    // Nothing changed.
    expect(json((await client.send(new GetThingShadowCommand({ thingName: 'valve', shadowName: 'beta' }))).payload)).toMatchObject({ version: 1 });

    // The daemon's own keys (here the CLI's; functions get another) publish anywhere but on the daemon's own topics.
    const cliKey = JSON.parse((await adminRequest(daemon.socket, 'GET', '/v1/s3/endpoint'))!.body);
    const cli = clientFor(cliKey);
    await cli.send(new PublishCommand({ topic: 'things/valve/status', payload: Buffer.from('up') }));
    for (const topic of ['$aws/things/valve/shadow/update/delta', '$aws/things/valve/shadow/name/beta/update/accepted', '$outpost/dlq/x', '$SYS/broker/version']) {
      await expect(cli.send(new PublishCommand({ topic, payload: Buffer.from('{"state":{"open":true}}') })), topic).rejects.toBeInstanceOf(ForbiddenException);
    }

    // A key for buckets only has no business on the data plane.
    const bucketsOnly = clientFor(await keyFor(['--read', '*']));
    await expect(bucketsOnly.send(new GetThingShadowCommand({ thingName: 'pump-7' }))).rejects.toBeInstanceOf(ForbiddenException);
  });
});
