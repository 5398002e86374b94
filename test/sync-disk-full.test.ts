import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { ScriptedCloud, type CloudConnection } from './helpers/scripted-cloud.js';
import { canMountTmpfs, fillLeaving, mountTmpfs, unmountTmpfs } from './helpers/tmpfs.js';

const MiB = 1024 * 1024;
const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);

/** Fills the outbox of the rule on `fill/#` (sync paused) until its writes fail: the disk is full for SQLite too. */
async function fillUntilRejected(daemon: TestDaemon): Promise<void> {
  const device = await connectClient(daemon.mqttUrl, { clientId: 'filler' });
  const payload = Buffer.alloc(4096, 7);
  try {
    for (let sent = 0; sent < 2000; sent++) {
      await Promise.race([device.publishAsync('fill/1', payload, { qos: 1 }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (sent % 50 === 49 && (await status(daemon)).rules[0].rejected > 0) return;
    }
    throw new Error('the disk never filled up');
  } finally {
    device.end(true);
  }
}

describe.skipIf(!canMountTmpfs())('sync with a full disk (tmpfs data directory)', () => {
  let daemon: TestDaemon;
  let mountPoint: string | undefined;

  beforeAll(async () => {
    mountPoint = mountTmpfs(24);
    mkdirSync(join(mountPoint!, 'data'));
    daemon = await TestDaemon.start({
      dataDir: join(mountPoint!, 'data'),
      config: { mqtt: { allowAnonymous: true }, sync: { maxBytes: 1024 * MiB, outbound: [{ name: 'fill', from: 'fill/#' }] } },
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    if (mountPoint) unmountTmpfs(mountPoint);
  });

  it('stays up, counts what it could not store, and stores again once space returns', async () => {
    // Leave ~3 MiB free, then fill it with 4 KiB messages.
    const filler = fillLeaving(mountPoint!, 3 * MiB);
    await fillUntilRejected(daemon);
    const figures = await status(daemon);
    // 2000 × 4 KiB do not fit in 3 MiB: the writes failed, were counted, and the daemon is still answering.
    expect(figures.rules[0].rejected).toBeGreaterThan(0);
    expect(figures.rules[0].lastFailure.reason).toMatch(/could not store/);
    const storedWhenFull = figures.rules[0].backlog;
    expect(storedWhenFull).toBeGreaterThan(0);
    expect(daemon.process.exitCode).toBeNull();
    // more refusals, each device resending: counted, said once (not a log line per message)
    for (const n of [1, 2]) {
      const resender = await connectClient(daemon.mqttUrl, { clientId: `resender-${n}`, reconnectPeriod: 0 });
      const closed = new Promise((resolve) => resender.once('close', resolve));
      resender.publishAsync('fill/1', Buffer.alloc(4096, 7), { qos: 1 }).catch(() => undefined);
      await closed;
      resender.end(true);
    }
    expect((await status(daemon)).rules[0].rejected).toBeGreaterThanOrEqual(figures.rules[0].rejected + 2);
    const said = (start: string) => daemon.logs.filter((line: any) => line.msg?.startsWith(start));
    expect(said('could not store a message in the sync outbox')).toHaveLength(1);
    expect(said("could not store a client's request")).toHaveLength(1);
    expect(said('a durable subscriber refused a message')).toEqual([]);

    rmSync(filler);
    const again = await connectClient(daemon.mqttUrl, { clientId: 'after' });
    for (let i = 0; i < 20; i++) await again.publishAsync('fill/1', Buffer.alloc(4096, 7), { qos: 1 });
    again.end(true);
    const after = await status(daemon);
    expect(after.rules[0].backlog).toBeGreaterThanOrEqual(storedWhenFull + 20);
    expect(said('the sync outbox stores messages again')).toHaveLength(1);
  }, 120_000);
});

/** An MQTT 3.1.1 cloud that the test makes publish to the gateway; it records the gateway's PUBACKs and connections. */
class PublishingCloud extends ScriptedCloud {
  connection: CloudConnection | undefined;
  connections = 0;
  readonly acknowledged: number[] = [];

  constructor() {
    super(4);
  }

  protected connected(connection: CloudConnection) {
    return (packet: mqttPacket.Packet) => {
      if (packet.cmd === 'connect') {
        this.connections++;
        this.connection = connection;
        connection.send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
      } else if (packet.cmd === 'subscribe') {
        connection.send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map(() => 1) });
      } else if (packet.cmd === 'puback') {
        this.acknowledged.push(packet.messageId!);
      } else if (packet.cmd === 'pingreq') {
        connection.send({ cmd: 'pingresp' });
      }
    };
  }

  publish(messageId: number, topic: string, payload: Buffer): void {
    this.connection!.send({ cmd: 'publish', messageId, topic, payload, qos: 1, retain: false, dup: false });
  }
}

// over ws:// too: mqtt.js handled one cloud packet at a time there, so the waiting message held up the other topic's
describe.skipIf(!canMountTmpfs()).each(['tcp', 'ws'] as const)('inbound cloud messages with a full disk (tmpfs data directory), over %s', (transport) => {
  let cloud: PublishingCloud;
  let daemon: TestDaemon;
  let watcher: MqttClient;
  let mountPoint: string | undefined;

  beforeAll(async () => {
    mountPoint = mountTmpfs(24);
    mkdirSync(join(mountPoint!, 'data'));
    cloud = await new PublishingCloud().listen(transport);
    daemon = await TestDaemon.start({
      dataDir: join(mountPoint!, 'data'),
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-full', reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: {
          maxBytes: 1024 * MiB,
          outbound: [{ name: 'fill', from: 'fill/#' }],
          inbound: [{ name: 'commands', from: 'cmd/#', to: 'local/${topic}' }],
        },
      },
    });
    // the fill stays in the outbox; the link stays up for inbound rules
    await outpost(daemon.socket, ['sync', 'pause']);
    // a persistent session the broker must store local/cmd/a for (on the full disk)
    const keeper = await connectClient(daemon.mqttUrl, { clientId: 'keeper', clean: false });
    await keeper.subscribeAsync('local/cmd/a', { qos: 1 });
    await keeper.endAsync();
    watcher = await connectClient(daemon.mqttUrl, { clientId: 'watcher' });
    await watcher.subscribeAsync('local/cmd/b', { qos: 1 });
  });

  afterAll(async () => {
    watcher?.end(true);
    await daemon?.stop();
    await cloud?.stop();
    if (mountPoint) unmountTmpfs(mountPoint);
  });

  it('keeps a message it could not store unacknowledged, tries it again, and acknowledges it once stored', async () => {
    await eventually(async () => (await status(daemon)).online, 10_000);
    const filler = fillLeaving(mountPoint!, 3 * MiB);
    await fillUntilRejected(daemon);

    const seenByWatcher: string[] = [];
    watcher.on('message', (_topic, payload) => seenByWatcher.push(payload.toString()));
    const first = Buffer.alloc(256 * 1024, 'a');
    const third = Buffer.alloc(256 * 1024, 'c');
    cloud.publish(1, 'cmd/a', first);
    cloud.publish(2, 'cmd/b', Buffer.from('b'));
    cloud.publish(3, 'cmd/a', third);
    // another local topic goes on; the PUBACKs wait for the first (MQTT-4.6.0-2), which is not stored
    await eventually(() => seenByWatcher.includes('b'), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(cloud.acknowledged).toEqual([]);
    const waiting = (await status(daemon)).inbound[0];
    expect(waiting).toMatchObject({ rule: 'commands', delivered: 1, lastFailure: { reason: expect.stringMatching(/^could not publish locally: /) } });
    expect(waiting.failures).toBeGreaterThan(0);

    rmSync(filler);
    // tried again on the same connection, not only after the link dropped
    await eventually(() => cloud.acknowledged.length === 3, 20_000);
    expect(cloud.acknowledged).toEqual([1, 2, 3]);
    expect(cloud.connections).toBe(1);
    expect((await status(daemon)).inbound[0].delivered).toBe(3);
    const keeper = await connectClient(daemon.mqttUrl, { clientId: 'keeper', clean: false });
    const kept: Buffer[] = [];
    keeper.on('message', (_topic, payload) => kept.push(payload));
    await eventually(() => kept.length >= 2, 10_000);
    keeper.end(true);
    // in order: the third waited behind the first
    expect(kept.map((payload) => payload[0])).toEqual([0x61, 0x63]);
  }, 120_000);
});
