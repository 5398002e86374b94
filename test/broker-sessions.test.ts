import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { addThing, connectClient } from './helpers/mqtt.js';
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
});
