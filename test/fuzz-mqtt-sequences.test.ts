import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, connectClient } from './helpers/mqtt.js';

// Valid but unusual packet sequences a fuzzing campaign found answered wrongly.
describe('MQTT sequences found by fuzzing', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#'], subscribe: ['a/#', 'b', 'r/#'] } } } });
  });
  afterAll(async () => { await daemon?.cleanup(); });

  async function suback(clientId: string, subscriptions: Array<{ topic: string; qos: number }>): Promise<number[] | undefined> {
    const raw = await RawMqtt.open(daemon.port('mqtt'));
    try {
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 });
      raw.send({ cmd: 'subscribe', messageId: 7, subscriptions });
      return (await raw.waitFor((packet) => packet.cmd === 'suback'))?.granted;
    } finally {
      raw.end();
    }
  }

  // MQTT-3.9.3-1: one return code per filter, in order, a filter named twice in one SUBSCRIBE too
  it('answers a SUBSCRIBE naming a filter twice with a return code for each of its filters', async () => {
    expect(await suback('twice', [{ topic: 'a/x', qos: 0 }, { topic: 'a/x', qos: 1 }])).toEqual([0, 1]);
    expect(await suback('twice-between', [{ topic: 'a/+', qos: 2 }, { topic: 'b', qos: 1 }, { topic: 'a/+', qos: 0 }, { topic: 'c', qos: 1 }])).toEqual([2, 1, 0, 0x80]);
    expect(await suback('twice-refused', [{ topic: 'c', qos: 1 }, { topic: 'b', qos: 2 }, { topic: 'c', qos: 0 }])).toEqual([0x80, 2, 0x80]);
  });

  it('delivers at the QoS of the last entry of a filter named twice, which replaced the first (MQTT-3.8.4-3), once', async () => {
    const subscriber = await RawMqtt.open(daemon.port('mqtt'));
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'twice-pub' });
    try {
      subscriber.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'twice-sub', keepalive: 30 });
      subscriber.send({ cmd: 'subscribe', messageId: 8, subscriptions: [{ topic: 'r/x', qos: 2 }, { topic: 'r/x', qos: 1 }] });
      expect((await subscriber.waitFor((packet) => packet.cmd === 'suback'))?.granted).toEqual([2, 1]);
      await publisher.publishAsync('r/x', 'once', { qos: 2 });
      await publisher.publishAsync('r/x', 'marker', { qos: 1 });
      await subscriber.waitFor((packet) => packet.cmd === 'publish' && packet.payload.toString() === 'marker');
      const delivered = subscriber.packets.filter((packet) => packet.cmd === 'publish').map((packet) => ({ payload: packet.payload.toString(), qos: packet.qos }));
      expect(delivered).toEqual([{ payload: 'once', qos: 1 }, { payload: 'marker', qos: 1 }]);
    } finally {
      subscriber.end();
      publisher.end(true);
    }
  });

  // MQTT-3.1.4-2: the CONNECT of a client id that is connected closes that connection, also when two arrive at once
  it('keeps one connection per client id when ten CONNECTs take it over at once, five times over', async () => {
    const port = daemon.port('mqtt');
    const connectAs = async (clean: boolean) => {
      const raw = await RawMqtt.open(port);
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId: 'taken', keepalive: 30 });
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/taken', qos: 0 }, { topic: 'a/taken/+', qos: 1 }] });
      return raw;
    };
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'taken-pub' });
    const opened: RawMqtt[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        const holder = await connectAs(true);
        opened.push(holder);
        expect(await holder.waitFor((packet) => packet.cmd === 'suback'), `round ${round}`).toBeDefined();
        const newcomers = await Promise.all(Array.from({ length: 10 }, (_, index) => connectAs(index % 2 === 0)));
        opened.push(...newcomers);
        for (const newcomer of newcomers) await newcomer.waitFor((packet) => packet.cmd === 'suback');
        expect(await holder.waitClosed(), `round ${round}: the holder closed`).toBe(true);
        await publisher.publishAsync('a/taken', `round ${round}`, { qos: 1 });
        await publisher.publishAsync('a/taken/end', `end ${round}`, { qos: 1 });
        // the newcomer the other took over is closed, at the latest once it reads what it was sent
        await Promise.all(newcomers.map((newcomer) => newcomer.waitFor((packet) => packet.cmd === 'publish' && packet.payload.toString() === `end ${round}`, 1000)));
        const open = newcomers.filter((newcomer) => !newcomer.closed);
        expect(open.length, `round ${round}: connections open with the id`).toBe(1);
        const received = newcomers.filter((newcomer) => newcomer.packets.some((packet) => packet.cmd === 'publish' && packet.payload.toString() === `round ${round}`));
        expect(received, `round ${round}: connections served the message`).toEqual(open);
        for (const newcomer of newcomers) newcomer.end();
        await Promise.all(newcomers.map((newcomer) => newcomer.waitClosed()));
      }
    } finally {
      for (const raw of opened) raw.end();
      publisher.end(true);
    }
  });
});
