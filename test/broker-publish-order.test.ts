import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { collectMessages, connectClient } from './helpers/mqtt.js';

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
