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
 * refused whole (SUBACK 0x80 for each), and so is any filter its policy does not allow (naming one of
 * `denied`, which a test may change as an operator changes the policy). It records every SUBSCRIBE
 * and CONNECT and acknowledges every PUBLISH (shadow requests go unanswered).
 */
class QuotaCloud extends ScriptedCloud {
  readonly subscribes: string[][] = [];
  readonly granted = new Set<string>();
  readonly denied = new Set(['pump-denied', 'cmd-denied']);
  connects = 0;

  constructor() {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        this.connects++;
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'subscribe') {
        const filters = packet.subscriptions.map((subscription) => subscription.topic);
        this.subscribes.push(filters);
        const granted = filters.map((filter) => (filters.length > FILTERS_PER_SUBSCRIBE || [...this.denied].some((name) => filter.includes(name)) ? 0x80 : 1));
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
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-quota', reconnectMinMs: 100, reconnectMaxMs: 300, refusedRetryMaxMs: 500 } },
        sync: {
          inbound: [...commands.map((from, i) => ({ name: `commands-${i}`, from })), { name: 'commands-denied', from: 'cmd-denied/#' }],
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

  it('asks again for what the cloud refused, alone and on the same connection, until the policy allows it', async () => {
    const shadowFilters = ['get', 'update', 'delete'].map((operation) => `$aws/things/pump-denied/shadow/${operation}/+`);
    const asked = (filter: string) => cloud.subscribes.filter((filters) => filters.includes(filter)).length;
    // refused, and asked again with backoff (the shadow's retries start at 5 s)
    await eventually(() => asked('cmd-denied/#') >= 2 && asked(shadowFilters[0]) >= 2, 20_000, 100);
    const inbound = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout).inbound
      .find((rule: any) => rule.rule === 'commands-denied');
    expect(JSON.stringify(inbound)).toContain('the cloud refused the subscription to cmd-denied/#');
    // The operator fixes the policy: both are granted without a reconnect.
    cloud.denied.clear();
    await eventually(() => cloud.granted.has('cmd-denied/#') && shadowFilters.every((filter) => cloud.granted.has(filter)), 20_000, 100);
    expect(cloud.connects).toBe(1);
    // The filters granted at first were not asked again (a SUBSCRIBE brings their retained messages again).
    for (const filter of commands) expect(asked(filter)).toBe(1);
    const askedSince = cloud.subscribes.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(cloud.subscribes.length).toBe(askedSince);
  });
});
