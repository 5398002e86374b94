import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeleteThingShadowCommand, GetThingShadowCommand, IoTDataPlaneClient, ListNamedShadowsForThingCommand,
  ResourceNotFoundException, UpdateThingShadowCommand, ConflictException,
} from '@aws-sdk/client-iot-data-plane';
import { TestDaemon } from './helpers/daemon.js';

const json = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8'));
const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('the AWS SDK v3 IoT Data Plane client against the HTTP routes', () => {
  let daemon: TestDaemon;
  let client: IoTDataPlaneClient;

  beforeAll(async () => {
    daemon = await TestDaemon.start();
    client = new IoTDataPlaneClient({
      endpoint: `http://127.0.0.1:${daemon.port('http')}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' },
    });
  });

  afterAll(async () => {
    client?.destroy();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('updates, gets and deletes a classic shadow', async () => {
    const updated = await client.send(new UpdateThingShadowCommand({ thingName: 'pump', payload: body({ state: { desired: { rpm: 1200 } }, clientToken: 'u1' }) }));
    expect(json(updated.payload)).toMatchObject({ state: { desired: { rpm: 1200 } }, version: 1, clientToken: 'u1' });

    const got = await client.send(new GetThingShadowCommand({ thingName: 'pump' }));
    expect(json(got.payload)).toMatchObject({ state: { desired: { rpm: 1200 }, delta: { rpm: 1200 } }, version: 1 });

    const conflict = client.send(new UpdateThingShadowCommand({ thingName: 'pump', payload: body({ state: { reported: { rpm: 1 } }, version: 7 }) }));
    await expect(conflict).rejects.toBeInstanceOf(ConflictException);

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
});
