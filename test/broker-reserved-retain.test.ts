import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, messagesWithin } from './helpers/mqtt.js';
import { ShadowMqttClient, http } from './helpers/shadow.js';

// AWS IoT: "You can't publish to a reserved topic with the RETAIN flag set" (developer guide, MQTT
// retained messages). Kept, a retained shadow update would be replayed to each later subscriber.
describe('a retained publish to a reserved topic', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, http: { auth: 'none' } } });
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('is acknowledged and dropped (counted): not kept for later subscribers, not delivered, not taken by the shadow service', async () => {
    const live = await connectClient(daemon.mqttUrl, { clientId: 'reserved-live' });
    await live.subscribeAsync('$aws/things/lamp/shadow/update', { qos: 1 });
    const delivered = messagesWithin(live, 1500);
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'reserved-publisher' });
    await publisher.publishAsync('$aws/things/lamp/shadow/update', JSON.stringify({ state: { reported: { on: true } } }), { qos: 1, retain: true });
    expect(await delivered).toEqual([]);
    const later = await connectClient(daemon.mqttUrl, { clientId: 'reserved-later' });
    const replayed = messagesWithin(later, 1000);
    await later.subscribeAsync('$aws/things/lamp/shadow/update', { qos: 1 });
    expect(await replayed).toEqual([]);
    const shadow = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId: 'reserved-shadow' }, ['$aws/things/lamp/shadow/get/+', '$aws/things/lamp/shadow/update/+']);
    expect(await shadow.request('$aws/things/lamp/shadow/get')).toMatchObject({ outcome: 'rejected', body: { code: 404 } });
    // the same, not retained, is a shadow update; a retained publish elsewhere is kept
    expect(await shadow.request('$aws/things/lamp/shadow/update', { state: { reported: { on: false } } })).toMatchObject({ outcome: 'accepted' });
    await publisher.publishAsync('lamps/lamp/state', 'on', { qos: 1, retain: true });
    const kept = messagesWithin(later, 1000);
    await later.subscribeAsync('lamps/lamp/state', { qos: 1 });
    expect(await kept).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_dropped_total\{reason="not_authorized"\} 1/);
    for (const client of [live, publisher, later]) client.end(true);
    shadow.end();
  });

  it('as a will, is refused with the connection (CONNACK 5)', async () => {
    await expect(connectClient(daemon.mqttUrl, {
      clientId: 'reserved-will', reconnectPeriod: 0,
      will: { topic: '$aws/things/lamp/shadow/update', payload: Buffer.from('{"state":{"reported":{"online":false}}}'), qos: 1, retain: true },
    })).rejects.toMatchObject({ code: 5 });
  });

  it('over the data plane\'s Publish is refused with 400 InvalidRequestException', async () => {
    const response = await http(daemon.port('http'), 'POST', `/topics/${encodeURIComponent('$aws/things/lamp/shadow/update')}?qos=1&retain=true`, '{"state":{"reported":{"on":true}}}');
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-ErrorType')).toBe('InvalidRequestException');
    expect(response.body.message).toMatch(/reserved topic/);
  });
});
