import { describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker, CloudSubscriber } from './helpers/cloud.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const TOPICS = ['t0', 't1', 't2', 't3'];
const FLAPPING_MS = 24_000;
const KILLS_AT_MS = [8_000, 16_000];

describe('sync under link flapping and kill -9', () => {
  it('loses no acknowledged message and keeps per-topic order; duplicates are counted', async () => {
    const cloud = await CloudBroker.create();
    await cloud.start();
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw/#', 'cloud-collector');
    const config = {
      mqtt: { allowAnonymous: true },
      cloud: { mqtt: { url: cloud.url, clientId: 'gw-flap', reconnectMinMs: 100, reconnectMaxMs: 500, maxInFlight: 64 } },
      sync: { drainRate: 0, outbound: [{ name: 'seq', from: 'seq/#', to: 'gw/${topic}', liveFirst: false }] },
    };
    let daemon = await TestDaemon.start({ config });
    const dataDir = daemon.dataDir;
    const acknowledged = new Map<string, number[]>(TOPICS.map((topic) => [topic, []]));
    let stopping = false;

    // One closed-loop publisher per topic: the next number only after the PUBACK of the previous one.
    const publisher = async (topic: string) => {
      let seq = 0;
      while (!stopping) {
        const target = daemon;
        const client = await connectClient(target.mqttUrl, { clientId: `pub-${topic}` }).catch(() => undefined);
        if (!client) {
          await sleep(100);
          continue;
        }
        try {
          while (!stopping && target === daemon) {
            await Promise.race([
              client.publishAsync(`seq/${topic}`, String(seq), { qos: 1 }),
              sleep(3000).then(() => { throw new Error('no PUBACK'); }),
            ]);
            acknowledged.get(topic)!.push(seq);
            seq++;
          }
        } catch {
          // the daemon was killed: the same number is published again to the next one
        } finally {
          client.end(true);
        }
      }
    };
    const publishers = TOPICS.map(publisher);

    try {
      const started = Date.now();
      const kills = [...KILLS_AT_MS];
      while (Date.now() - started < FLAPPING_MS) {
        await sleep(1500 + Math.random() * 1500);
        await cloud.stop();
        await sleep(500 + Math.random() * 1000);
        await cloud.start();
        if (kills.length > 0 && Date.now() - started >= kills[0]) {
          kills.shift();
          await daemon.kill();
          daemon = await TestDaemon.start({ config, dataDir });
        }
      }
      stopping = true;
      await Promise.all(publishers);

      await eventually(async () => {
        const status = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
        return status.online && status.outbox.items === 0;
      }, 30_000, 200);
      const total = [...acknowledged.values()].reduce((sum, list) => sum + list.length, 0);
      // Everything acknowledged (and a few duplicates) has reached the cloud subscriber; missing numbers are reported below.
      await eventually(() => subscriber.messages.length >= total, 10_000).catch(() => undefined);
      await sleep(500);

      const ids = new Set<string>();
      let duplicates = 0;
      for (const topic of TOPICS) {
        const firsts: number[] = [];
        for (const message of subscriber.messages.filter((m) => m.topic === `gw/seq/${topic}`)) {
          if (ids.has(message.id!)) {
            duplicates++;
            continue;
          }
          ids.add(message.id!);
          firsts.push(JSON.parse(message.payload).payload);
        }
        // Order: first deliveries never go backwards (a number may repeat when the device resent it after a kill).
        for (let i = 1; i < firsts.length; i++) expect(firsts[i]).toBeGreaterThanOrEqual(firsts[i - 1]);
        // Nothing acknowledged is missing.
        const delivered = new Set(firsts);
        const missing = acknowledged.get(topic)!.filter((seq) => !delivered.has(seq));
        expect(missing).toEqual([]);
      }
      console.log(`flapping: ${total} acknowledged, ${subscriber.messages.length} delivered, ${duplicates} duplicates (same item id)`);
      expect(total).toBeGreaterThan(200);
    } finally {
      stopping = true;
      await Promise.all(publishers);
      await subscriber.end();
      await daemon.cleanup();
      await cloud.destroy();
    }
  }, 120_000);

  it('loses no message published over HTTP (IoT Data Plane Publish, QoS 1) that was answered 200 before a kill -9', async () => {
    const cloud = await CloudBroker.create();
    await cloud.start();
    const subscriber = await CloudSubscriber.connect(cloud.url, 'gw/#', 'cloud-collector-http');
    // the cloud is down while the messages are published: they wait in the outbox
    await cloud.stop();
    const config = {
      http: { port: 0, auth: 'none' },
      cloud: { mqtt: { url: cloud.url, clientId: 'gw-http', reconnectMinMs: 100, reconnectMaxMs: 500 } },
      sync: { outbound: [{ name: 'seq', from: 'seq/#', to: 'gw/${topic}', id: 'none' }] },
    };
    let daemon = await TestDaemon.start({ config });
    const acknowledged: number[] = [];
    let killed = false;
    try {
      const port = daemon.port('http');
      const publishers = Array.from({ length: 4 }, async (_, lane) => {
        for (let seq = lane; !killed && seq < 40_000; seq += 4) {
          try {
            const answer = await fetch(`http://127.0.0.1:${port}/topics/seq%2Fhttp?qos=1`, { method: 'POST', body: String(seq), signal: AbortSignal.timeout(3000) });
            if (answer.status === 200 && !killed) acknowledged.push(seq);
          } catch {
            return; // no answer: the daemon is gone
          }
        }
      });
      await sleep(1500);
      await daemon.kill();
      killed = true;
      await Promise.all(publishers);

      await cloud.start();
      daemon = await TestDaemon.start({ config, dataDir: daemon.dataDir });
      await eventually(async () => {
        const status = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
        return status.online && status.outbox.items === 0;
      }, 30_000, 200);
      await eventually(() => subscriber.messages.length >= acknowledged.length, 10_000).catch(() => undefined);
      const delivered = new Set(subscriber.messages.filter((m) => m.topic === 'gw/seq/http').map((m) => Number(m.payload)));
      expect(acknowledged.filter((seq) => !delivered.has(seq))).toEqual([]);
      expect(acknowledged.length).toBeGreaterThan(50);
    } finally {
      killed = true;
      await subscriber.end();
      await daemon.cleanup();
      await cloud.destroy();
    }
  }, 90_000);
});
