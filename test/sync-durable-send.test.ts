import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber } from './helpers/cloud.js';
import { straceWorks } from './helpers/strace.js';

// The gateway's fdatasyncs held 700 ms each (strace): a message committed to the outbox is on disk
// when its publisher gets its PUBACK. The sender reads the outbox whenever it is woken (an earlier
// message made durable, a cloud PUBACK): it read rows committed and not yet synced too, and sent
// them — after a power cut those ids would have gone to other messages, which a cloud that drops
// duplicates by id would drop.
const SLOW_DISK = ['strace', '-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:delay_enter=700000'];
const MESSAGES = 12;

describe.skipIf(!straceWorks)('the sync sender and the disk', () => {
  let cloud: CloudBroker;
  let gateway: TestDaemon;

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    await cloud.start();
    gateway = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        cloud: { mqtt: { url: cloud.url, clientId: 'gw-disk', reconnectMinMs: 100, reconnectMaxMs: 400 } },
        sync: { outbound: [{ name: 'readings', from: 'readings/#', to: 'gw-disk/${topic}', id: 'none' }] },
      },
      wrapper: SLOW_DISK,
      startTimeoutMs: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    if (gateway) {
      // strace's child is the daemon: stopping strace would leave it running
      const pid = Number(readFileSync(`/proc/${gateway.process.pid}/task/${gateway.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      if (pid) process.kill(pid, 'SIGTERM');
      await gateway.cleanup();
    }
    await cloud?.destroy();
  }, 30_000);

  it('sends a message to the cloud only once it is on disk here, i.e. not before its publisher\'s PUBACK', async () => {
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw-disk/#', 'cloud-disk');
    const arrivedAt = new Map<string, number>();
    subscriber.client.on('message', (_topic, payload) => arrivedAt.set(payload.toString(), Date.now()));
    const device = await connectClient(gateway.mqttUrl, { clientId: 'meter' });
    await eventually(async () => (await fetch(`http://127.0.0.1:${gateway.port('http')}/metrics`)).text().then((text) => /^outpost_sync_online 1$/m.test(text)), 30_000, 200);
    try {
      // a steady stream: each sync's transaction commits as the one before it becomes durable, and wakes the sender
      const acknowledgedAt = new Map<string, number>();
      const published: Array<Promise<unknown>> = [];
      for (let i = 0; i < MESSAGES; i++) {
        const payload = `reading ${i}`;
        published.push(device.publishAsync('readings/power', payload, { qos: 1 }).then(() => acknowledgedAt.set(payload, Date.now())));
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
      await Promise.all(published);
      await eventually(() => arrivedAt.size === MESSAGES, 30_000);
      // sent ahead of its fsync, a message reached the cloud about 700 ms before its PUBACK; once on
      // disk, the PUBACK and the cloud's copy go out within the same few milliseconds
      const early = [...acknowledgedAt].filter(([payload, ackedAt]) => arrivedAt.get(payload)! < ackedAt - 300);
      expect(early.map(([payload]) => payload)).toEqual([]);
    } finally {
      device.end(true);
      await subscriber.end();
    }
  }, 90_000);
});
