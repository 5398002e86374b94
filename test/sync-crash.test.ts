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
});
