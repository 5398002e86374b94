import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * An MQTT 5 cloud that announces a Receive Maximum in its CONNACK and holds the client to it
 * (MQTT-3.3.4-9): more unacknowledged QoS 1 PUBLISHes than that end the connection with
 * DISCONNECT 0x93. It acknowledges each PUBLISH 20 ms after it came, so several stay in flight.
 */
class QuotaCloud extends ScriptedCloud {
  readonly received: string[] = [];
  overruns = 0;

  constructor(private readonly receiveMaximum: number) {
    super(5);
  }

  protected connected(connection: CloudConnection) {
    let unacknowledged = 0;
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: this.receiveMaximum } });
      } else if (packet.cmd === 'publish' && packet.qos === 1) {
        if (++unacknowledged > this.receiveMaximum) {
          this.overruns++;
          connection.disconnect(0x93);
          return;
        }
        this.received.push(packet.payload.toString());
        setTimeout(() => {
          unacknowledged--;
          connection.send({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 });
        }, 20);
      }
    };
  }
}

describe('an MQTT 5 cloud with a small Receive Maximum', () => {
  let cloud: QuotaCloud;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await new QuotaCloud(5).listen();
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        // the window (maxInFlight 256 by default) is larger than the cloud takes
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-quota', protocolVersion: 5, reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', id: 'none' }] },
      },
    });
    device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
  });

  afterAll(async () => {
    device?.end(true);
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('never has more unacknowledged publishes than it allows, and delivers everything', async () => {
    await outpost(daemon.socket, ['sync', 'pause']);
    for (let i = 0; i < 60; i++) await device.publishAsync('sensors/a', String(i), { qos: 1 });
    await outpost(daemon.socket, ['sync', 'resume']);
    await eventually(async () => (await status(daemon)).outbox.items === 0 || cloud.overruns > 0, 15_000).catch(() => undefined);
    expect(cloud.overruns).toBe(0);
    expect(cloud.received).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
  });
});

/** A cloud that acknowledges each QoS 1 PUBLISH 30 ms after it came, and notes the most it had unacknowledged at once. */
class SlowAckCloud extends ScriptedCloud {
  readonly received: number[] = [];
  mostUnacknowledged = 0;

  protected connected(connection: CloudConnection) {
    let unacknowledged = 0;
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'publish' && packet.qos === 1) {
        this.mostUnacknowledged = Math.max(this.mostUnacknowledged, ++unacknowledged);
        this.received.push(packet.payload.length);
        setTimeout(() => {
          unacknowledged--;
          connection.send({ cmd: 'puback', messageId: packet.messageId });
        }, 30);
      }
    };
  }
}

describe('a cloud slow to acknowledge', () => {
  it('has at most cloud.mqtt.maxInFlightBytes of payload in flight (the one that reaches it included), and gets everything', async () => {
    const cloud = await new SlowAckCloud(4).listen();
    const daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-slow', reconnectMinMs: 100, reconnectMaxMs: 400, maxInFlightBytes: 100_000 } },
        sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', id: 'none' }] },
      },
    });
    const device = await connectClient(daemon.mqttUrl, { clientId: 'camera' });
    try {
      await outpost(daemon.socket, ['sync', 'pause']);
      for (let i = 0; i < 30; i++) await device.publishAsync('sensors/frame', Buffer.alloc(40_000, i), { qos: 1 });
      await outpost(daemon.socket, ['sync', 'resume']);
      await eventually(async () => (await status(daemon)).outbox.items === 0, 15_000);
      expect(cloud.received).toHaveLength(30);
      // 40,000 + 40,000 is under 100,000: a third goes, then none until one is acknowledged
      expect(cloud.mostUnacknowledged).toBe(3);
    } finally {
      device.end(true);
      await daemon.cleanup();
      await cloud.stop();
    }
  });
});
