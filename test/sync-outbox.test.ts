import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { TestDaemon, type DaemonOptions } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber, freePort } from './helpers/cloud.js';
import { straceWorks } from './helpers/strace.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
const rule = (s: any, name: string) => s.rules.find((r: any) => r.rule === name);
const payload = (i: number) => i.toString().padStart(100, '0');
// topic "x/1" twice (local and cloud) + 100 bytes + 64 of overhead: 170 bytes an item, 10 fit in 1700.
const ITEM = 170;
const YEAR_MS = 365 * 24 * 3600 * 1000;

describe('sync outbox bounds', () => {
  let cloud: CloudBroker;
  const daemons: TestDaemon[] = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    cloud = await CloudBroker.create();
  });

  afterAll(async () => {
    for (const client of clients) client.end(true);
    for (const daemon of daemons) await daemon.cleanup();
    await cloud.destroy();
  });

  async function gateway(outbound: unknown[], options: Partial<DaemonOptions> & { sync?: Record<string, unknown> } = {}) {
    const daemon = await TestDaemon.start({
      ...options,
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: `gw-${daemons.length}`, reconnectMinMs: 100, reconnectMaxMs: 300 } },
        sync: { maxBytes: 10 * ITEM, drainRate: 0, outbound: outbound.map((r: any) => ({ id: 'none', ...r })), ...options.sync },
      },
    });
    daemons.push(daemon);
    const device = await connectClient(daemon.mqttUrl, { clientId: `device-${daemons.length}` });
    clients.push(device);
    return { daemon, device };
  }

  /** What the cloud receives from the gateway once it is up; sending is paused until the cloud side subscribed. */
  async function delivered(daemon: TestDaemon, filter: string | string[], count: number, clientId: string): Promise<string[]> {
    await outpost(daemon.socket, ['sync', 'pause']);
    await cloud.start();
    const subscriber = await CloudSubscriber.connect(cloud.url, filter, clientId);
    await outpost(daemon.socket, ['sync', 'resume']);
    try {
      await eventually(() => subscriber.messages.length >= count, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return subscriber.messages.map((m) => `${m.topic} ${Number(m.payload)}`);
    } finally {
      await subscriber.end();
      await cloud.stop();
    }
  }

  it('drop-oldest: keeps the newest items within sync.maxBytes and counts the dropped ones', async () => {
    const { daemon, device } = await gateway([{ name: 'a', from: 'a/#', overflow: 'drop-oldest' }]);
    for (let i = 0; i < 15; i++) await device.publishAsync('a/1', payload(i), { qos: 1 });
    const s = await status(daemon);
    expect(rule(s, 'a')).toMatchObject({ backlog: 10, backlogBytes: 10 * ITEM, dropped: 5 });
    expect(s.outbox).toMatchObject({ items: 10, bytes: 10 * ITEM, maxBytes: 10 * ITEM });
    expect(await delivered(daemon, 'a/#', 10, 'sub-a')).toEqual(Array.from({ length: 10 }, (_, k) => `a/1 ${k + 5}`));
  });

  it('reject-new: refuses a message that does not fit, counts it, and takes new ones once there is room', async () => {
    const { daemon, device } = await gateway([{ name: 'b', from: 'b/#', overflow: 'reject-new' }]);
    for (let i = 0; i < 10; i++) await device.publishAsync('b/1', payload(i), { qos: 1 });
    await Promise.race([device.publishAsync('b/1', payload(10), { qos: 1 }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))]);
    const s = await status(daemon);
    expect(rule(s, 'b')).toMatchObject({ backlog: 10, dropped: 0, rejected: 1 });
    expect(rule(s, 'b').lastFailure.reason).toMatch(/reject-new/);
    expect(await delivered(daemon, 'b/#', 10, 'sub-b')).toEqual(Array.from({ length: 10 }, (_, k) => `b/1 ${k}`));
    await eventually(async () => (await status(daemon)).outbox.items === 0);
    const again = await connectClient(daemon.mqttUrl, { clientId: 'device-b-again' });
    clients.push(again);
    await again.publishAsync('b/1', payload(10), { qos: 1 });
    expect(rule(await status(daemon), 'b').backlog).toBe(1);
  });

  // mqemitter ignores a listener's error, so a refusing durable subscriber closes the publisher
  // before aedes sends the PUBACK it holds (BrokerService.subscribe): the device resends.
  it('reject-new: the device gets no PUBACK for the refused message, also one with subscriptions (its close takes longer)', async () => {
    const { device } = await gateway([{ name: 'b2', from: 'b/#', overflow: 'reject-new' }]);
    await device.subscribeAsync('commands/#', { qos: 1 });
    for (let i = 0; i < 10; i++) await device.publishAsync('b/1', payload(i), { qos: 1 });
    const outcome = await Promise.race([
      device.publishAsync('b/1', payload(10), { qos: 1 }).then(() => 'acknowledged', () => 'refused'),
      new Promise((resolve) => setTimeout(() => resolve('no PUBACK'), 2000)),
    ]);
    expect(outcome).not.toBe('acknowledged');
  });

  it('reject-new: a QoS 0 message that does not fit is counted, and its publisher stays connected (no PUBACK to withhold)', async () => {
    const { daemon, device } = await gateway([{ name: 'b3', from: 'b/#', overflow: 'reject-new' }]);
    let closed = false;
    device.on('close', () => { closed = true; });
    for (let i = 0; i < 10; i++) await device.publishAsync('b/1', payload(i), { qos: 1 });
    for (let i = 10; i < 13; i++) await device.publishAsync('b/1', payload(i), { qos: 0 });
    await eventually(async () => rule(await status(daemon), 'b3').rejected === 3);
    // a round trip after them: the connection is the same one
    await device.subscribeAsync('commands/#', { qos: 1 });
    expect(closed).toBe(false);
    expect(rule(await status(daemon), 'b3')).toMatchObject({ backlog: 10, rejected: 3 });
  });

  it('bounds the dead letters by bytes too (sync.dlqMaxBytes): too-large messages do not take the disk by their count', async () => {
    // 1200-byte payloads, dead-lettered as larger than maxMessageBytes: 1200 + 2 × 3 + 64 bytes an entry, 2 fit in 3000
    const daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-dlq', reconnectMinMs: 100, reconnectMaxMs: 300, maxMessageBytes: 1000 } },
        sync: { dlqMaxBytes: 3000, outbound: [{ name: 'big', from: 'z/#', id: 'none' }] },
      },
    });
    daemons.push(daemon);
    const device = await connectClient(daemon.mqttUrl, { clientId: 'device-dlq' });
    clients.push(device);
    await cloud.start();
    try {
      await eventually(async () => (await status(daemon)).online, 10_000);
      for (let i = 0; i < 5; i++) await device.publishAsync('z/1', Buffer.alloc(1200, 48 + i), { qos: 1 });
      await eventually(async () => rule(await status(daemon), 'big').deadLettered === 5, 10_000);
    } finally {
      await cloud.stop();
    }
    const letters = JSON.parse((await outpost(daemon.socket, ['sync', 'dlq', 'ls', '--json'])).stdout).deadLetters;
    // the newest two (item ids in order: the last two of the five)
    expect(letters).toHaveLength(2);
    expect(letters[1].itemId - letters[0].itemId).toBe(1);
    expect((await status(daemon)).deadLetters).toBe(2);
    expect(rule(await status(daemon), 'big')).toMatchObject({ deadLettered: 5, dropped: 3 });
  });

  it('drop-lowest-priority: a high-priority item evicts the oldest of a lower priority, else is dropped itself', async () => {
    const { daemon, device } = await gateway([
      { name: 'low', from: 'l/#', priority: 1, overflow: 'drop-oldest' },
      { name: 'high', from: 'h/#', priority: 9, overflow: 'drop-lowest-priority' },
    ]);
    for (let i = 0; i < 10; i++) await device.publishAsync('l/1', payload(i), { qos: 1 });
    for (let i = 0; i < 4; i++) await device.publishAsync('h/1', payload(i), { qos: 1 });
    let s = await status(daemon);
    expect(rule(s, 'low')).toMatchObject({ backlog: 6, dropped: 4 });
    expect(rule(s, 'high')).toMatchObject({ backlog: 4, dropped: 0 });
    for (let i = 4; i < 14; i++) await device.publishAsync('h/1', payload(i), { qos: 1 });
    s = await status(daemon);
    expect(rule(s, 'low')).toMatchObject({ backlog: 0, dropped: 10 });
    expect(rule(s, 'high')).toMatchObject({ backlog: 10, dropped: 4 });
    expect(await delivered(daemon, ['h/#', 'l/#'], 10, 'sub-lh')).toEqual(Array.from({ length: 10 }, (_, k) => `h/1 ${k}`));
  });

  it('ages items in monotonic time: a wall clock jump of ±1 year neither expires nor keeps anything wrongly', async () => {
    const rules = [
      { name: 'short', from: 's/#', ttlSeconds: 10 },
      { name: 'forever', from: 'f/#' },
    ];
    const first = await gateway(rules, { env: { OUTPOST_TEST_WALL_CLOCK_OFFSET_MS: String(YEAR_MS) }, sync: { maxBytes: 1_000_000 } });
    for (let i = 0; i < 5; i++) {
      await first.device.publishAsync('s/1', payload(i), { qos: 1 });
      await first.device.publishAsync('f/1', payload(i), { qos: 1 });
    }
    await first.daemon.stop();
    // The wall clock goes back two years: the items are not a year "in the future", nor expired.
    const back = await TestDaemon.start({
      dataDir: first.daemon.dataDir,
      env: { OUTPOST_TEST_WALL_CLOCK_OFFSET_MS: String(-YEAR_MS) },
      config: { mqtt: { allowAnonymous: true }, cloud: { mqtt: { url: cloud.url, clientId: 'gw-clock', reconnectMinMs: 100, reconnectMaxMs: 300 } }, sync: { maxBytes: 1_000_000, outbound: rules.map((r) => ({ ...r, id: 'none' })) } },
    });
    daemons.push(back);
    let s = await status(back);
    expect(rule(s, 'short')).toMatchObject({ backlog: 5, expired: 0 });
    expect(rule(s, 'short').oldestAgeSeconds).toBeLessThan(10);
    // Ten seconds of monotonic time after their publication (wall clock still a year off), they expire; the others stay.
    s = await eventually(async () => {
      const current = await status(back);
      return rule(current, 'short').expired === 5 && current;
    }, 15_000, 200);
    expect(rule(s, 'short')).toMatchObject({ backlog: 0, expired: 5 });
    expect(rule(s, 'forever')).toMatchObject({ backlog: 5, expired: 0 });
    expect(rule(s, 'forever').oldestAgeSeconds).toBeLessThan(60);
    const received = await delivered(back, ['s/#', 'f/#'], 5, 'sub-clock');
    expect(received).toEqual(Array.from({ length: 5 }, (_, k) => `f/1 ${k}`));
  }, 60_000);

  it('carries ages across a reboot from the last heartbeat: time powered off is not counted', async () => {
    const rules = [{ name: 'ttl', from: 't/#', ttlSeconds: 12 }];
    const first = await gateway(rules, { env: { OUTPOST_TEST_BOOT_ID: 'boot-one' }, sync: { maxBytes: 1_000_000 } });
    await first.device.publishAsync('t/1', payload(1), { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await first.daemon.stop();
    // "Powered off" for 8 s: with the downtime counted the item would be over 10 s old.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const rebooted = await TestDaemon.start({
      dataDir: first.daemon.dataDir,
      env: { OUTPOST_TEST_BOOT_ID: 'boot-two' },
      config: { mqtt: { allowAnonymous: true }, sync: { maxBytes: 1_000_000, outbound: rules.map((r) => ({ ...r, id: 'none' })) } },
    });
    daemons.push(rebooted);
    const s = await status(rebooted);
    expect(rule(s, 'ttl')).toMatchObject({ backlog: 1, expired: 0 });
    expect(rule(s, 'ttl').oldestAgeSeconds).toBeGreaterThanOrEqual(1);
    expect(rule(s, 'ttl').oldestAgeSeconds).toBeLessThan(8);
    await eventually(async () => rule(await status(rebooted), 'ttl').expired === 1, 15_000, 200);
  }, 60_000);
});

describe.skipIf(!straceWorks)('a device that publishes as soon as the MQTT port accepts, as the gateway starts', () => {
  it('has each message it was PUBACKed in the outbox: the port opens once every service subscribed', async () => {
    const mqttPort = await freePort();
    // nothing listens there: the outbox keeps everything
    const cloudPort = await freePort();
    const starting = TestDaemon.start({
      // the services' starts take as long as on an SD card: each fdatasync 200 ms more
      wrapper: ['strace', '-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:delay_enter=200000'],
      startTimeoutMs: 60_000,
      config: {
        mqtt: { port: mqttPort, allowAnonymous: true },
        cloud: { mqtt: { url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'gw-early' } },
        sync: { outbound: [{ name: 'early', from: 'early/#' }] },
      },
    });
    let device: MqttClient | undefined;
    for (let attempt = 0; attempt < 10_000 && device === undefined; attempt++) {
      const client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'early-device', reconnectPeriod: 0, connectTimeout: 2000 });
      device = await new Promise<MqttClient | undefined>((resolve) => {
        client.once('connect', () => resolve(client));
        client.once('close', () => resolve(undefined));
        client.on('error', () => undefined);
      });
      if (device === undefined) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // at once, before the daemon says it is ready
    const acknowledged = device && Promise.all(Array.from({ length: 20 }, (_, i) => device.publishAsync('early/x', String(i), { qos: 1 })));
    const daemon = await starting;
    try {
      expect(device).toBeDefined();
      await acknowledged;
      expect(rule(await status(daemon), 'early').backlog).toBe(20);
    } finally {
      device?.end(true);
      // strace's child is the daemon: stopping strace would leave it running
      const pid = Number(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      if (pid) process.kill(pid, 'SIGTERM');
      await daemon.cleanup();
    }
  });
});
