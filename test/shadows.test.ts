import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { addThing, connectClient, messagesWithin, outpost, subscribeGranted } from './helpers/mqtt.js';
import { http, ShadowMqttClient } from './helpers/shadow.js';

const classic = (thing: string) => `$aws/things/${thing}/shadow`;
const named = (thing: string, name: string) => `$aws/things/${thing}/shadow/name/${name}`;

describe('shadows over MQTT, HTTP and the CLI', () => {
  let daemon: TestDaemon;
  let httpPort: number;
  const clients: ShadowMqttClient[] = [];
  const connectThing = async (thing: string, clientId: string, subscriptions: string[]) => {
    const client = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId, username: thing, password: 'pw' }, subscriptions);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    // Unsigned HTTP requests here: the data plane's SigV4 is tested with the AWS SDK in shadows-iot-data-plane.test.ts.
    daemon = await TestDaemon.start({ config: { shadows: { maxInFlightPerClient: 3 }, http: { auth: 'none' } } });
    httpPort = daemon.port('http');
    for (const thing of ['lamp', 'fan', 'hostile', 'crowd']) await addThing(daemon.socket, thing, 'pw');
  });

  afterAll(async () => {
    for (const client of clients) client.end();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('answers get, update and delete of a classic shadow on /accepted, echoing the clientToken', async () => {
    const lamp = await connectThing('lamp', 'lamp', [`${classic('lamp')}/#`]);
    const missing = await lamp.request(`${classic('lamp')}/get`, { clientToken: 'first-get' });
    expect(missing).toMatchObject({ topic: `${classic('lamp')}/get/rejected`, body: { code: 404, message: "No shadow exists with name: 'lamp'", clientToken: 'first-get' } });

    const updated = await lamp.request(`${classic('lamp')}/update`, { state: { reported: { color: 'red', on: false } } });
    expect(updated.topic).toBe(`${classic('lamp')}/update/accepted`);
    expect(updated.body).toMatchObject({ state: { reported: { color: 'red', on: false } }, version: 1 });
    expect(updated.body.metadata.reported.color.timestamp).toBeTypeOf('number');

    const got = await lamp.request(`${classic('lamp')}/get`, { clientToken: 'g1' });
    expect(got.body).toMatchObject({ state: { reported: { color: 'red', on: false } }, version: 1, clientToken: 'g1' });

    const deleted = await lamp.request(`${classic('lamp')}/delete`, { clientToken: 'd1' });
    expect(deleted).toMatchObject({ topic: `${classic('lamp')}/delete/accepted`, body: { version: 1, clientToken: 'd1' } });
    expect((await lamp.request(`${classic('lamp')}/get`)).body.code).toBe(404);
    expect((await lamp.request(`${classic('lamp')}/delete`)).body).toMatchObject({ code: 404 });
  });

  it('continues the version of a deleted shadow when it is re-created', async () => {
    const fan = await connectThing('fan', 'fan', [`${classic('fan')}/#`]);
    for (let i = 1; i <= 3; i++) expect((await fan.request(`${classic('fan')}/update`, { state: { reported: { speed: i } } })).body.version).toBe(i);
    await fan.request(`${classic('fan')}/delete`);
    const recreated = await fan.request(`${classic('fan')}/update`, { state: { reported: { speed: 0 } } });
    expect(recreated.body.version).toBe(4);
    expect((await fan.request(`${classic('fan')}/get`)).body.state).toEqual({ reported: { speed: 0 } });
  });

  it('publishes /update/delta and /update/documents after an accepted update', async () => {
    const lamp = await connectThing('lamp', 'lamp-delta', [`${named('lamp', 'config')}/#`]);
    await lamp.request(`${named('lamp', 'config')}/update`, { state: { reported: { mode: 'eco', level: 1 } } });
    // the update created the shadow: previous is null (AWS IoT's message has the key)
    expect(await lamp.nextEvent(`${named('lamp', 'config')}/update/documents`)).toEqual(expect.objectContaining({ previous: null, current: expect.objectContaining({ version: 1 }) }));
    const accepted = await lamp.request(`${named('lamp', 'config')}/update`, { state: { desired: { mode: 'boost', level: 1 } }, clientToken: 'dl' });
    expect(accepted.body.version).toBe(2);
    const delta = await lamp.nextEvent(`${named('lamp', 'config')}/update/delta`);
    expect(delta).toMatchObject({ state: { mode: 'boost' }, version: 2, clientToken: 'dl' });
    expect(delta.metadata.mode.timestamp).toBeTypeOf('number');
    const documents = await lamp.nextEvent(`${named('lamp', 'config')}/update/documents`);
    expect(documents).toMatchObject({
      previous: { state: { reported: { mode: 'eco', level: 1 } }, version: 1 },
      current: { state: { desired: { mode: 'boost', level: 1 }, reported: { mode: 'eco', level: 1 } }, version: 2 },
      clientToken: 'dl',
    });
    const got = await lamp.request(`${named('lamp', 'config')}/get`);
    expect(got.body.state.delta).toEqual({ mode: 'boost' });
  });

  it('answers "state": null as AWS IoT does: the state echoed null with one timestamp as its metadata, the shadow kept empty', async () => {
    const fan = await connectThing('fan', 'fan-wipe', [`${named('fan', 'wipe')}/#`]);
    await fan.request(`${named('fan', 'wipe')}/update`, { state: { desired: { a: 1 }, reported: { b: { c: [1, 2] } } } });
    const wiped = await fan.request(`${named('fan', 'wipe')}/update`, { state: null, clientToken: 'wipe' });
    expect(wiped).toMatchObject({ outcome: 'accepted' });
    expect(wiped.body).toEqual({ state: null, metadata: { timestamp: expect.any(Number) }, version: 2, timestamp: expect.any(Number), clientToken: 'wipe' });
    const overHttp = await http(httpPort, 'POST', '/things/fan/shadow?name=wipe', '{"state":null}');
    expect(overHttp.body).toEqual({ state: null, metadata: { timestamp: expect.any(Number) }, version: 3, timestamp: expect.any(Number) });
    expect((await fan.request(`${named('fan', 'wipe')}/get`)).body).toMatchObject({ state: {}, metadata: {}, version: 3 });
  });

  it('keeps objects as values below desired and reported, as AWS IoT does: {} is stored, an object emptied by deletions stays', async () => {
    const topic = named('fan', 'objects');
    const fan = await connectThing('fan', 'fan-objects', [`${topic}/update/accepted`, `${topic}/update/rejected`, `${topic}/get/accepted`]);
    const report = async (reported: Record<string, unknown>) => expect((await fan.request(`${topic}/update`, { state: { reported } })).outcome).toBe('accepted');
    await report({ a: 1, b: { c: 3 }, g: 5 });
    await report({ d: {} }); // AWS: {'a': 1, 'b': {'c': 3}, 'd': {}}
    await report({ b: {} }); // merges nothing into b
    await report({ b: { c: null } }); // b stays, empty
    await report({ a: {} }); // replaces the number
    await report({ g: { h: null }, e: { f: null } }); // deletes what is not there: changes nothing, creates nothing
    const got = (await fan.request(`${topic}/get`)).body;
    expect(got.state).toEqual({ reported: { a: {}, b: {}, g: 5, d: {} } });
    expect(got.metadata).toEqual({ reported: { a: {}, b: {}, g: { timestamp: expect.any(Number) }, d: {} } });
    expect(got.version).toBe(6);
    // Only a section emptied by deletions disappears.
    await report({ a: null, b: null, d: null, g: null });
    expect((await fan.request(`${topic}/get`)).body.state).toEqual({});
  });

  it('rejects a stale version with 409 "Version conflict" and changes nothing', async () => {
    const lamp = await connectThing('lamp', 'lamp-409', [`${named('lamp', 'v')}/#`]);
    await lamp.request(`${named('lamp', 'v')}/update`, { state: { reported: { a: 1 } } });
    const conflict = await lamp.request(`${named('lamp', 'v')}/update`, { state: { reported: { a: 2 } }, version: 5, clientToken: 'vc' });
    expect(conflict).toMatchObject({ topic: `${named('lamp', 'v')}/update/rejected`, body: { code: 409, message: 'Version conflict', clientToken: 'vc' } });
    expect((await lamp.request(`${named('lamp', 'v')}/update`, { state: { reported: { a: 3 } }, version: 1 })).body.version).toBe(2);
  });

  it('rejects more in-flight requests than maxInFlightPerClient from one connection with 429', async () => {
    const crowd = await connectThing('crowd', 'crowd', [`${classic('crowd')}/#`]);
    // Every request is answered under its own clientToken, a refused one too (AWS: the error document
    // carries the clientToken of a request sent as valid JSON), so none waits for an answer in vain.
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => crowd.request(`${classic('crowd')}/update`, { state: { reported: { i } }, clientToken: `crowd-${i}` }, 5000)));
    const refused = answers.filter((answer) => answer.outcome === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) expect(answer.body).toMatchObject({ code: 429, message: 'Too Many Requests', clientToken: expect.stringMatching(/^crowd-\d+$/) });
    const accepted = answers.filter((answer) => answer.outcome === 'accepted');
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    expect(accepted.length + refused.length).toBe(20);
    expect(crowd.events.filter((event) => event.topic.endsWith('/update/rejected'))).toEqual([]);
  });

  it('frees an in-flight slot with its answer: a client keeping exactly maxInFlightPerClient in flight gets no 429', async () => {
    const crowd = await connectThing('crowd', 'crowd-window', [`${classic('crowd')}/update/accepted`, `${classic('crowd')}/update/rejected`]);
    // Each of the 3 workers sends its next update as soon as it reads the previous one's answer.
    const worker = async () => {
      const outcomes: string[] = [];
      for (let i = 0; i < 30; i++) outcomes.push((await crowd.request(`${classic('crowd')}/update`, { state: { reported: { i } } })).outcome);
      return outcomes;
    };
    const outcomes = (await Promise.all([worker(), worker(), worker()])).flat();
    expect(outcomes.filter((outcome) => outcome !== 'accepted')).toEqual([]);
    expect(crowd.events.filter((event) => event.body?.code === 429)).toEqual([]);
  });

  it('applies the broker policy: a thing cannot touch or watch another thing\'s shadow', async () => {
    const lamp = await connectThing('lamp', 'lamp-own', [`${classic('lamp')}/#`]);
    await lamp.request(`${classic('lamp')}/update`, { state: { reported: { owner: 'lamp' } } });
    const fan = await connectThing('fan', 'fan-intruder', []);
    expect(await subscribeGranted(fan.client, [`${classic('lamp')}/update/accepted`])).toEqual([128]);
    const seen = messagesWithin(lamp.client, 500);
    await fan.client.publishAsync(`${classic('lamp')}/update`, JSON.stringify({ state: { reported: { owner: 'fan' } } }), { qos: 1 });
    expect(await seen).toEqual([]);
    expect((await lamp.request(`${classic('lamp')}/get`)).body.state.reported.owner).toBe('lamp');
  });

  it('drops what a client publishes on the service\'s answer topics, serves no empty shadow name, and deletes whatever the delete message holds', async () => {
    const owner = await connectThing('fan', 'fan-watcher', [`${classic('fan')}/#`, `${named('fan', '+')}/#`]);
    await owner.request(`${classic('fan')}/update`, { state: { desired: { speed: 1 } } });
    const forger = await connectThing('fan', 'fan-forger', []);
    const seen = messagesWithin(owner.client, 500);
    // AWS reserved topics: accepted, rejected, delta and documents are for subscribing only
    for (const answer of ['update/delta', 'update/accepted', 'get/accepted', 'delete/rejected', 'update/documents']) {
      await forger.client.publishAsync(`${classic('fan')}/${answer}`, JSON.stringify({ version: 1e15, state: { speed: 9 } }), { qos: 1 });
      await forger.client.publishAsync(`${named('fan', 'cfg')}/${answer}`, JSON.stringify({ state: {} }), { qos: 1 });
    }
    // `name//` names no shadow (not the classic one, which a policy granting `shadow/name/+/update` only must keep closed)
    await forger.client.publishAsync(`$aws/things/fan/shadow/name//update`, JSON.stringify({ state: { desired: { speed: 7 } } }), { qos: 1 });
    expect(new Set(await seen)).toEqual(new Set([`$aws/things/fan/shadow/name//update`]));
    expect((await owner.request(`${classic('fan')}/get`)).body.state.desired).toEqual({ speed: 1 });

    // AWS /delete: "The content of the message is ignored"; a clientToken that can be read is echoed
    await owner.client.publishAsync(`${classic('fan')}/delete`, 'not json', { qos: 1 });
    expect(await owner.nextEvent(`${classic('fan')}/delete/accepted`)).toMatchObject({ version: expect.any(Number) });
    await owner.request(`${classic('fan')}/update`, { state: { desired: { speed: 2 } } });
    expect(await owner.request(`${classic('fan')}/delete`, { clientToken: 'del', extra: [null] })).toMatchObject({ outcome: 'accepted', body: { clientToken: 'del' } });
  });

  it('rejects hostile input with the right error, changes nothing and keeps serving', async () => {
    const topic = classic('hostile');
    const hostile = await connectThing('hostile', 'hostile', [`${topic}/#`]);
    await hostile.request(`${topic}/update`, { state: { reported: { safe: true } } });
    const cases: Array<[string | Buffer, number, string]> = [
      [Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), 415, 'Unsupported documented encoding; supported encoding is UTF-8'],
      // AWS's own text for what the guide lists as "Invalid JSON" (an unquoted string, as a device sends by mistake)
      ['{"state":{"desired":{"Fan Speed":Auto}}}', 400, 'Payload contains invalid json'],
      ['{"state": {"reported": ', 400, 'Payload contains invalid json'],
      [`{"state":{"reported":${'{"a":'.repeat(50)}1${'}'.repeat(50)}}}`, 400, 'JSON contains too many levels of nesting; maximum is 6'],
      [`{"state":{"reported":${'['.repeat(30_000)}${']'.repeat(30_000)}}}`, 400, 'Reported node must be an object'],
      [`{"state":{"reported":{"x":${'['.repeat(30_000)}${']'.repeat(30_000)}}}}`, 400, 'JSON contains too many levels of nesting; maximum is 6'],
      ['{"state":{"reported":{"huge":1e999}}}', 400, 'State contains an invalid node'],
      ['{"state":"on"}', 400, 'State node must be an object'],
      ['{"state":{"desired":[1,2]}}', 400, 'Desired node must be an object'],
      ['{"reported":{}}', 400, 'Missing required node: state'],
      ['{"state":{},"version":"3"}', 400, 'Invalid version'],
      [`{"state":{},"clientToken":"${'x'.repeat(65)}"}`, 400, 'Invalid clientToken'],
      [JSON.stringify({ state: { reported: { blob: 'x'.repeat(9000) } } }), 413, 'The payload exceeds the maximum size allowed'],
      [JSON.stringify({ state: { reported: { blob: 'x'.repeat(70_000) } } }), 413, 'The payload exceeds the maximum size allowed'],
      ['[]', 400, 'Payload contains invalid json'],
      ['{"state":{"desired":{"colors":[null,"RED"]}}}', 400, 'State contains an invalid node'],
      ['{"state":{"reported":{"safe":false},"delta":{"safe":false}}}', 400, "State contains an invalid node: 'delta'"],
    ];
    for (const [payload, code, message] of cases) {
      hostile.client.publish(`${topic}/update`, payload, { qos: 1 });
      expect(await hostile.nextEvent(`${topic}/update/rejected`)).toMatchObject({ code, message });
    }
    // Over 256 KiB the broker closes the connection before the body is read (mqtt.maxPacketSize).
    const big = await connectClient(daemon.mqttUrl, { clientId: 'hostile-big', username: 'hostile', password: 'pw' });
    const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish(`${topic}/update`, Buffer.alloc(1024 * 1024, 0x20), { qos: 0 });
    await closed;
    big.end(true);
    const after = await hostile.request(`${topic}/get`);
    expect(after.body).toMatchObject({ state: { reported: { safe: true } }, version: 1 });
    const onHttp = await http(httpPort, 'POST', '/things/hostile/shadow', Buffer.alloc(1024 * 1024, 0x20));
    expect(onHttp).toMatchObject({ status: 413, body: { code: 413, message: 'The payload exceeds the maximum size allowed' } });
    expect((await http(httpPort, 'GET', '/things/hostile/shadow')).body.version).toBe(1);
  });

  it('refuses an integer a double cannot hold exactly (beyond ±(2^53-1)) instead of storing it rounded, over MQTT, HTTP and the CLI', async () => {
    await addThing(daemon.socket, 'odometer', 'pw');
    const topic = classic('odometer');
    const odometer = await connectThing('odometer', 'odometer', [`${topic}/#`]);
    // Strings, keys and fractions of many digits are not integers a double rounds.
    const fine = '{"state":{"reported":{"km":9007199254740991,"vin":"90071992547409931234","n12345678901234567":1,"tiny":-9007199254740991,"big":1.5e300,"pi":3.14159265358979323846}},"clientToken":"ok"}';
    expect(await odometer.requestRaw(`${topic}/update`, fine, 'ok')).toMatchObject({ outcome: 'accepted', body: { version: 1 } });
    const message = (literal: string) => `Integer ${literal} is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string`;
    for (const literal of ['9007199254740993', '-9007199254740992', '18446744073709551615']) {
      const refused = await odometer.requestRaw(`${topic}/update`, `{"state":{"reported":{"km":${literal}}},"clientToken":"big"}`, 'big');
      expect(refused).toMatchObject({ outcome: 'rejected', body: { code: 400, message: message(literal), clientToken: 'big' } });
    }
    expect(await http(httpPort, 'POST', '/things/odometer/shadow', '{"state":{"desired":{"km":[1,12345678901234567890]}}}'))
      .toMatchObject({ status: 400, body: { code: 400, message: message('12345678901234567890') } });
    const cli = await outpost(daemon.socket, ['shadow', 'update', 'odometer', '--reported', '{"km":9007199254740993}']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toBe(`outpost: --reported: integer 9007199254740993 is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string\n(add --help for usage)\n`);
    const after = await odometer.request(`${topic}/get`);
    expect(after.body).toMatchObject({ state: { reported: { km: 9007199254740991, vin: '90071992547409931234', big: 1.5e300 } }, version: 1 });
    expect(after.body.state.desired).toBeUndefined();
  });

  it('serves the IoT data plane shadow routes over HTTP with AWS statuses and bodies', async () => {
    const missing = await http(httpPort, 'GET', '/things/door/shadow');
    expect(missing).toMatchObject({ status: 404, body: { code: 404, message: "No shadow exists with name: 'door'" } });
    expect(missing.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');

    const updated = await http(httpPort, 'POST', '/things/door/shadow', JSON.stringify({ state: { desired: { locked: true } } }));
    expect(updated).toMatchObject({ status: 200, body: { state: { desired: { locked: true } }, version: 1 } });
    const got = await http(httpPort, 'GET', '/things/door/shadow');
    expect(got.body).toMatchObject({ state: { desired: { locked: true }, delta: { locked: true } }, version: 1 });
    // AWS: a REST caller's error is the error response document, the update's clientToken echoed
    const conflict = await http(httpPort, 'POST', '/things/door/shadow', JSON.stringify({ state: {}, version: 9, clientToken: 'door-1' }));
    expect(conflict).toMatchObject({ status: 409, body: { code: 409, message: 'Version conflict', timestamp: expect.any(Number), clientToken: 'door-1' } });
    expect(Object.keys(conflict.body).sort()).toEqual(['clientToken', 'code', 'message', 'timestamp']);
    expect((await http(httpPort, 'POST', '/things/door/shadow', JSON.stringify({ state: { delta: {} }, clientToken: 'door-2' }))).body)
      .toEqual({ code: 400, message: "State contains an invalid node: 'delta'", timestamp: expect.any(Number), clientToken: 'door-2' });
    expect((await http(httpPort, 'POST', '/things/door/shadow', '{oops'))).toMatchObject({ status: 400, body: { code: 400, message: 'Payload contains invalid json', timestamp: expect.any(Number) } });
    expect((await http(httpPort, 'GET', `/things/${'x'.repeat(129)}/shadow`)).status).toBe(400);
    expect((await http(httpPort, 'GET', '/things/door/shadow?name=bad.name')).status).toBe(400);
    // An empty name names no shadow (AWS: 1-64 characters), not the classic one, as `shadow/name//update` on MQTT
    for (const method of ['GET', 'POST', 'DELETE']) {
      const body = method === 'POST' ? JSON.stringify({ state: { desired: { locked: false } } }) : undefined;
      expect(await http(httpPort, method, '/things/door/shadow?name=', body)).toMatchObject({ status: 400, body: { code: 400, message: 'Invalid shadow name' } });
    }
    expect((await http(httpPort, 'GET', '/things/door/shadow')).body).toMatchObject({ state: { desired: { locked: true } }, version: 1 });

    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      expect((await http(httpPort, 'POST', `/things/door/shadow?name=${name}`, JSON.stringify({ state: { reported: { n: name } } }))).status).toBe(200);
    }
    expect((await http(httpPort, 'GET', '/things/door/shadow?name=c')).body.state.reported).toEqual({ n: 'c' });
    expect((await http(httpPort, 'DELETE', '/things/door/shadow?name=e')).body).toMatchObject({ version: 1 });
    expect((await http(httpPort, 'GET', '/things/door/shadow?name=e')).body).toEqual({ code: 404, message: "No shadow exists with name: 'door~e'", timestamp: expect.any(Number) });
    const page1 = await http(httpPort, 'GET', '/api/things/shadow/ListNamedShadowsForThing/door?pageSize=3');
    expect(page1.body).toMatchObject({ results: ['a', 'b', 'c'] });
    expect(page1.body.nextToken).toBeTypeOf('string');
    expect(page1.body.timestamp).toBeTypeOf('number');
    const page2 = await http(httpPort, 'GET', `/api/things/shadow/ListNamedShadowsForThing/door?pageSize=3&nextToken=${page1.body.nextToken}`);
    expect(page2.body).toMatchObject({ results: ['d'], nextToken: null });
    expect((await http(httpPort, 'GET', '/api/things/shadow/ListNamedShadowsForThing/door?pageSize=0')).status).toBe(400);
    expect((await http(httpPort, 'DELETE', '/things/door/shadow')).status).toBe(200);
    expect((await http(httpPort, 'DELETE', '/things/door/shadow')).status).toBe(404);
  });

  it("serves shadow names with '$' (AWS: [$a-zA-Z0-9:_-]+, as the reserved $package shadow) over MQTT and HTTP, and pages through them", async () => {
    const lamp = await connectThing('lamp', 'lamp-package', [`${named('lamp', '$package')}/update/accepted`, `${named('lamp', '$package')}/update/rejected`]);
    const updated = await lamp.request(`${named('lamp', '$package')}/update`, { state: { reported: { firmware: { version: '2.1' } } } });
    expect(updated).toMatchObject({ outcome: 'accepted', body: { version: 1 } });
    expect(await http(httpPort, 'GET', '/things/lamp/shadow?name=%24package')).toMatchObject({ status: 200, body: { state: { reported: { firmware: { version: '2.1' } } }, version: 1 } });

    for (const name of ['$package', '$z', 'a']) {
      expect((await http(httpPort, 'POST', `/things/catalog/shadow?name=${encodeURIComponent(name)}`, JSON.stringify({ state: { reported: { n: name } } }))).status).toBe(200);
    }
    // One name a page: every page but the last resumes after a name holding '$'.
    const listed: string[] = [];
    let nextToken: string | null = null;
    for (let page = 0; page < 4; page++) {
      const query: string = `pageSize=1${nextToken ? `&nextToken=${nextToken}` : ''}`;
      const answer = await http(httpPort, 'GET', `/api/things/shadow/ListNamedShadowsForThing/catalog?${query}`);
      expect(answer.status).toBe(200);
      listed.push(...answer.body.results);
      nextToken = answer.body.nextToken;
      if (nextToken === null) break;
    }
    expect(listed).toEqual(['$package', '$z', 'a']);
    expect((await http(httpPort, 'GET', '/things/catalog/shadow?name=%24bad.name')).status).toBe(400);
  });

  it('publishes HTTP updates on the bus like MQTT ones', async () => {
    const lamp = await connectThing('lamp', 'lamp-http', [`${named('lamp', 'remote')}/update/documents`, `${named('lamp', 'remote')}/update/delta`]);
    await http(httpPort, 'POST', '/things/lamp/shadow?name=remote', JSON.stringify({ state: { desired: { on: true } } }));
    expect(await lamp.nextEvent(`${named('lamp', 'remote')}/update/delta`)).toMatchObject({ state: { on: true }, version: 1 });
    expect(await lamp.nextEvent(`${named('lamp', 'remote')}/update/documents`)).toMatchObject({ current: { version: 1 } });
  });

  it('outpost shadow get/update/ls/delete, as tables and --json', async () => {
    const update = await outpost(daemon.socket, ['shadow', 'update', 'heater', '--desired', '{"temp":21,"mode":{"eco":true}}']);
    expect(update).toMatchObject({ code: 0, stdout: 'updated heater: version 1\n' });
    await outpost(daemon.socket, ['shadow', 'update', 'heater', '--reported', '{"temp":19}']);
    const table = await outpost(daemon.socket, ['shadow', 'get', 'heater']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^version 2\nFIELD\s+DESIRED\s+REPORTED\s+DELTA\nmode\.eco\s+true\s+-\s+true\ntemp\s+21\s+19\s+21\n$/);
    const json = JSON.parse((await outpost(daemon.socket, ['--json', 'shadow', 'get', 'heater'])).stdout);
    expect(json.state.delta).toEqual({ temp: 21, mode: { eco: true } });
    await outpost(daemon.socket, ['shadow', 'update', 'heater', '--name', 'schedule', '--reported', '{"at":"07:00"}']);
    const ls = await outpost(daemon.socket, ['shadow', 'ls', 'heater']);
    expect(ls.stdout).toMatch(/THING\s+SHADOW\s+VERSION\s+UPDATED\nheater\s+\(classic\)\s+2\s+\S+\nheater\s+schedule\s+1/);
    const conflict = await outpost(daemon.socket, ['shadow', 'update', 'heater', '--reported', '{"temp":20}', '--if-version', '7']);
    expect(conflict).toMatchObject({ code: 1, stderr: 'outpost: Version conflict\n' });
    expect(await outpost(daemon.socket, ['shadow', 'delete', 'heater', '--name', 'schedule'])).toMatchObject({ code: 0, stdout: 'deleted heater (schedule) at version 1\n' });
    expect((await outpost(daemon.socket, ['shadow', 'get', 'heater', '--name', 'schedule'])).stderr).toBe("outpost: No shadow exists with name: 'heater~schedule'\n");
    // ten CLI processes, each a Node.js start: 30 s was outrun on a loaded machine
  }, 60_000);

  it('answers 500 InternalFailureException when the store cannot commit, and changes nothing', async () => {
    expect((await http(httpPort, 'POST', '/things/boiler/shadow', JSON.stringify({ state: { reported: { bar: 1 } } }))).status).toBe(200);
    // Another writer holding SQLite's write lock past the daemon's busy timeout makes its commit fail.
    const locker = new Database(join(daemon.dataDir, 'outpost.db'));
    locker.exec('BEGIN IMMEDIATE');
    let failed;
    try {
      failed = await http(httpPort, 'POST', '/things/boiler/shadow', JSON.stringify({ state: { reported: { bar: 2 } } }));
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    expect(failed).toMatchObject({ status: 500, body: { code: 500, message: 'Internal service failure' } });
    expect(failed.headers.get('x-amzn-errortype')).toBe('InternalFailureException');
    const after = await http(httpPort, 'POST', '/things/boiler/shadow', JSON.stringify({ state: { reported: { bar: 3 } } }));
    expect(after.body).toMatchObject({ state: { reported: { bar: 3 } }, version: 2 });
  }, 30_000);
});

describe('outpost shadow ls of every shadow', () => {
  it('lists them all, page after page, in order of thing and name', async () => {
    const daemon = await TestDaemon.start({ config: { http: { auth: 'none' } } });
    try {
      const port = daemon.port('http');
      // more than one page (1000): a classic and a named shadow of each of 503 things
      const updates: Array<[string, string]> = [];
      for (let i = 0; i < 503; i++) updates.push([`t${String(i).padStart(3, '0')}`, ''], [`t${String(i).padStart(3, '0')}`, '?name=n']);
      for (let first = 0; first < updates.length; first += 20) {
        await Promise.all(updates.slice(first, first + 20).map(async ([thing, name]) =>
          expect((await http(port, 'POST', `/things/${thing}/shadow${name}`, JSON.stringify({ state: { reported: { on: true } } }))).status).toBe(200)));
      }
      const listed = JSON.parse((await outpost(daemon.socket, ['--json', 'shadow', 'ls'])).stdout).shadows as Array<{ thing: string; name: string | null }>;
      expect(listed.map((shadow) => `${shadow.thing}${shadow.name ? `?name=${shadow.name}` : ''}`)).toEqual(updates.map(([thing, name]) => `${thing}${name}`));
    } finally {
      await daemon.cleanup();
    }
  }, 60_000);
});
