import { createHash, randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient } from './helpers/mqtt.js';

// A QoS 0 message of 1 KiB or more is encoded once for all its subscribers and written to each
// socket by reference, beside the packets encoded for one subscriber alone (QoS 1 ones carry their
// own packet identifier, retained ones the RETAIN flag): each subscriber must still get exactly its own.
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

interface Received { topic: string; digest: string; qos: number; retain: boolean }

function collect(client: MqttClient, count: number): Promise<Received[]> {
  const received: Received[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${received.length} of ${count} messages`)), 20_000);
    client.on('message', (topic, payload, packet) => {
      received.push({ topic, digest: md5(payload), qos: packet.qos, retain: packet.retain });
      if (received.length === count) {
        clearTimeout(timer);
        resolve(received);
      }
    });
  });
}

describe('broker: one message to many subscribers', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('gives each subscriber every message whole, with its own QoS, topic and RETAIN flag, small and large, shared or not', async () => {
    const exact = await connectClient(daemon.mqttUrl, { clientId: 'exact' });
    const wildcard = await connectClient(daemon.mqttUrl, { clientId: 'wildcard' });
    const qos1 = await connectClient(daemon.mqttUrl, { clientId: 'qos1' });
    await exact.subscribeAsync('fan/out/a', { qos: 0 });
    await wildcard.subscribeAsync('fan/#', { qos: 0 });
    await qos1.subscribeAsync('fan/+/a', { qos: 1 });
    const messages = Array.from({ length: 40 }, (_, index) => ({
      topic: index % 5 === 4 ? 'fan/other/a' : 'fan/out/a',
      payload: randomBytes([10, 1023, 1024, 4096, 70_000][index % 5] + index),
      qos: (index % 3 === 0 ? 1 : 0) as 0 | 1,
    }));
    const toExact = messages.filter((message) => message.topic === 'fan/out/a');
    const got = { exact: collect(exact, toExact.length), wildcard: collect(wildcard, messages.length), qos1: collect(qos1, messages.length) };
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'fan-publisher' });
    // many at once: several land in one event-loop turn, so batches mix shared and own encodings
    await Promise.all(messages.map((message) => publisher.publishAsync(message.topic, message.payload, { qos: message.qos })));
    const expected = (list: typeof messages, subscribed: 0 | 1) => list.map((message) => ({
      topic: message.topic, digest: md5(message.payload), qos: Math.min(message.qos, subscribed), retain: false,
    }));
    const byDigest = (list: Received[]) => [...list].sort((a, b) => a.digest.localeCompare(b.digest));
    // QoS 0 and QoS 1 messages from one publisher may pass each other on their way: compare as sets
    expect(byDigest(await got.exact)).toEqual(byDigest(expected(toExact, 0)));
    expect(byDigest(await got.wildcard)).toEqual(byDigest(expected(messages, 0)));
    expect(byDigest(await got.qos1)).toEqual(byDigest(expected(messages, 1)));

    // a large retained message: live subscribers get it with RETAIN 0, a later one with RETAIN 1
    const retained = randomBytes(50_000);
    const live = collect(wildcard, 1);
    await publisher.publishAsync('fan/kept', retained, { qos: 0, retain: true });
    expect(await live).toEqual([{ topic: 'fan/kept', digest: md5(retained), qos: 0, retain: false }]);
    const late = await connectClient(daemon.mqttUrl, { clientId: 'late' });
    const lateGot = collect(late, 1);
    await late.subscribeAsync('fan/kept', { qos: 0 });
    expect(await lateGot).toEqual([{ topic: 'fan/kept', digest: md5(retained), qos: 0, retain: true }]);
    for (const client of [exact, wildcard, qos1, publisher, late]) client.end(true);
  }, 60_000);
});
