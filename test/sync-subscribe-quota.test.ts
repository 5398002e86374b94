import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';

/** AWS IoT Core quota: "Maximum number of subscriptions per subscribe request: 8". */
const FILTERS_PER_SUBSCRIBE = 8;

/**
 * An MQTT 3.1.1 cloud with AWS IoT Core's quota on SUBSCRIBE: a request with more than 8 filters is
 * refused whole (SUBACK 0x80 for each), and so is any filter of a thing its policy does not allow
 * ("pump-denied"). It records every SUBSCRIBE and acknowledges every PUBLISH (shadow requests go unanswered).
 */
class QuotaCloud extends ScriptedCloud {
  readonly subscribes: string[][] = [];
  readonly granted = new Set<string>();

  constructor() {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'subscribe') {
        const filters = packet.subscriptions.map((subscription) => subscription.topic);
        this.subscribes.push(filters);
        const granted = filters.map((filter) => (filters.length > FILTERS_PER_SUBSCRIBE || filter.includes('pump-denied') ? 0x80 : 1));
        filters.forEach((filter, index) => { if (granted[index] !== 0x80) this.granted.add(filter); });
        connection.send({ cmd: 'suback', messageId: packet.messageId, granted });
      } else if (packet.cmd === 'publish' && packet.qos === 1) {
        connection.send({ cmd: 'puback', messageId: packet.messageId });
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      }
    };
  }
}

describe('subscribing on a cloud with AWS IoT Core\'s SUBSCRIBE quota', () => {
  let cloud: QuotaCloud;
  let daemon: TestDaemon;
  const things = ['pump-0', 'pump-1', 'pump-2', 'pump-denied'];
  const commands = Array.from({ length: 10 }, (_, i) => `cmd-${i}/#`);

  beforeAll(async () => {
    cloud = await new QuotaCloud().listen();
    daemon = await TestDaemon.start({
      config: {
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-quota', reconnectMinMs: 100, reconnectMaxMs: 300 } },
        sync: {
          inbound: commands.map((from, i) => ({ name: `commands-${i}`, from })),
          shadows: things.map((thing) => ({ thing })),
        },
      },
    });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await cloud?.stop();
  });

  it('sends at most 8 filters per SUBSCRIBE, and a refused shadow says so in its status without holding back the others', async () => {
    const allowed = [...commands, ...things.filter((thing) => thing !== 'pump-denied')
      .flatMap((thing) => [`$aws/things/${thing}/shadow/get/+`, `$aws/things/${thing}/shadow/update/+`, `$aws/things/${thing}/shadow/delete/+`])];
    await eventually(() => allowed.every((filter) => cloud.granted.has(filter)), 10_000).catch(() => undefined);
    expect(cloud.subscribes.filter((filters) => filters.length > FILTERS_PER_SUBSCRIBE)).toEqual([]);
    expect(allowed.filter((filter) => !cloud.granted.has(filter))).toEqual([]);
    const shadows = await eventually(async () => {
      const status = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
      return status.shadows.find((shadow: any) => shadow.thing === 'pump-denied').lastError !== null && status.shadows;
    }, 10_000);
    expect(shadows.find((shadow: any) => shadow.thing === 'pump-denied').lastError).toMatch(/subscri/i);
    for (const shadow of shadows.filter((candidate: any) => candidate.thing !== 'pump-denied')) expect(shadow.lastError ?? '').not.toMatch(/subscri/i);
  });
});
