import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { adminRequest, collectMessages, connectAndCollect, connectClient, messagesWithin, mosquittoClient } from './helpers/mqtt.js';

// MQTT-3.3.5-1: a publication matching several of a client's filters is delivered once, at the highest
// QoS they grant (at most the publication's); aedes alone sends it at the QoS of the filter equal to the topic.
describe('overlapping subscriptions', () => {
  let daemon: TestDaemon;
  let publisher: MqttClient;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    publisher = await connectClient(daemon.mqttUrl, { clientId: 'overlap-publisher' });
  });
  afterAll(async () => {
    publisher.end(true);
    await daemon.cleanup();
  });

  /** The one copy of a QoS `qos` publication to `topic` the subscriber gets (its topic and QoS), no second one following it. */
  async function deliveredOnce(subscriber: MqttClient, topic: string, qos: 0 | 1 | 2) {
    const message = collectMessages(subscriber, 1);
    await publisher.publishAsync(topic, `at ${qos}`, { qos });
    const [delivered] = await message;
    expect(await messagesWithin(subscriber, 300)).toEqual([]);
    return { topic: delivered.topic, qos: delivered.qos };
  }
  async function subscribe(client: MqttClient, filters: Record<string, 0 | 1 | 2>): Promise<void> {
    const granted = await client.subscribeAsync(Object.fromEntries(Object.entries(filters).map(([filter, qos]) => [filter, { qos }])));
    expect(granted.map((grant) => grant.qos)).toEqual(Object.values(filters));
  }

  it('delivers a QoS 1 publication once at QoS 1 to a client holding a/b at QoS 0 and a/# at QoS 1, whichever came first', async () => {
    const exactFirst = await connectClient(daemon.mqttUrl, { clientId: 'overlap-exact-first' });
    await subscribe(exactFirst, { 'ov1/b': 0 });
    await subscribe(exactFirst, { 'ov1/#': 1 });
    expect(await deliveredOnce(exactFirst, 'ov1/b', 1)).toEqual({ topic: 'ov1/b', qos: 1 });
    const wildcardFirst = await connectClient(daemon.mqttUrl, { clientId: 'overlap-wildcard-first' });
    await subscribe(wildcardFirst, { 'ov2/#': 1 });
    await subscribe(wildcardFirst, { 'ov2/b': 0 });
    expect(await deliveredOnce(wildcardFirst, 'ov2/b', 1)).toEqual({ topic: 'ov2/b', qos: 1 });
    const together = await connectClient(daemon.mqttUrl, { clientId: 'overlap-together' });
    await subscribe(together, { 'ov3/b': 0, 'ov3/+': 2 });
    expect(await deliveredOnce(together, 'ov3/b', 2)).toEqual({ topic: 'ov3/b', qos: 2 });
    // never more than the publication's QoS, nor than the highest grant (MQTT-3.8.4-6)
    expect(await deliveredOnce(together, 'ov3/b', 0)).toEqual({ topic: 'ov3/b', qos: 0 });
    await subscribe(together, { 'ov3/+': 1 });
    expect(await deliveredOnce(together, 'ov3/b', 2)).toEqual({ topic: 'ov3/b', qos: 1 });
    for (const client of [exactFirst, wildcardFirst, together]) client.end(true);
  });

  it('goes back to the exact filter\'s QoS once the wildcard is unsubscribed or subscribed again lower, and follows a new grant of the exact filter', async () => {
    const alone = await connectClient(daemon.mqttUrl, { clientId: 'overlap-alone' });
    await subscribe(alone, { 'ov4/b': 0 });
    expect(await deliveredOnce(alone, 'ov4/b', 1)).toEqual({ topic: 'ov4/b', qos: 0 });
    await subscribe(alone, { 'ov4/#': 1 });
    expect(await deliveredOnce(alone, 'ov4/b', 1)).toEqual({ topic: 'ov4/b', qos: 1 });
    await alone.unsubscribeAsync('ov4/#');
    expect(await deliveredOnce(alone, 'ov4/b', 1)).toEqual({ topic: 'ov4/b', qos: 0 });
    // the wildcard again, then again at QoS 0 (MQTT-3.8.4-3: it replaces the subscription)
    await subscribe(alone, { 'ov4/#': 2 });
    expect(await deliveredOnce(alone, 'ov4/b', 2)).toEqual({ topic: 'ov4/b', qos: 2 });
    await subscribe(alone, { 'ov4/#': 0 });
    expect(await deliveredOnce(alone, 'ov4/b', 2)).toEqual({ topic: 'ov4/b', qos: 0 });
    // the exact filter raised to the QoS the wildcard gives, then the wildcard gone: the exact filter's own grant stays
    await subscribe(alone, { 'ov4/#': 1 });
    await subscribe(alone, { 'ov4/b': 1 });
    await alone.unsubscribeAsync('ov4/#');
    expect(await deliveredOnce(alone, 'ov4/b', 2)).toEqual({ topic: 'ov4/b', qos: 1 });
    await subscribe(alone, { 'ov4/b': 0 });
    expect(await deliveredOnce(alone, 'ov4/b', 1)).toEqual({ topic: 'ov4/b', qos: 0 });
    alone.end(true);
  });

  it('delivers at the highest grant to a persistent session, live and queued while it was away, and keeps nothing it acknowledged', async () => {
    const options = { clientId: 'overlap-persistent', clean: false };
    const first = await connectClient(daemon.mqttUrl, options);
    await subscribe(first, { 'ov5/b': 0, 'ov5/#': 1 });
    expect(await deliveredOnce(first, 'ov5/b', 1)).toEqual({ topic: 'ov5/b', qos: 1 });
    await first.endAsync();
    await publisher.publishAsync('ov5/b', 'while away', { qos: 1 });
    const { client: back, messages } = connectAndCollect(daemon.mqttUrl, options, 1);
    // only the message queued while away: the live one was acknowledged
    expect((await messages).map(({ payload, qos }) => [payload, qos])).toEqual([['while away', 1]]);
    expect(await messagesWithin(back, 300)).toEqual([]);
    // the filters restored with the session
    expect(await deliveredOnce(back, 'ov5/b', 1)).toEqual({ topic: 'ov5/b', qos: 1 });
    await back.endAsync();
    const { client: again, messages: none } = connectAndCollect(daemon.mqttUrl, options, 1, 500);
    await expect(none).rejects.toThrow(/got 0 of 1/);
    again.end(true);
  });

  it('sends a retained message on SUBSCRIBE at the QoS the new filter grants (MQTT-3.8.4-6), once', async () => {
    await publisher.publishAsync('ov6/b', 'kept', { qos: 1, retain: true });
    const retainedOn = async (client: MqttClient, filters: Record<string, 0 | 1 | 2>) => {
      const message = collectMessages(client, 1);
      await subscribe(client, filters);
      const [retained] = await message;
      expect(await messagesWithin(client, 300)).toEqual([]);
      return [retained.topic, retained.qos, retained.retain];
    };
    const exactFirst = await connectClient(daemon.mqttUrl, { clientId: 'overlap-retained-exact' });
    expect(await retainedOn(exactFirst, { 'ov6/b': 0 })).toEqual(['ov6/b', 0, true]);
    expect(await retainedOn(exactFirst, { 'ov6/#': 1 })).toEqual(['ov6/b', 1, true]);
    const wildcardFirst = await connectClient(daemon.mqttUrl, { clientId: 'overlap-retained-wildcard' });
    expect(await retainedOn(wildcardFirst, { 'ov6/#': 1 })).toEqual(['ov6/b', 1, true]);
    expect(await retainedOn(wildcardFirst, { 'ov6/b': 0 })).toEqual(['ov6/b', 0, true]);
    expect(await retainedOn(wildcardFirst, { 'ov6/+': 0 })).toEqual(['ov6/b', 0, true]);
    // two filters of one SUBSCRIBE matching it: one copy, at the higher grant (MQTT-3.3.5-1)
    const together = await connectClient(daemon.mqttUrl, { clientId: 'overlap-retained-together' });
    expect(await retainedOn(together, { 'ov6/b': 0, 'ov6/#': 1 })).toEqual(['ov6/b', 1, true]);
    for (const client of [exactFirst, wildcardFirst, together]) client.end(true);
  });

  it('has no MQTT 5 client to serve: the broker speaks MQTT 3.1.1, and answers an MQTT 5 CONNECT with CONNACK 0x01 (MQTT-3.1.2-2)', async () => {
    const refused = await connectClient(daemon.mqttUrl, { clientId: 'overlap-v5', protocolVersion: 5 }).then(() => undefined, (error: unknown) => error);
    expect(refused).toMatchObject({ code: 1 });
  });

  it('gets mosquitto_sub the QoS 1 publication at QoS 1 through its QoS 1 and QoS 0 filters', async () => {
    // mosquitto_sub subscribes every -t at the one -q: two runs of one persistent session hold both grants
    const args = ['-h', '127.0.0.1', '-p', String(daemon.port('mqtt')), '-i', 'overlap-mosquitto', '-c', '-V', 'mqttv311'];
    expect((await mosquittoClient('mosquitto_sub', [...args, '-t', 'ov7/#', '-q', '1', '-E'])).code).toBe(0);
    const subscriber = mosquittoClient('mosquitto_sub', [...args, '-t', 'ov7/b', '-q', '0', '-C', '1', '-W', '10', '-F', '%t %q %p']);
    const holdsBoth = async () => {
      const listed = await adminRequest(daemon.socket, 'GET', '/v1/clients');
      const clients = JSON.parse(listed?.body ?? '{}').clients as Array<{ id: string; subscriptions: string[] }> | undefined;
      return clients?.find((client) => client.id === 'overlap-mosquitto')?.subscriptions.length === 2;
    };
    await eventually(holdsBoth, 8000);
    await publisher.publishAsync('ov7/b', 'from mqtt.js', { qos: 1 });
    const { code, stdout } = await subscriber;
    expect([code, stdout.trim()]).toEqual([0, 'ov7/b 1 from mqtt.js']);
  });
});
