import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';

const SERVER_KEEP_ALIVE_SECONDS = 2;
/** More lenient than the 1.5 times the spec allows, so that a busy test machine's pause is not taken for silence. */
const SILENCE_ENDS_AFTER_MS = 2 * SERVER_KEEP_ALIVE_SECONDS * 1000;

/**
 * An MQTT 5 cloud that sets a Server Keep Alive of 2 s in its CONNACK (as a broker may for a
 * keep-alive outside the range it allows) and ends a connection silent for longer than twice that.
 */
class KeepAliveCloud {
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<KeepAliveCloud> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const cloud = new KeepAliveCloud(server, (server.address() as { port: number }).port);
    server.on('connection', (socket) => {
      cloud.sockets.add(socket);
      socket.on('error', () => undefined);
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const send = (packet: mqttPacket.Packet) => { if (!socket.destroyed) socket.write(mqttPacket.generate(packet, { protocolVersion: 5 })); };
      let silence: NodeJS.Timeout | undefined;
      const heard = () => {
        clearTimeout(silence);
        silence = setTimeout(() => {
          send({ cmd: 'disconnect', reasonCode: 0x8d });
          socket.end();
        }, SILENCE_ENDS_AFTER_MS);
      };
      socket.on('close', () => {
        clearTimeout(silence);
        cloud.sockets.delete(socket);
      });
      parser.on('packet', (packet) => {
        heard();
        if (packet.cmd === 'connect') {
          cloud.connections++;
          send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { serverKeepAlive: SERVER_KEEP_ALIVE_SECONDS } });
        } else if (packet.cmd === 'pingreq') {
          send({ cmd: 'pingresp' });
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

describe('an MQTT 5 cloud that sets a Server Keep Alive', () => {
  let cloud: KeepAliveCloud;
  let daemon: TestDaemon;

  beforeAll(async () => {
    cloud = await KeepAliveCloud.start();
    daemon = await TestDaemon.start({
      config: { cloud: { mqtt: { url: cloud.url, clientId: 'gw-keepalive', protocolVersion: 5, keepalive: 30, reconnectMinMs: 100, reconnectMaxMs: 300 } } },
    });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('keeps an idle connection alive at the cloud\'s keep-alive, not its own', async () => {
    await eventually(async () => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout).online);
    await new Promise((resolve) => setTimeout(resolve, 2.5 * SILENCE_ENDS_AFTER_MS));
    expect(cloud.connections).toBe(1);
  });
});
