import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';

const SERVER_KEEP_ALIVE_SECONDS = 2;
/** More lenient than the 1.5 times the spec allows, so that a busy test machine's pause is not taken for silence. */
const SILENCE_ENDS_AFTER_MS = 2 * SERVER_KEEP_ALIVE_SECONDS * 1000;

/**
 * An MQTT 5 cloud that sets a Server Keep Alive of 2 s in its CONNACK (as a broker may for a
 * keep-alive outside the range it allows) and ends a connection silent for longer than twice that.
 */
class KeepAliveCloud extends ScriptedCloud {
  connections = 0;

  constructor() {
    super(5);
  }

  protected connected(connection: CloudConnection) {
    let silence: NodeJS.Timeout | undefined;
    connection.socket.on('close', () => clearTimeout(silence));
    return (packet: mqttPacket.Packet) => {
      clearTimeout(silence);
      silence = setTimeout(() => connection.disconnect(0x8d), SILENCE_ENDS_AFTER_MS);
      if (packet.cmd === 'connect') {
        this.connections++;
        connection.send({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { serverKeepAlive: SERVER_KEEP_ALIVE_SECONDS } });
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      }
    };
  }
}

describe('an MQTT 5 cloud that sets a Server Keep Alive', () => {
  let cloud: KeepAliveCloud;
  let daemon: TestDaemon;

  beforeAll(async () => {
    cloud = await new KeepAliveCloud().listen();
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
