import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, connectClient } from './helpers/mqtt.js';

// Packets a client writes together reach the broker in one read, and aedes hands them all to their
// handlers at once: where the spec orders their effects (src/broker/handlers/packet-order.ts), the
// ones after a SUBSCRIBE, an UNSUBSCRIBE or a PUBREL wait for the answer before them.
describe('packets of one read, handled in the order sent', () => {
  let daemon: TestDaemon;
  const clients: MqttClient[] = [];
  const raws: RawMqtt[] = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
  });
  afterAll(async () => {
    for (const raw of raws) raw.end();
    for (const client of clients) client.end(true);
    await daemon.cleanup();
  });

  async function connectRaw(clientId: string): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raws.push(raw);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 });
    expect(await raw.waitFor((packet) => packet.cmd === 'connack')).toMatchObject({ returnCode: 0 });
    return raw;
  }
  const together = (...packets: Array<Record<string, unknown>>) => Buffer.concat(packets.map((packet) => mqttPacket.generate(packet as mqttPacket.Packet)));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

  it('closes at once a connection whose first packet is a SUBSCRIBE or an UNSUBSCRIBE, not a CONNECT (MQTT-3.1.0-1)', async () => {
    for (const packet of [{ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'first/packet', qos: 0 }] }, { cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['first/packet'] }]) {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raws.push(raw);
      raw.send(packet);
      // it waited for a CONNACK until mqtt.connectTimeout (30 s), a connection place held meanwhile
      expect(await raw.waitClosed(3000), packet.cmd).toBe(true);
      expect(raw.packets, packet.cmd).toEqual([]);
    }
  });

  it('delivers nothing published after an UNSUBSCRIBE in the same read (MQTT-3.10.4-2), and what follows a SUBSCRIBE by its filter', async () => {
    for (let round = 0; round < 5; round++) {
      const raw = await connectRaw(`order-unsub-${round}`);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `order/unsub/${round}`, qos: 0 }] });
      await raw.waitFor((packet) => packet.cmd === 'suback');
      raw.socket.write(together(
        { cmd: 'unsubscribe', messageId: 2, unsubscriptions: [`order/unsub/${round}`] },
        { cmd: 'publish', topic: `order/unsub/${round}`, payload: 'after', qos: 0, dup: false, retain: false },
      ));
      await raw.waitFor((packet) => packet.cmd === 'unsuback');
      await settle();
      expect(raw.packets.filter((packet) => packet.cmd === 'publish')).toEqual([]);

      raw.socket.write(together(
        { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: `order/sub/${round}`, qos: 1 }] },
        { cmd: 'publish', topic: `order/sub/${round}`, payload: 'to itself', qos: 1, messageId: 4, dup: false, retain: false },
      ));
      const delivered = await raw.waitFor((packet) => packet.cmd === 'publish');
      expect(delivered?.payload.toString()).toBe('to itself');
      const answers = raw.packets.filter((packet) => packet.cmd !== 'connack').map((packet) => packet.cmd);
      expect(answers.indexOf('suback', 1)).toBeLessThan(answers.indexOf('publish'));
    }
  });

  it('answers a QoS 2 PUBLISH and its PUBREL sent together PUBREC then PUBCOMP, each message delivered once and the connection kept', async () => {
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'order-qos2-watcher' });
    clients.push(subscriber);
    const received: string[] = [];
    subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
    await subscriber.subscribeAsync('order/qos2', { qos: 2 });
    const raw = await connectRaw('order-qos2');
    const count = 150;
    const stream: Array<Record<string, unknown>> = [];
    for (let id = 1; id <= count; id++) {
      stream.push({ cmd: 'publish', topic: 'order/qos2', payload: `m${id}`, qos: 2, messageId: id, dup: false, retain: false });
      stream.push({ cmd: 'pubrel', messageId: id });
    }
    raw.socket.write(together(...stream));
    await raw.waitFor((packet) => packet.cmd === 'pubcomp' && packet.messageId === count, 10_000);
    const answers = raw.packets.filter((packet) => packet.cmd === 'pubrec' || packet.cmd === 'pubcomp').map((packet) => `${packet.cmd}:${packet.messageId}`);
    expect(answers).toEqual(Array.from({ length: count }, (_, i) => [`pubrec:${i + 1}`, `pubcomp:${i + 1}`]).flat());
    const deadline = Date.now() + 5000;
    while (received.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await settle();
    expect(received.sort()).toEqual(Array.from({ length: count }, (_, i) => `m${i + 1}`).sort());
    // the connection is still up: a PINGREQ is answered
    raw.send({ cmd: 'pingreq' });
    expect(await raw.waitFor((packet) => packet.cmd === 'pingresp')).toBeDefined();
  });
});
