import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
const MAXIMUM_PACKET_SIZE = 512;

/**
 * An MQTT 5 cloud that announces a Maximum Packet Size in its CONNACK and, as brokers do, ends the
 * connection with DISCONNECT 0x95 (packet too large) on a larger packet, which it counts.
 */
class SmallPacketCloud extends ScriptedCloud {
  readonly received: string[] = [];
  oversized = 0;

  constructor() {
    super(5);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { maximumPacketSize: MAXIMUM_PACKET_SIZE } });
      } else if (packet.cmd === 'publish') {
        if (mqttPacket.generate(packet, { protocolVersion: 5 }).length > MAXIMUM_PACKET_SIZE) {
          this.oversized++;
          connection.disconnect(0x95);
          return;
        }
        this.received.push(packet.payload.toString());
        if (packet.qos === 1) connection.send({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 });
      }
    };
  }
}

describe('an MQTT 5 cloud with a Maximum Packet Size', () => {
  let cloud: SmallPacketCloud;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await new SmallPacketCloud().listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-packets', protocolVersion: 5, reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', id: 'none', liveFirst: false }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
  });

  afterAll(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('dead-letters a message whose PUBLISH would exceed it, never sends it, and delivers the rest once', async () => {
    await eventually(async () => (await status(daemon)).online);
    await outpost(daemon.socket, ['sync', 'pause']);
    await device.publishAsync('sensors/a', 'before', { qos: 1 });
    await device.publishAsync('sensors/a', 'x'.repeat(600), { qos: 1 });
    await device.publishAsync('sensors/a', 'after', { qos: 1 });
    await outpost(daemon.socket, ['sync', 'resume']);
    const drained = await eventually(async () => {
      const figures = await status(daemon);
      return figures.outbox.items === 0 && figures;
    }, 15_000);
    expect(cloud.oversized).toBe(0);
    expect(cloud.received).toEqual(['before', 'after']);
    expect(drained.deadLetters).toBe(1);
    const letters = JSON.parse((await outpost(daemon.socket, ['sync', 'dlq', 'ls', '--json'])).stdout);
    expect(JSON.stringify(letters)).toMatch(/MessageTooLarge: .*Maximum Packet Size 512/);
  });
});
