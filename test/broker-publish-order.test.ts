import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, collectMessages, connectClient } from './helpers/mqtt.js';

// A message with an offline persistent session among its subscribers is handed to the live ones only
// once it is queued for that session in SQLite; messages published at the same moment overtake it.
// Every live subscriber still gets every message.
describe('messages overtaken by later ones on their way to live subscribers', () => {
  let daemon: TestDaemon;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/things/#'], subscribe: ['#', '$aws/things/#'] } }, http: { auth: 'none' } } });
  });
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await daemon.cleanup();
  });

  /** A persistent session subscribed to `filter` at QoS 1, gone offline. */
  async function offlineSession(clientId: string, filter: string): Promise<void> {
    const client = await connectClient(daemon.mqttUrl, { clientId, clean: false });
    await client.subscribeAsync(filter, { qos: 1 });
    await client.endAsync();
  }
  async function liveSubscriber(clientId: string, filter: string): Promise<MqttClient> {
    const client = await connectClient(daemon.mqttUrl, { clientId });
    clients.push(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return client;
  }

  it('delivers a shadow update\'s /delta to a live wildcard subscriber while an offline session holds /update/delta', async () => {
    await offlineSession('lamp-offline', '$aws/things/lamp/shadow/update/delta');
    const live = await liveSubscriber('lamp-watcher', '$aws/things/lamp/shadow/update/+');
    const answers = collectMessages(live, 3);
    const device = await connectClient(daemon.mqttUrl, { clientId: 'lamp-app' });
    clients.push(device);
    await device.publishAsync('$aws/things/lamp/shadow/update', JSON.stringify({ state: { desired: { on: true } } }), { qos: 1 });
    const topics = (await answers).map((message) => message.topic.replace('$aws/things/lamp/shadow/', ''));
    expect(topics.sort()).toEqual(['update/accepted', 'update/delta', 'update/documents']);
  });

  it('still delivers a message once to a client whose filters overlap on it (MQTT-3.3.5-1), at the highest QoS they grant', async () => {
    const overlapping = await connectClient(daemon.mqttUrl, { clientId: 'overlap-watcher' });
    clients.push(overlapping);
    await overlapping.subscribeAsync({ 'ov/#': { qos: 1 }, 'ov/b': { qos: 0 }, '+/b': { qos: 1 } });
    // every message that arrives, however close together, for the whole wait
    const arrived: Array<[string, number]> = [];
    overlapping.on('message', (_topic, payload, packet) => arrived.push([payload.toString(), packet.qos]));
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'overlap-publisher' });
    clients.push(publisher);
    for (const qos of [0, 1, 2] as const) await publisher.publishAsync('ov/b', `at ${qos}`, { qos });
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(arrived).toEqual([['at 0', 0], ['at 1', 1], ['at 2', 1]]);
  });

  it('delivers every one of messages published at once when the first has an offline subscriber', async () => {
    await offlineSession('order-offline', 'order/1');
    const live = await liveSubscriber('order-watcher', 'order/+');
    const received = collectMessages(live, 3);
    // HTTP Publish: three QoS 1 messages, each acknowledged, at the same moment
    const published = await Promise.all([1, 2, 3].map((n) => fetch(`http://127.0.0.1:${daemon.port('http')}/topics/order%2F${n}?qos=1`, { method: 'POST', body: `m${n}` })));
    expect(published.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect((await received).map((message) => message.payload).sort()).toEqual(['m1', 'm2', 'm3']);
    // and the offline session gets its own on return
    const back = await connectClient(daemon.mqttUrl, { clientId: 'order-offline', clean: false });
    clients.push(back);
    expect((await collectMessages(back, 1)).map((message) => [message.topic, message.payload])).toEqual([['order/1', 'm1']]);
  });
});

describe('a persistent QoS 2 subscriber whose connections take its session over while messages flow', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#'], subscribe: ['#'] } } } });
  });
  afterAll(async () => {
    await daemon.cleanup();
  });

  it('gets every message exactly once (MQTT-4.3.3) and in the order published (MQTT-4.6.0-6), those in flight at each takeover first', async () => {
    const MESSAGES = 400;
    // the client's side of QoS 2: a message is new unless its packet identifier awaits a PUBREL
    const awaitingRelease = new Set<number>();
    const received: number[] = [];
    /** A connection of the session that answers as a client does, until its socket is paused (it goes silent, half-open). */
    const connectSubscriber = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.socket.on('data', () => {
        for (const packet of raw.packets.splice(0)) {
          if (packet.cmd === 'publish') {
            if (!awaitingRelease.has(packet.messageId)) {
              awaitingRelease.add(packet.messageId);
              received.push(Number(packet.payload));
            }
            raw.send({ cmd: 'pubrec', messageId: packet.messageId });
          } else if (packet.cmd === 'pubrel') {
            awaitingRelease.delete(packet.messageId);
            raw.send({ cmd: 'pubcomp', messageId: packet.messageId });
          }
        }
      });
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'q2-roamer', keepalive: 60 });
      return raw;
    };
    // a session of its own, stored
    const first = await connectSubscriber();
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'roam/#', qos: 2 }] });
    for (let waited = 0; waited < 5000 && !first.packets.length && !first.closed; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));

    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'q2-publisher' });
    const completed: Array<Promise<unknown>> = [];
    let current = first;
    const connections = [first];
    for (let i = 1; i <= MESSAGES; i++) {
      completed.push(publisher.publishAsync('roam/x', String(i), { qos: 2 }));
      if (i % 50 === 25) {
        current.socket.pause();
        current = await connectSubscriber();
        connections.push(current);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(completed);
    for (let waited = 0; waited < 10_000 && received.length < MESSAGES; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    // a little longer, for a duplicate that would follow
    await new Promise((resolve) => setTimeout(resolve, 300));
    publisher.end(true);
    for (const connection of connections) connection.end();
    expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
  });
});
