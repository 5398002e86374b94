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
 * A cloud that serves the shadow topics as AWS IoT Core does for a shadow it does not have (get: 404;
 * update: accepted). Over MQTT 5 it announces a Maximum Packet Size and, as brokers do, ends the
 * connection with DISCONNECT 0x95 on a larger packet; over MQTT 3.1.1 it ends the connection on a
 * message of more topic and payload bytes, as AWS IoT Core does beyond 128 KiB. It counts them.
 */
class SmallPacketShadowCloud extends ScriptedCloud {
  oversized = 0;
  connections = 0;
  readonly updates: string[] = [];

  constructor(private readonly protocol: 4 | 5) {
    super(protocol);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        this.connections++;
        if (this.protocol === 5) connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { maximumPacketSize: MAXIMUM_PACKET_SIZE } });
        else connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'subscribe') {
        connection.send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map(() => 1) });
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      } else if (packet.cmd === 'publish') {
        const tooLarge = this.protocol === 5
          ? mqttPacket.generate(packet, { protocolVersion: 5 }).length > MAXIMUM_PACKET_SIZE
          : Buffer.byteLength(packet.topic) + Buffer.byteLength(packet.payload) > MAXIMUM_PACKET_SIZE;
        if (tooLarge) {
          this.oversized++;
          if (this.protocol === 5) connection.disconnect(0x95);
          else connection.socket.destroy();
          return;
        }
        if (packet.qos === 1) connection.send({ cmd: 'puback', messageId: packet.messageId, ...(this.protocol === 5 ? { reasonCode: 0 } : {}) });
        const { clientToken } = JSON.parse(packet.payload.toString());
        const answer = (suffix: string, body: object) => connection.send({
          cmd: 'publish', topic: `${packet.topic}/${suffix}`, payload: JSON.stringify({ ...body, clientToken }), qos: 0, retain: false, dup: false,
        });
        if (packet.topic.endsWith('/get')) answer('rejected', { code: 404, message: 'No shadow exists with name: pump-7' });
        else if (packet.topic.endsWith('/update')) {
          this.updates.push(packet.payload.toString());
          answer('accepted', { version: this.updates.length, timestamp: 1 });
        }
      }
    };
  }
}

describe.each([
  { protocol: 5 as const, limit: "the cloud's Maximum Packet Size 512", mqtt: { protocolVersion: 5 } },
  { protocol: 4 as const, limit: 'cloud.mqtt.maxMessageBytes 512', mqtt: { protocolVersion: 4, maxMessageBytes: MAXIMUM_PACKET_SIZE } },
])('shadow sync with an MQTT $protocol cloud that limits its messages to $limit', ({ protocol, limit, mqtt }) => {
  let cloud: SmallPacketShadowCloud;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await new SmallPacketShadowCloud(protocol).listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['#', '$aws/#'], subscribe: ['#', '$aws/#'] } },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-shadow-packets', ...mqtt, reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: { shadows: [{ thing: 'pump-7', direction: 'device-to-cloud' }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'pump-7' });
  });

  afterAll(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('never sends an update larger than it: the shadow says why, and the connection stays', async () => {
    const online = await eventually(async () => {
      const figures = await status(daemon);
      return figures.online && figures;
    }, 10_000);
    await device.publishAsync('$aws/things/pump-7/shadow/update', JSON.stringify({ state: { reported: { log: 'x'.repeat(600) } } }), { qos: 1 });
    const failed = await eventually(async () => {
      const figures = await status(daemon);
      return figures.shadows[0].lastError !== null && figures;
    }, 15_000);
    expect(failed.shadows[0].lastError).toContain(`larger than ${limit}`);
    // never sent (nor tried again while nothing changes): the cloud closed no connection
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(cloud.oversized).toBe(0);
    expect(cloud.connections).toBe(1);
    expect((await status(daemon)).since).toBe(online.since);

    // a change that fits goes
    await device.publishAsync('$aws/things/pump-7/shadow/update', JSON.stringify({ state: { reported: { log: 'short' } } }), { qos: 1 });
    await eventually(() => cloud.updates.some((update) => update.includes('short')), 15_000);
    await eventually(async () => (await status(daemon)).shadows[0].lastError === null, 10_000);
  }, 60_000);
});
