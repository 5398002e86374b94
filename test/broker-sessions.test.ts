import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, addThing, adminRequest, connectAndCollect, connectClient, outpost } from './helpers/mqtt.js';
import { eventually } from './helpers/eventually.js';
import { fuzzSeed, prng } from './helpers/fuzz.js';

const MESSAGES = 600;

describe('persistent sessions of a client that keeps reconnecting', () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'dev', 'pw', { publish: ['d/#'], subscribe: ['d/#'], clientIds: ['dev*'] });
  });
  afterAll(async () => {
    await daemon.cleanup();
  });

  it('get every QoS 1 message at least once, though connections come and go mid-flight and take the session over from each other (MQTT-3.1.4-2)', async () => {
    const seed = fuzzSeed();
    const random = prng(seed);
    const received = new Set<string>();
    const options = { clientId: 'dev-flappy', username: 'dev', password: 'pw', clean: false, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4 as const };
    /** A connection of the session that records what reaches it from its first packet on (queued messages may come with the CONNACK). */
    const open = (): Promise<MqttClient | undefined> => new Promise((resolve) => {
      const client = mqtt.connect(daemon.mqttUrl, options);
      client.on('message', (_topic, payload) => received.add(payload.toString()));
      client.once('connect', () => resolve(client));
      // a connection another took over before its CONNACK, or refused meanwhile
      client.once('close', () => resolve(undefined));
      client.on('error', () => undefined);
    });
    const first = await open();
    await first!.subscribeAsync('d/flap', { qos: 1 });
    first!.end(true);

    let publishing = true;
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'dev-pub', username: 'dev', password: 'pw' });
    const publish = (async () => {
      try {
        for (let i = 0; i < MESSAGES; i++) await publisher.publishAsync('d/flap', String(i), { qos: 1 });
      } finally {
        publishing = false;
        publisher.end(true);
      }
    })();
    // while they are published: one connection, or two at once (the second takes the session over),
    // each dropped without a DISCONNECT after 0-40 ms, acknowledged or not what it got
    for (let round = 0; round < 400 && publishing; round++) {
      const connections = await Promise.all(random() < 0.3 ? [open(), open()] : [open()]);
      await new Promise((resolve) => setTimeout(resolve, random() * 40));
      for (const connection of connections) connection?.end(true);
    }
    await publish;

    // what is left comes to the last connection
    const last = await open();
    for (let waited = 0; waited < 10_000 && received.size < MESSAGES; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    last?.end(true);
    const missing = Array.from({ length: MESSAGES }, (_, i) => String(i)).filter((payload) => !received.has(payload));
    expect(missing, `seed ${seed}`).toEqual([]);
  });

  it('tell a client whose session holds only a QoS 2 message not released yet that its session is present, and publish the message on its PUBREL (MQTT-3.2.2-2)', async () => {
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'dev-watch', username: 'dev', password: 'pw' });
    const received: string[] = [];
    subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
    await subscriber.subscribeAsync('d/released', { qos: 2 });
    const connect = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'dev-publisher-only', username: 'dev', password: Buffer.from('pw'), keepalive: 30 });
      return { raw, connack: await raw.waitFor((packet) => packet.cmd === 'connack') };
    };

    const first = await connect();
    expect(first.connack).toMatchObject({ returnCode: 0, sessionPresent: false });
    first.raw.send({ cmd: 'publish', topic: 'd/released', payload: Buffer.from('once released'), qos: 2, messageId: 9, dup: false, retain: false });
    expect(await first.raw.waitFor((packet) => packet.cmd === 'pubrec')).toMatchObject({ messageId: 9 });
    // the connection drops before the PUBREL
    first.raw.socket.destroy();

    const second = await connect();
    // told 0, a client discards its session: the PUBREL would never come
    expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
    second.raw.send({ cmd: 'pubrel', messageId: 9 });
    expect(await second.raw.waitFor((packet) => packet.cmd === 'pubcomp')).toMatchObject({ messageId: 9 });
    for (let waited = 0; waited < 5000 && received.length === 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toEqual(['once released']);
    second.raw.socket.destroy();

    // nothing in flight any more, and no subscription: the session is there all the same, as Mosquitto answers
    const third = await connect();
    expect(third.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
    third.raw.socket.destroy();
    subscriber.end(true);
  });

  it('tell a client whose session never held anything that it is present, after a restart too, until a clean CONNECT ends it (MQTT-3.2.2-2, MQTT-3.1.2-6)', async () => {
    const connect = async (clean: boolean) => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId: 'dev-empty-session', username: 'dev', password: Buffer.from('pw'), keepalive: 30 });
      const connack = await raw.waitFor((packet) => packet.cmd === 'connack');
      raw.socket.destroy();
      return connack;
    };
    expect(await connect(false)).toMatchObject({ returnCode: 0, sessionPresent: false });
    expect(await connect(false)).toMatchObject({ returnCode: 0, sessionPresent: true });
    await daemon.stop();
    daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
    expect(await connect(false)).toMatchObject({ returnCode: 0, sessionPresent: true });
    expect(await connect(true)).toMatchObject({ returnCode: 0, sessionPresent: false });
    expect(await connect(false)).toMatchObject({ returnCode: 0, sessionPresent: false });
  });
});

describe('persistent sessions of anonymous clients', () => {
  it('are at most mqtt.maxAnonymousPersistentSessions, stored or open: one more is refused with CONNACK 2 until one of them ends; things are not held back', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxAnonymousPersistentSessions: 2 } } });
    try {
      await addThing(daemon.socket, 'owner', 'pw');
      const anonymous = (clientId: string, clean = false) => connectClient(daemon.mqttUrl, { clientId, clean });
      const stored = await anonymous('anon-1');
      await stored.subscribeAsync('anon/cmd', { qos: 1 });
      stored.end(true);
      const open = await anonymous('anon-2');
      await expect(anonymous('anon-3')).rejects.toMatchObject({ code: 2 });
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="persistent_session_limit"\} 1/);
      // their own sessions, clean sessions and things are not held back
      (await anonymous('anon-1')).end(true);
      (await anonymous('anon-3', true)).end(true);
      (await connectClient(daemon.mqttUrl, { clientId: 'owner-1', username: 'owner', password: 'pw', clean: false })).end(true);
      // a clean session ends the stored one of its client id (MQTT-3.1.2-6), which frees a place
      (await anonymous('anon-1', true)).end(true);
      (await anonymous('anon-3')).end(true);
      open.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('persistent sessions of one thing', () => {
  it('are at most mqtt.maxPersistentSessionsPerThing, stored or open: one more is refused with CONNACK 2 until one of them ends', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { maxPersistentSessionsPerThing: 3 } } });
    try {
      await addThing(daemon.socket, 'minter', 'pw');
      await addThing(daemon.socket, 'neighbour', 'pw');
      const as = (thing: string, clientId: string, clean = false) => connectClient(daemon.mqttUrl, { clientId, username: thing, password: 'pw', clean });
      // two sessions stored with their filters, one open without any
      for (const id of ['minter-1', 'minter-2']) {
        const client = await as('minter', id);
        await client.subscribeAsync('things/minter/cmd', { qos: 1 });
        client.end(true);
      }
      const open = await as('minter', 'minter-3');
      await expect(as('minter', 'minter-4')).rejects.toMatchObject({ code: 2 });
      await expect(as('minter', 'minter')).rejects.toMatchObject({ code: 2 });
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="persistent_session_limit"\} 2/);
      // its own sessions, a clean session and other things are not held back
      (await as('minter', 'minter-1')).end(true);
      (await as('minter', 'minter-4', true)).end(true);
      (await as('neighbour', 'neighbour-1')).end(true);
      // a clean session ends the stored one of its client id (MQTT-3.1.2-6), which frees a place
      (await as('minter', 'minter-2', true)).end(true);
      (await as('minter', 'minter-4')).end(true);
      open.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('a persistent session whose client stays away', () => {
  it('ends after mqtt.persistentSessionExpiry, its queued messages deleted; one whose client is connected does not, from the daemon\'s start on', async () => {
    const config = { mqtt: { persistentSessionExpiry: 2 } };
    let daemon = await TestDaemon.start({ config });
    try {
      await addThing(daemon.socket, 'sleeper', 'pw');
      const as = (clientId: string) => ({ clientId, username: 'sleeper', password: 'pw', clean: false });
      /** Connects, collecting from the first packet on; with CONNACK's Session Present. */
      const reconnect = (clientId: string) => {
        const { client, messages } = connectAndCollect(daemon.mqttUrl, as(clientId), 1, 1000);
        const sessionPresent = new Promise<boolean>((resolve) => client.once('connect', (connack) => resolve(connack.sessionPresent)));
        return { client, messages: messages.catch(() => []), sessionPresent };
      };
      for (const clientId of ['sleeper-away', 'sleeper-staying']) {
        const client = await connectClient(daemon.mqttUrl, as(clientId));
        await client.subscribeAsync('things/sleeper/cmd', { qos: 1 });
        client.end(true);
      }
      // after a restart, every stored session counts as away: one whose client is back in time is kept however long it stays
      await daemon.stop();
      daemon = await TestDaemon.start({ config, dataDir: daemon.dataDir });
      const staying = reconnect('sleeper-staying');
      expect(await staying.sessionPresent).toBe(true);
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'sleeper', username: 'sleeper', password: 'pw' });
      await publisher.publishAsync('things/sleeper/cmd', 'while away', { qos: 1 });
      const queued = async () => JSON.parse((await adminRequest(daemon.socket, 'GET', '/v1/status'))!.body).services.broker.queued.messages as number;
      // the message queued for the session away goes with it
      await eventually(async () => await queued() === 0);
      const back = reconnect('sleeper-away');
      expect(await back.sessionPresent).toBe(false);
      expect(await back.messages).toEqual([]);
      back.client.end(true);
      // beyond the expiry and its sweep, connected all along
      await new Promise((resolve) => setTimeout(resolve, 4500));
      staying.client.end(true);
      const resumed = reconnect('sleeper-staying');
      expect(await resumed.sessionPresent).toBe(true);
      await publisher.publishAsync('things/sleeper/cmd', 'after', { qos: 1 });
      expect((await resumed.messages).map((message) => message.payload)).toEqual(['after']);
      resumed.client.end(true);
      publisher.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('the expiry of a persistent session', () => {
  it('goes on while others send CONNECTs for its client id that are refused', async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { persistentSessionExpiry: 2 } } });
    try {
      await addThing(daemon.socket, 'poked', 'pw');
      const device = await connectClient(daemon.mqttUrl, { clientId: 'poked-1', username: 'poked', password: 'pw', clean: false });
      await device.subscribeAsync('things/poked/cmd', { qos: 1 });
      device.end(true);
      // for 5 s, a CONNECT naming its client id every 250 ms: a wrong password, or a will topic that is not one (closed before the login)
      const until = Date.now() + 5000;
      for (let attempt = 0; attempt < 40 && Date.now() < until; attempt++) {
        const raw = await RawMqtt.open(daemon.port('mqtt'));
        const will = attempt % 2 === 0 ? {} : { will: { topic: 'things/poked/#', payload: Buffer.from('x'), qos: 0, retain: false } };
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'poked-1', username: 'poked', password: Buffer.from('wrong'), keepalive: 30, ...will });
        await raw.waitClosed(2000);
        raw.end();
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const client = mqtt.connect(daemon.mqttUrl, { clientId: 'poked-1', username: 'poked', password: 'pw', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      expect(await new Promise<boolean>((resolve) => client.once('connect', (connack) => resolve(connack.sessionPresent)))).toBe(false);
      client.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('the persistent sessions of a removed thing', () => {
  it('are deleted with it: a new thing of the same name gets neither its filters nor its queued messages', async () => {
    const daemon = await TestDaemon.start({ config: {} });
    try {
      await addThing(daemon.socket, 'retired', 'old-pw');
      const old = await connectClient(daemon.mqttUrl, { clientId: 'retired-1', username: 'retired', password: 'old-pw', clean: false });
      await old.subscribeAsync('things/retired/cmd', { qos: 1 });
      old.end(true);
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'retired', username: 'retired', password: 'old-pw' });
      await publisher.publishAsync('things/retired/cmd', 'for the old device', { qos: 1 });
      publisher.end(true);
      const removed = await outpost(daemon.socket, ['things', 'rm', 'retired']);
      expect(removed.stdout).toBe('removed thing retired, its persistent sessions retired-1\n');
      await addThing(daemon.socket, 'retired', 'new-pw');
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'retired-1', username: 'retired', password: 'new-pw', clean: false }, 1, 1000);
      const sessionPresent = new Promise<boolean>((resolve) => client.once('connect', (connack) => resolve(connack.sessionPresent)));
      expect(await sessionPresent).toBe(false);
      expect(await messages.catch(() => [])).toEqual([]);
      client.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('the messages queued for a persistent session whose client is away', () => {
  it('are at most mqtt.maxQueuedBytesPerSession of topic and payload: one that does not fit is dropped (counted), the queue kept, also after a restart', async () => {
    const config = { mqtt: { maxQueuedBytesPerSession: 10_000 } };
    let daemon = await TestDaemon.start({ config });
    const droppedQueueFull = async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
      return Number(/outpost_mqtt_dropped_total\{reason="queue_full"\} (\d+)/.exec(metrics)?.[1]);
    };
    const publishAll = async (payloads: string[]) => {
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'tank', username: 'tank', password: 'pw' });
      for (const payload of payloads) await publisher.publishAsync('things/tank/cmd', payload, { qos: 1 });
      publisher.end(true);
    };
    try {
      await addThing(daemon.socket, 'tank', 'pw');
      const away = await connectClient(daemon.mqttUrl, { clientId: 'tank-1', username: 'tank', password: 'pw', clean: false });
      await away.subscribeAsync('things/tank/cmd', { qos: 1 });
      away.end(true);
      // 15 bytes of topic each: three of 3000 take 9045; a fourth would not fit, a 900 one does (9960)
      await publishAll(['a', 'b', 'c', 'd', 'e'].map((name) => name.repeat(name === 'e' ? 900 : 3000)));
      await eventually(async () => await droppedQueueFull() === 1);
      await daemon.stop();
      daemon = await TestDaemon.start({ config, dataDir: daemon.dataDir });
      // 40 bytes left: counted from what is stored, not afresh
      await publishAll(['f'.repeat(26), 'g'.repeat(25)]);
      await eventually(async () => await droppedQueueFull() === 1);
      const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'tank-1', username: 'tank', password: 'pw', clean: false }, 5);
      expect((await messages).map(({ payload }) => `${payload[0]}×${payload.length}`)).toEqual(['a×3000', 'b×3000', 'c×3000', 'e×900', 'g×25']);
      client.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('a retained message sent to a persistent session on its SUBSCRIBE', () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'keeper', 'pw', { publish: ['kept/#'], subscribe: ['kept/#'], clientIds: ['keeper*'] });
  });
  afterAll(async () => {
    await daemon.cleanup();
  });

  const connect = async () => {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'keeper-sub', username: 'keeper', password: Buffer.from('pw'), keepalive: 30 });
    return { raw, connack: await raw.waitFor((packet) => packet.cmd === 'connack') };
  };

  it('is sent again with DUP and RETAIN when the client went away before its PUBACK, and no more once acknowledged (MQTT-4.4.0-1, MQTT-3.3.1-8)', async () => {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'keeper-pub', username: 'keeper', password: 'pw' });
    await publisher.publishAsync('kept/state', 'on', { qos: 1, retain: true });
    publisher.end(true);

    const first = await connect();
    expect(first.connack).toMatchObject({ returnCode: 0 });
    first.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'kept/#', qos: 1 }] });
    const sent = await first.raw.waitFor((packet) => packet.cmd === 'publish');
    expect(sent).toMatchObject({ topic: 'kept/state', qos: 1, retain: true, dup: false });
    expect(sent.payload.toString()).toBe('on');
    // gone without a PUBACK
    first.raw.end();

    const second = await connect();
    expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
    const resent = await second.raw.waitFor((packet) => packet.cmd === 'publish');
    expect(resent).toMatchObject({ topic: 'kept/state', qos: 1, retain: true, dup: true, messageId: sent.messageId });
    expect(resent.payload.toString()).toBe('on');
    second.raw.send({ cmd: 'puback', messageId: resent.messageId });
    await new Promise((resolve) => setTimeout(resolve, 200));
    second.raw.end();

    const third = await connect();
    expect(third.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
    expect(await third.raw.waitFor((packet) => packet.cmd === 'publish', 500)).toBeUndefined();
    third.raw.end();
  });

  it('at QoS 2, gets its PUBREL sent again when the client went away after PUBREC, and nothing once PUBCOMP came (MQTT-4.4.0-1)', async () => {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'keeper-pub', username: 'keeper', password: 'pw' });
    await publisher.publishAsync('kept/two', 'exactly once', { qos: 2, retain: true });
    publisher.end(true);
    const connect = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'keeper-two', username: 'keeper', password: Buffer.from('pw'), keepalive: 30 });
      return { raw, connack: await raw.waitFor((packet) => packet.cmd === 'connack') };
    };

    const first = await connect();
    first.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'kept/two', qos: 2 }] });
    const sent = await first.raw.waitFor((packet) => packet.cmd === 'publish');
    expect(sent).toMatchObject({ topic: 'kept/two', qos: 2, retain: true });
    first.raw.send({ cmd: 'pubrec', messageId: sent.messageId });
    expect(await first.raw.waitFor((packet) => packet.cmd === 'pubrel')).toMatchObject({ messageId: sent.messageId });
    first.raw.end();

    const second = await connect();
    expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
    expect(await second.raw.waitFor((packet) => packet.cmd === 'pubrel' || packet.cmd === 'publish')).toMatchObject({ cmd: 'pubrel', messageId: sent.messageId });
    second.raw.send({ cmd: 'pubcomp', messageId: sent.messageId });
    await new Promise((resolve) => setTimeout(resolve, 200));
    second.raw.end();

    const third = await connect();
    expect(await third.raw.waitFor((packet) => packet.cmd === 'pubrel' || packet.cmd === 'publish', 500)).toBeUndefined();
    third.raw.end();
  });

  it('comes at QoS 0 to a filter granted QoS 0, nothing kept in flight (MQTT-3.8.4-6)', async () => {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'keeper-pub', username: 'keeper', password: 'pw' });
    await publisher.publishAsync('kept/zero', 'low', { qos: 1, retain: true });
    publisher.end(true);

    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'keeper-zero', username: 'keeper', password: Buffer.from('pw'), keepalive: 30 });
    expect(await raw.waitFor((packet) => packet.cmd === 'connack')).toMatchObject({ returnCode: 0 });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'kept/zero', qos: 0 }] });
    const sent = await raw.waitFor((packet) => packet.cmd === 'publish');
    expect(sent).toMatchObject({ topic: 'kept/zero', qos: 0, retain: true });
    const { clients } = JSON.parse((await adminRequest(daemon.socket, 'GET', '/v1/clients'))!.body) as { clients: Array<{ id: string; queued: number }> };
    expect(clients.find((client) => client.id === 'keeper-zero')).toMatchObject({ queued: 0 });
    raw.end();
  });
});

describe('a QoS 2 PUBLISH of a persistent session sent again after a restart, before its sender saw the PUBREC', () => {
  it('is answered PUBREC and not published again once it was published (MQTT-4.3.3-2)', async () => {
    const config = { mqtt: { allowAnonymous: true } };
    let daemon = await TestDaemon.start({ config });
    const connect = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'plc', keepalive: 30 });
      return { raw, connack: await raw.waitFor((packet) => packet.cmd === 'connack') };
    };
    const publish = (raw: RawMqtt, messageId: number, payload: string, dup: boolean) =>
      raw.send({ cmd: 'publish', topic: 'plant/line1', payload: Buffer.from(payload), qos: 2, messageId, dup, retain: false });
    try {
      const away = await connectClient(daemon.mqttUrl, { clientId: 'logger', clean: false });
      await away.subscribeAsync('plant/#', { qos: 2 });
      away.end(true);

      const first = await connect();
      publish(first.raw, 7, 'published before the crash', false);
      expect(await first.raw.waitFor((packet) => packet.cmd === 'pubrec' && packet.messageId === 7)).toBeDefined();
      await daemon.kill();
      daemon = await TestDaemon.start({ config, dataDir: daemon.dataDir });

      // the sender did not read the PUBREC: it sends the PUBLISH again (MQTT-4.3.3-1), then its PUBREL
      const second = await connect();
      expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
      publish(second.raw, 7, 'published before the crash', true);
      expect(await second.raw.waitFor((packet) => packet.cmd === 'pubrec' && packet.messageId === 7)).toBeDefined();
      second.raw.send({ cmd: 'pubrel', messageId: 7 });
      expect(await second.raw.waitFor((packet) => packet.cmd === 'pubcomp' && packet.messageId === 7)).toBeDefined();
      second.raw.end();

      const logger = mqtt.connect(daemon.mqttUrl, { clientId: 'logger', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      const received: string[] = [];
      logger.on('message', (_topic, payload) => received.push(payload.toString()));
      await eventually(() => received.length >= 1, 5000);
      // anything more would come with the rest of the queue, at once
      await new Promise((resolve) => setTimeout(resolve, 1000));
      logger.end(true);
      expect(received).toEqual(['published before the crash']);
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('the packet identifiers of a persistent session\'s messages still in flight across a reconnect', () => {
  let daemon: TestDaemon;
  const raws: RawMqtt[] = [];

  beforeAll(async () => {
    // aedes starts each connection's identifiers at a random one: fixed here, so that a new connection's
    // first identifier is the one its session's unacknowledged message took on the last connection
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } }, env: { NODE_OPTIONS: '--import=data:text/javascript,Math.random=()=>0.5' } });
  });
  afterAll(async () => {
    for (const raw of raws) raw.end();
    await daemon.cleanup();
  });

  const connect = async (clientId: string) => {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raws.push(raw);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 30 });
    expect(await raw.waitFor((packet) => packet.cmd === 'connack')).toMatchObject({ returnCode: 0 });
    return raw;
  };
  const published = (raw: RawMqtt, payload: string) => raw.waitFor((packet) => packet.cmd === 'publish' && String(packet.payload) === payload);

  it('gives a new message an identifier none of them holds (MQTT-2.3.1-2): its PUBACK removed the older one, acknowledged to its publisher, from the session', async () => {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'ids-publisher' });
    const first = await connect('ids-subscriber');
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ids/#', qos: 1 }] });
    await first.waitFor((packet) => packet.cmd === 'suback');
    await publisher.publishAsync('ids/a', 'older', { qos: 1 });
    const older = await published(first, 'older');
    // not acknowledged: the session keeps it, and the next connection gets it again with its identifier
    first.end();
    await first.waitClosed();
    const second = await connect('ids-subscriber');
    expect(await published(second, 'older')).toMatchObject({ messageId: older.messageId, dup: true });
    await publisher.publishAsync('ids/a', 'newer', { qos: 1 });
    const newer = await published(second, 'newer');
    expect(newer.messageId).not.toBe(older.messageId);
    second.send({ cmd: 'puback', messageId: newer.messageId });
    await new Promise((resolve) => setTimeout(resolve, 300));
    second.end();
    await second.waitClosed();
    // the older one is still the session's: sent again, once; the newer one is not
    const third = await connect('ids-subscriber');
    expect(await published(third, 'older')).toMatchObject({ messageId: older.messageId, dup: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(third.packets.filter((packet) => packet.cmd === 'publish').map((packet) => String(packet.payload))).toEqual(['older']);
    publisher.end(true);
  });
});

describe('a clean-session CONNECT of a client whose persistent session holds messages', () => {
  let daemon: TestDaemon;
  const raws: RawMqtt[] = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
  });
  afterAll(async () => {
    for (const raw of raws) raw.end();
    await daemon.cleanup();
  });

  const connect = async (clientId: string, clean: boolean) => {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raws.push(raw);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 30 });
    return { raw, connack: await raw.waitFor((packet) => packet.cmd === 'connack') };
  };

  it('discards the session at once, its queued messages too (MQTT-3.1.2-6): a persistent CONNECT right after finds none (Session Present 0)', async () => {
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'discard-publisher' });
    const { raw: first } = await connect('discarded', false);
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'discard/#', qos: 1 }] });
    await first.waitFor((packet) => packet.cmd === 'suback');
    // sent and never acknowledged, and queued while away
    for (let index = 0; index < 30; index++) await publisher.publishAsync('discard/a', `sent ${index}`, { qos: 1 });
    await first.waitFor((packet) => String(packet.payload) === 'sent 29');
    first.end();
    await first.waitClosed();
    for (let index = 0; index < 30; index++) await publisher.publishAsync('discard/a', `queued ${index}`, { qos: 1 });
    const { raw: clean, connack: cleanConnack } = await connect('discarded', true);
    expect(cleanConnack).toMatchObject({ returnCode: 0, sessionPresent: false });
    clean.send({ cmd: 'disconnect' });
    await clean.waitClosed();
    const { raw: resumed, connack } = await connect('discarded', false);
    expect(connack).toMatchObject({ returnCode: 0, sessionPresent: false });
    resumed.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'discard/#', qos: 1 }] });
    await resumed.waitFor((packet) => packet.cmd === 'suback');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(resumed.packets.filter((packet) => packet.cmd === 'publish').map((packet) => String(packet.payload))).toEqual([]);
    publisher.end(true);
  });
});
