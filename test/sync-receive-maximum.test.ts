import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/**
 * An MQTT 5 cloud that announces a Receive Maximum in its CONNACK and holds the client to it
 * (MQTT-3.3.4-9): more unacknowledged QoS 1 PUBLISHes than that end the connection with
 * DISCONNECT 0x93. It acknowledges each PUBLISH 20 ms after it came, so several stay in flight.
 */
class QuotaCloud {
  readonly received: string[] = [];
  overruns = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(receiveMaximum: number): Promise<QuotaCloud> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const cloud = new QuotaCloud(server, (server.address() as { port: number }).port);
    server.on('connection', (socket) => {
      cloud.sockets.add(socket);
      socket.on('close', () => cloud.sockets.delete(socket));
      socket.on('error', () => undefined);
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const send = (packet: mqttPacket.Packet) => { if (!socket.destroyed) socket.write(mqttPacket.generate(packet, { protocolVersion: 5 })); };
      let unacknowledged = 0;
      parser.on('packet', (packet) => {
        if (packet.cmd === 'connect') {
          send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum } });
        } else if (packet.cmd === 'publish' && packet.qos === 1) {
          if (++unacknowledged > receiveMaximum) {
            cloud.overruns++;
            send({ cmd: 'disconnect', reasonCode: 0x93 });
            socket.end();
            return;
          }
          cloud.received.push(packet.payload.toString());
          setTimeout(() => {
            unacknowledged--;
            send({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 });
          }, 20);
        }
      });
      socket.on('data', (chunk) => parser.parse(chunk));
    });
    return cloud;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('an MQTT 5 cloud with a small Receive Maximum', () => {
  let cloud: QuotaCloud;
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    cloud = await QuotaCloud.start(5);
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
