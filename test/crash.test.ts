import { describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { addThing, connectClient, publishUntilCut } from './helpers/mqtt.js';

const ROUNDS = 3;
const WINDOW = 20;

describe('kill -9 while publishing QoS 1 to an offline persistent session', () => {
  it('delivers every PUBACKed message after restart, in order', { timeout: 120_000 }, async () => {
    let daemon = await TestDaemon.start({ config: { mqtt: { maxQueuedMessages: 100_000 } } });
    const dataDir = daemon.dataDir;
    await addThing(daemon.socket, 'crash', 'pw', { publish: ['k/#'], subscribe: ['k/#'], clientIds: ['crash-*'] });
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'crash-sub', username: 'crash', password: 'pw', clean: false });
    await subscriber.subscribeAsync('k/#', { qos: 1 });
    subscriber.end(true);

    const acked: number[] = [];
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const current = daemon;
      const got = await publishUntilCut(current.mqttUrl, {
        client: { clientId: 'crash-pub', username: 'crash', password: 'pw' },
        message: (n) => ({ topic: `k/${n}`, payload: String(n) }),
        startAt: seq, window: WINDOW, killAfterMs: 300 + round * 250, kill: () => void current.kill(),
      });
      await current.kill();
      expect(got.length).toBeGreaterThan(0);
      acked.push(...got);
      seq = Math.max(...got) + WINDOW + 1;
      daemon = await TestDaemon.start({ config: { mqtt: { maxQueuedMessages: 100_000 } }, dataDir });
    }

    try {
      // Drain the queue: everything that was stored arrives; stop when quiet for a second.
      const received: number[] = [];
      const client = mqtt.connect(daemon.mqttUrl, { clientId: 'crash-sub', username: 'crash', password: 'pw', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      client.on('message', (_topic, payload) => received.push(Number(payload.toString())));
      let last = -1;
      for (let i = 0; i < 120 && (received.length !== last || received.length === 0); i++) {
        last = received.length;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      client.end(true);

      const missing = acked.filter((n) => !received.includes(n));
      expect(missing, `PUBACKed but not delivered (of ${acked.length} acked, ${received.length} received)`).toEqual([]);
      const distinct = received.filter((n, i) => received.indexOf(n) === i);
      expect(distinct).toEqual([...distinct].sort((a, b) => a - b));
    } finally {
      await daemon.cleanup();
    }
  });
});
