import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, connectClient } from './helpers/mqtt.js';

// The broker parses complete PUBLISH and PUBACK packets itself and leaves the
// rest to mqtt-packet (src/broker/handlers/incoming-parse.ts): these tests
// write packets at every kind of read boundary and check that what arrives is
// exactly what was sent, and that the limits and errors still apply.
const MAX_PACKET = 2048;

interface Sent { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean; messageId?: number }

function publishes(): Sent[] {
  const sent: Sent[] = [];
  for (let i = 0; i < 60; i++) {
    const qos = (i % 3) as 0 | 1 | 2;
    const topic = i % 7 === 0 ? `parse/ünïcödé/${i}` : `parse/t/${i}`;
    const size = [0, 1, 127, 128, 1500][i % 5];
    sent.push({ topic, payload: Buffer.alloc(size, i), qos, retain: false, ...(qos > 0 ? { messageId: 100 + i } : {}) });
  }
  return sent;
}

const encode = (message: Sent) => mqttPacket.generate({ cmd: 'publish', dup: false, ...message });

describe('broker packet parsing', () => {
  let daemon: TestDaemon;
  let subscriber: MqttClient;
  const received: Array<{ topic: string; payload: Buffer }> = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxPacketSize: MAX_PACKET } } });
    subscriber = await connectClient(daemon.mqttUrl, { clientId: 'parse-observer' });
    subscriber.on('message', (topic, payload) => received.push({ topic, payload }));
    await subscriber.subscribeAsync('parse/#', { qos: 2 });
  });

  afterAll(async () => {
    subscriber?.end(true);
    await daemon.cleanup();
  });

  async function connectRaw(clientId: string): Promise<RawMqtt> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 });
    expect(await raw.waitFor((packet) => packet.cmd === 'connack')).toMatchObject({ returnCode: 0 });
    return raw;
  }

  async function receivedCount(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (received.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  for (const [name, chunkSizes] of [
    ['in one write', [1 << 20]],
    ['a byte at a time', [1]],
    ['split at odd places', [3, 700, 5, 1, 2000, 64]],
  ] as const) {
    it(`delivers every PUBLISH exactly and acknowledges each one, packets written ${name}`, async () => {
      received.length = 0;
      const raw = await connectRaw(`parse-${chunkSizes.join('-')}`);
      const sent = publishes();
      const stream = Buffer.concat(sent.map(encode));
      for (let offset = 0, turn = 0; offset < stream.length; turn++) {
        const size = chunkSizes[turn % chunkSizes.length];
        raw.socket.write(stream.subarray(offset, offset + size));
        offset += size;
        if (chunkSizes.length > 1 || size === 1) await new Promise((resolve) => setImmediate(resolve));
      }
      await receivedCount(sent.length);
      // Each message has a topic of its own, so only the content is compared, not the order across topics.
      expect(received).toHaveLength(sent.length);
      const byTopic = new Map(received.map((message) => [message.topic, message.payload]));
      expect([...byTopic.keys()].sort()).toEqual(sent.map((message) => message.topic).sort());
      for (const message of sent) expect(byTopic.get(message.topic)!.equals(message.payload)).toBe(true);
      const acked = async (cmd: string, qos: number) => {
        const ids = sent.filter((message) => message.qos === qos).map((message) => message.messageId);
        await raw.waitFor(() => raw.packets.filter((packet) => packet.cmd === cmd).length >= ids.length);
        return raw.packets.filter((packet) => packet.cmd === cmd).map((packet) => packet.messageId);
      };
      expect(await acked('puback', 1)).toEqual(sent.filter((message) => message.qos === 1).map((message) => message.messageId));
      expect(await acked('pubrec', 2)).toEqual(sent.filter((message) => message.qos === 2).map((message) => message.messageId));
      expect(raw.closed).toBe(false);
      raw.end();
    });
  }

  it('closes the connection of a complete PUBLISH over the size limit, after delivering the one before it', async () => {
    received.length = 0;
    const raw = await connectRaw('parse-oversize');
    const fine: Sent = { topic: 'parse/before-oversize', payload: Buffer.from('fine'), qos: 1, retain: false, messageId: 1 };
    const oversize: Sent = { topic: 'parse/oversize', payload: Buffer.alloc(MAX_PACKET), qos: 0, retain: false };
    raw.socket.write(Buffer.concat([encode(fine), encode(oversize)]));
    expect(await raw.waitClosed()).toBe(true);
    await receivedCount(1);
    expect(received.map((message) => message.topic)).toEqual(['parse/before-oversize']);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="packet_too_large"\} 1/);
  });

  it('closes the connection of a PUBLISH with both QoS bits set (MQTT-3.3.1-4) and of a PUBACK with reserved flag bits (MQTT-2.2.2-2)', async () => {
    for (const bad of [Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]), Buffer.from([0x42, 0x02, 0x00, 0x01])]) {
      const raw = await connectRaw('parse-malformed');
      raw.socket.write(bad);
      expect(await raw.waitClosed()).toBe(true);
    }
    const still = await connectClient(daemon.mqttUrl, { clientId: 'parse-after-malformed' });
    await still.publishAsync('parse/after', 'ok', { qos: 1 });
    still.end(true);
  });

  it('closes the connection of packets mqtt-packet takes but MQTT 3.1.1 forbids, on either parser, and delivers none of them', async () => {
    const publish = (topic: Buffer, flags: number, messageId?: number) => {
      const id = messageId === undefined ? Buffer.alloc(0) : Buffer.from([messageId >> 8, messageId & 0xff]);
      const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, id, Buffer.from('x')]);
      return Buffer.concat([Buffer.from([0x30 | flags, body.length]), body]);
    };
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'parse/elsewhere', qos: 0 }] });
    const violations: Array<[string, Buffer]> = [
      ['ill-formed UTF-8 in a topic (MQTT-1.5.3-1)', publish(Buffer.from([0x70, 0x61, 0x72, 0x73, 0x65, 0x2f, 0xff, 0xfe]), 0)],
      ['U+0000 in a topic (MQTT-1.5.3-2)', publish(Buffer.from('parse/a\u0000b'), 2, 7)],
      ['DUP on QoS 0 (MQTT-3.3.1-2)', publish(Buffer.from('parse/dup0'), 0x08)],
      ['packet identifier 0 (MQTT-2.3.1-1)', publish(Buffer.from('parse/id0'), 2, 0)],
      ['UNSUBSCRIBE without a filter (MQTT-3.10.3-2)', Buffer.from([0xa2, 0x02, 0x00, 0x05])],
      ['ill-formed UTF-8 in a filter', Buffer.from([0x82, 0x09, 0x00, 0x0a, 0x00, 0x04, 0x70, 0x2f, 0xc3, 0x28, 0x00])],
      // mqtt-packet read the missing identifier from the next packet's bytes, or as -1 (PUBACK 65535), and took the rest as the payload
      ['QoS 1 PUBLISH without its packet identifier (MQTT-3.3.2)', Buffer.concat([Buffer.from([0x33, 0x0b, 0x00, 0x09]), Buffer.from('parse/noid')])],
      ['QoS 1 PUBLISH without its packet identifier, a PINGREQ after it', Buffer.concat([Buffer.from([0x33, 0x0b, 0x00, 0x09]), Buffer.from('parse/noid'), Buffer.from([0xc0, 0x00])])],
      ['PUBACK without its packet identifier', Buffer.from([0x40, 0x00])],
      ['PUBREC with packet identifier 0 (MQTT-2.3.1-1)', Buffer.from([0x50, 0x02, 0x00, 0x00])],
      // MQTT-1.5.3 lets a receiver close on these; Mosquitto does, and libmosquitto subscribers drop a connection that delivers one
      ['a control character in a topic', publish(Buffer.from('parse/a\u0001b'), 2, 7)],
      ['a non-character in a topic', publish(Buffer.from('parse/a\uffffb'), 0)],
      ['a control character in a filter', mqttPacket.generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'parse/\u007f', qos: 0 }] })],
      // MQTT-4.7.1: every misplaced wildcard alike (a '+' inside a level got SUBACK 0x80, a '#' closed)
      ...['parse/a+', 'parse/+a', 'parse/#/b', 'parse/b#'].map((topic): [string, Buffer] => [`the filter ${topic}`, mqttPacket.generate({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic, qos: 0 }] })]),
      ['UNSUBSCRIBE of the filter parse/a+', mqttPacket.generate({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: ['parse/a+'] })],
    ];
    received.length = 0;
    for (const [name, bad] of violations) {
      // alone, where the broker's own parser reads a PUBLISH, and after a SUBSCRIBE in the same read, where mqtt-packet does
      for (const write of [bad, Buffer.concat([subscribe, bad])]) {
        const raw = await connectRaw('parse-violation');
        raw.socket.write(write);
        expect(await raw.waitClosed(), name).toBe(true);
      }
    }
    for (const [clientId, level] of [[Buffer.from([0x63, 0xff]), 4], [Buffer.from('parse-level-6'), 6]] as const) {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      const payload = Buffer.concat([Buffer.from([0x00, 0x04]), Buffer.from('MQTT'), Buffer.from([level, 0x02, 0x00, 0x1e, 0x00, clientId.length]), clientId]);
      raw.socket.write(Buffer.concat([Buffer.from([0x10, payload.length]), payload]));
      expect(await raw.waitClosed()).toBe(true);
      // MQTT-3.1.2-2: a protocol level the server does not support gets CONNACK 0x01 before the close
      expect(raw.packets.find((packet) => packet.cmd === 'connack')?.returnCode).toBe(level === 6 ? 1 : undefined);
    }
    const connect = (flags: number, fields: Buffer, level = 4) => {
      const body = Buffer.concat([Buffer.from([0x00, 0x04]), Buffer.from('MQTT'), Buffer.from([level, flags, 0x00, 0x1e, 0x00, 0x01, 0x63]), fields]);
      return Buffer.concat([Buffer.from([0x10, body.length]), body]);
    };
    const string = (text: string) => Buffer.concat([Buffer.from([0x00, text.length]), Buffer.from(text)]);
    for (const [name, bad, connack] of [
      ['will QoS 3 (MQTT-3.1.2-14)', connect(0x04 | 0x18, Buffer.concat([string('parse/will'), string('x')])), undefined],
      ['a password without a user name (MQTT-3.1.2-22)', connect(0x40, string('pw')), undefined],
      ['bytes after its last field', connect(0x02, Buffer.from('extra')), undefined],
      // "MQTT" is level 4: level 3 is MQTT 3.1's, named "MQIsdp"
      ['protocol name MQTT at level 3 (MQTT-3.1.2-2)', connect(0x02, Buffer.alloc(0), 3), 1],
    ] as const) {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.socket.write(bad);
      expect(await raw.waitClosed(), name).toBe(true);
      expect(raw.packets.find((packet) => packet.cmd === 'connack')?.returnCode, name).toBe(connack);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    // (the test before publishes parse/after at its end, which may arrive after the reset above)
    expect(received.filter((message) => message.topic !== 'parse/after')).toEqual([]);
  });

  it('does not pass a publisher\'s DUP flag on to subscribers (MQTT-3.3.1-3)', async () => {
    received.length = 0;
    const flags: boolean[] = [];
    const watch = (_topic: string, _payload: Buffer, packet: { dup: boolean }) => flags.push(packet.dup);
    subscriber.on('message', watch);
    const raw = await connectRaw('parse-dup');
    raw.send({ cmd: 'publish', topic: 'parse/dup1', payload: Buffer.from('again'), qos: 1, messageId: 3, dup: true, retain: false });
    await raw.waitFor((packet) => packet.cmd === 'puback');
    await receivedCount(1);
    subscriber.off('message', watch);
    raw.end();
    expect(flags).toEqual([false]);
  });
});
