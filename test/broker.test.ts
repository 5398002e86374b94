import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, adminRequest, outpost, subscribeGranted, addThing, collectMessages, connectAndCollect, connectClient, messagesWithin, mosquittoClient } from './helpers/mqtt.js';

describe('broker with authentication (config file: anonymous off)', () => {
  let daemon: TestDaemon;
  const clients: MqttClient[] = [];
  const connect = async (options: Parameters<typeof connectClient>[1]) => {
    const client = await connectClient(daemon.mqttUrl, options);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { maxPacketSize: 65536 } } });
    await addThing(daemon.socket, 'sensor-1', 's3cret');
    await addThing(daemon.socket, 'observer', 'watch', { publish: ['$aws/#', 'ops/#'], subscribe: ['#', '$aws/#'], clientIds: ['observer*'] });
  });

  afterAll(async () => {
    for (const client of clients) client.end(true);
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('accepts a thing with its password and delivers its messages', async () => {
    const observer = await connect({ clientId: 'observer-1', username: 'observer', password: 'watch' });
    await observer.subscribeAsync('things/#', { qos: 1 });
    const sensor = await connect({ clientId: 'sensor-1', username: 'sensor-1', password: 's3cret' });
    const arriving = collectMessages(observer, 1);
    await sensor.publishAsync('things/sensor-1/temp', '21.5', { qos: 1 });
    expect(await arriving).toEqual([{ topic: 'things/sensor-1/temp', payload: '21.5', retain: false, qos: 1 }]);
  });

  it('refuses a wrong password with CONNACK 4 and an anonymous client with CONNACK 5', async () => {
    await expect(connectClient(daemon.mqttUrl, { clientId: 'sensor-1', username: 'sensor-1', password: 'wrong' }))
      .rejects.toMatchObject({ code: 4 });
    await expect(connectClient(daemon.mqttUrl, { clientId: 'sensor-1', username: 'nobody', password: 'x' }))
      .rejects.toMatchObject({ code: 4 });
    await expect(connectClient(daemon.mqttUrl, { clientId: 'anon' })).rejects.toMatchObject({ code: 5 });
  });

  it('does not admit a thing removed while its login waited for the password check', async () => {
    await addThing(daemon.socket, 'doomed', 'pw');
    const outcome = (connecting: Promise<MqttClient>) => connecting.then((client) => { client.end(true); return 'admitted'; }, (error: { code?: number }) => `refused ${error.code}`);
    // wrong passwords ahead of it: their scrypt runs (tens of ms each) keep the right one waiting
    const ahead = Array.from({ length: 30 }, (_, i) => outcome(connectClient(daemon.mqttUrl, { clientId: `ahead-${i}`, username: 'doomed', password: `wrong-${i}`, connectTimeout: 30_000 })));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const waiting = outcome(connectClient(daemon.mqttUrl, { clientId: 'doomed', username: 'doomed', password: 'pw', connectTimeout: 30_000 }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await adminRequest(daemon.socket, 'DELETE', '/v1/things/doomed'))?.status).toBe(200);
    expect(await waiting).toBe('refused 4');
    expect(new Set(await Promise.all(ahead))).toEqual(new Set(['refused 4']));
  }, 30_000);

  it('closes the connections of a thing removed, given another password or another policy', async () => {
    // what a connection admitted before the change still gets: the messages of its subscription, or its close
    const closedOrDelivered = (client: MqttClient) => new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('still connected, nothing delivered'), 3000);
      client.once('close', () => { clearTimeout(timer); resolve('closed'); });
      client.once('message', (topic) => { clearTimeout(timer); resolve(`delivered ${topic}`); });
    });
    const sendCommand = async (thing: string) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const observer = await connect({ clientId: `observer-${thing}`, username: 'observer', password: 'watch' });
      await observer.publishAsync(`$aws/things/${thing}/shadow/name/cmd/get`, '{}', { qos: 1 });
    };

    await addThing(daemon.socket, 'stolen', 'pw');
    const watcher = await connect({ clientId: 'observer-stolen-will', username: 'observer', password: 'watch' });
    await watcher.subscribeAsync('things/stolen/#', { qos: 1 });
    const wills = messagesWithin(watcher, 1500);
    const stolen = await connectClient(daemon.mqttUrl, { clientId: 'stolen', username: 'stolen', password: 'pw', will: { topic: 'things/stolen/status', payload: Buffer.from('offline'), qos: 1, retain: false } });
    await stolen.subscribeAsync('$aws/things/stolen/#', { qos: 1 });
    const removedOutcome = closedOrDelivered(stolen);
    expect((await adminRequest(daemon.socket, 'DELETE', '/v1/things/stolen'))?.status).toBe(200);
    await sendCommand('stolen');
    expect(await removedOutcome).toBe('closed');
    await expect(connectClient(daemon.mqttUrl, { clientId: 'stolen', username: 'stolen', password: 'pw' })).rejects.toMatchObject({ code: 4 });
    // its will was granted to what the thing no longer is
    expect(await wills).toEqual([]);

    await addThing(daemon.socket, 'rotated', 'old');
    const rotated = await connectClient(daemon.mqttUrl, { clientId: 'rotated', username: 'rotated', password: 'old' });
    await rotated.subscribeAsync('$aws/things/rotated/#', { qos: 1 });
    const rotatedOutcome = closedOrDelivered(rotated);
    expect((await adminRequest(daemon.socket, 'PUT', '/v1/things/rotated/password', JSON.stringify({ password: 'new' })))?.status).toBe(200);
    await sendCommand('rotated');
    expect(await rotatedOutcome).toBe('closed');

    await addThing(daemon.socket, 'narrowed', 'pw');
    const narrowed = await connectClient(daemon.mqttUrl, { clientId: 'narrowed', username: 'narrowed', password: 'pw' });
    await narrowed.subscribeAsync('$aws/things/narrowed/#', { qos: 1 });
    const narrowedOutcome = closedOrDelivered(narrowed);
    const policy = { publish: ['things/${thing}/#'], subscribe: ['things/${thing}/#'] };
    expect((await adminRequest(daemon.socket, 'PUT', '/v1/things/narrowed/policy', JSON.stringify({ policy })))?.status).toBe(200);
    await sendCommand('narrowed');
    expect(await narrowedOutcome).toBe('closed');
    // reconnected, it is held to the new policy
    const again = await connect({ clientId: 'narrowed', username: 'narrowed', password: 'pw' });
    expect(await subscribeGranted(again, ['$aws/things/narrowed/#', 'things/narrowed/#'])).toEqual([128, 1]);
  }, 30_000);

  it('refuses logins beyond those waiting for a password check with CONNACK 3, and counts them', async () => {
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => connectClient(daemon.mqttUrl, { clientId: `flood-${i}`, username: 'sensor-1', password: `wrong-${i}`, connectTimeout: 60_000 })
      .then((client) => { client.end(true); return 'admitted'; }, (error: { code?: number }) => `refused ${error.code}`)));
    const counts = outcomes.reduce((all, outcome) => ({ ...all, [outcome]: (all[outcome] ?? 0) + 1 }), {} as Record<string, number>);
    expect(Object.keys(counts).sort()).toEqual(['refused 3', 'refused 4']);
    expect(counts['refused 3']).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`outpost_mqtt_connections_refused_total\\{reason="server_unavailable"\\} ${counts['refused 3']}\\b`));
  }, 60_000);

  it('checks a login of an unknown thing as a known one\'s, so that its answer does not tell which things exist', async () => {
    // answered at once, unknown names all got CONNACK 4 however many came; checked in turn, some wait beyond the queue
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => connectClient(daemon.mqttUrl, { clientId: `probe-${i}`, username: `no-such-thing-${i}`, password: 'guess', connectTimeout: 60_000 })
      .then((client) => { client.end(true); return 'admitted'; }, (error: { code?: number }) => `refused ${error.code}`)));
    expect([...new Set(outcomes)].sort()).toEqual(['refused 3', 'refused 4']);
  }, 60_000);

  it('refuses a client id outside the thing policy', async () => {
    await expect(connectClient(daemon.mqttUrl, { clientId: 'someone-else', username: 'sensor-1', password: 's3cret' }))
      .rejects.toMatchObject({ code: 5 });
  });

  it('refuses a client id of another thing whose name begins with this one\'s, leaving its connection and session alone', async () => {
    await addThing(daemon.socket, 'greenhouse-1', 'victim');
    await addThing(daemon.socket, 'greenhouse', 'neighbour');
    const victim = await connect({ clientId: 'greenhouse-1', username: 'greenhouse-1', password: 'victim', clean: false });
    await victim.subscribeAsync('things/greenhouse-1/cmd', { qos: 1 });
    const victimClosed = new Promise<string>((resolve) => {
      victim.once('close', () => resolve('closed'));
      setTimeout(() => resolve('open'), 1000);
    });
    // `${thing}-*` of thing greenhouse matches both; the longer name owns them
    for (const clientId of ['greenhouse-1', 'greenhouse-1-backup']) {
      await expect(connectClient(daemon.mqttUrl, { clientId, username: 'greenhouse', password: 'neighbour', clean: true }))
        .rejects.toMatchObject({ code: 5 });
    }
    expect(await victimClosed).toBe('open');
    (await connect({ clientId: 'greenhouse-2', username: 'greenhouse', password: 'neighbour' })).end(true);
    (await connect({ clientId: 'greenhouse-1-backup', username: 'greenhouse-1', password: 'victim' })).end(true);
  });

  it('acknowledges but drops a publish outside the policy, and counts it', async () => {
    const observer = await connect({ clientId: 'observer-2', username: 'observer', password: 'watch' });
    await observer.subscribeAsync('things/#', { qos: 1 });
    const sensor = await connect({ clientId: 'sensor-1-b', username: 'sensor-1', password: 's3cret' });
    const seen = messagesWithin(observer, 500);
    await sensor.publishAsync('things/other-thing/temp', 'spoofed', { qos: 1 });
    expect(await seen).toEqual([]);
    expect(sensor.connected).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_dropped_total\{reason="not_authorized"\} [1-9]/);
  });

  it('answers a subscription outside the policy with SUBACK 0x80', async () => {
    const sensor = await connect({ clientId: 'sensor-1-c', username: 'sensor-1', password: 's3cret' });
    expect(await subscribeGranted(sensor, ['things/sensor-1/cmd', 'things/other-thing/#', '#'])).toEqual([1, 128, 128]);
  });

  it('refuses a zero-length client id with clean session 0 with CONNACK 0x02 (MQTT-3.1.3-8)', async () => {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    // mqtt-packet refuses to generate this CONNECT, so write it by hand: protocol "MQTT" level 4,
    // flags 0xC0 (username, password, clean session 0), keep-alive 30, empty client id.
    const body = Buffer.concat([
      Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 0xc0, 0, 30]),
      Buffer.from([0, 0]),
      Buffer.from([0, 8]), Buffer.from('sensor-1'),
      Buffer.from([0, 6]), Buffer.from('s3cret'),
    ]);
    raw.send(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = await raw.waitFor((p) => p.cmd === 'connack');
    expect(connack?.returnCode).toBe(2);
    expect(await raw.waitClosed()).toBe(true);
  });

  it('does not match $ topics with a leading wildcard (MQTT-4.7.2-1)', async () => {
    const wildcard = await connect({ clientId: 'observer-wild', username: 'observer', password: 'watch' });
    await wildcard.subscribeAsync('#', { qos: 0 });
    const dollar = await connect({ clientId: 'observer-dollar', username: 'observer', password: 'watch' });
    await dollar.subscribeAsync('$aws/things/+/shadow/#', { qos: 0 });
    const publisher = await connect({ clientId: 'observer-pub', username: 'observer', password: 'watch' });
    const wildcardSeen = messagesWithin(wildcard, 500);
    const dollarSeen = collectMessages(dollar, 1);
    await publisher.publishAsync('$aws/things/lamp/shadow/update', '{}', { qos: 1 });
    expect((await dollarSeen)[0].topic).toBe('$aws/things/lamp/shadow/update');
    expect(await wildcardSeen).toEqual([]);
  });

  it('does not match $ topics with a leading wildcard restored from a persistent session (MQTT-4.7.2-1)', async () => {
    const options = { clientId: 'observer-restored', username: 'observer', password: 'watch', clean: false } as const;
    const first = await connect(options);
    await first.subscribeAsync('#', { qos: 1 });
    await first.endAsync();
    // No SUBSCRIBE this time: the broker restores '#' from the session.
    const restored = await connect(options);
    const publisher = await connect({ clientId: 'observer-pub-2', username: 'observer', password: 'watch' });
    const seen = messagesWithin(restored, 800);
    await publisher.publishAsync('$aws/things/lamp/shadow/update', '{}', { qos: 1 });
    await publisher.publishAsync('ops/after', 'plain', { qos: 1 });
    expect(await seen).toEqual(['ops/after']);
  });

  it('closes the connection of a client sending a packet over the size limit, and keeps serving others', async () => {
    const big = await connectClient(daemon.mqttUrl, { clientId: 'sensor-1-big', username: 'sensor-1', password: 's3cret' });
    const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish('things/sensor-1/blob', Buffer.alloc(70_000), { qos: 0 });
    await closed;
    big.end(true);
    const other = await connect({ clientId: 'sensor-1-d', username: 'sensor-1', password: 's3cret' });
    await other.publishAsync('things/sensor-1/ok', 'fine', { qos: 1 });
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="packet_too_large"\} 1/);
  });

  it('works with mosquitto_pub and mosquitto_sub', async () => {
    const port = String(daemon.port('mqtt'));
    const sub = mosquittoClient('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-i', 'observer-mosq', '-u', 'observer', '-P', 'watch', '-t', 'ops/#', '-C', '1', '-W', '8', '-q', '1']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pub = await mosquittoClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-i', 'observer-mosq-pub', '-u', 'observer', '-P', 'watch', '-t', 'ops/hello', '-m', 'from mosquitto_pub', '-q', '1']);
    expect(pub.code).toBe(0);
    expect((await sub).stdout.trim()).toBe('from mosquitto_pub');
    const refused = await mosquittoClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'observer', '-P', 'nope', '-t', 'ops/x', '-m', 'x']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not authori[sz]ed|bad user name or password/i);
  });
});

describe('broker durability across restarts', () => {
  it('keeps retained messages, persistent sessions and their queued messages over a clean restart', async () => {
    let daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'dev', 'pw', { publish: ['d/#'], subscribe: ['d/#'], clientIds: ['dev*'] });
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'dev-sub', username: 'dev', password: 'pw', clean: false });
    await subscriber.subscribeAsync('d/queue/#', { qos: 1 });
    subscriber.end(true);
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'dev-pub', username: 'dev', password: 'pw' });
    await publisher.publishAsync('d/status', 'online', { qos: 1, retain: true });
    for (let i = 0; i < 5; i++) await publisher.publishAsync(`d/queue/${i}`, String(i), { qos: 1 });
    publisher.end(true);
    expect(await daemon.stop()).toBe(0);

    daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
    try {
      const status = JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout);
      expect(status.services.broker.queued).toEqual({ sessions: 1, messages: 5 });
      const { client: back, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'dev-sub', username: 'dev', password: 'pw', clean: false }, 5);
      const queued = await messages;
      expect(queued.map((m) => m.payload)).toEqual(['0', '1', '2', '3', '4']);
      const reader = await connectClient(daemon.mqttUrl, { clientId: 'dev-reader', username: 'dev', password: 'pw' });
      const retained = collectMessages(reader, 1);
      await reader.subscribeAsync('d/status', { qos: 1 });
      expect(await retained).toEqual([{ topic: 'd/status', payload: 'online', retain: true, qos: 1 }]);
      back.end(true);
      reader.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});
