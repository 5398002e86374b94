import { describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { ShadowMqttClient } from './helpers/shadow.js';

// Anonymous clients allowed on the $aws topics too (a leading # does not cover them).
const ANONYMOUS = { mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['$aws/#'], subscribe: ['$aws/#'] } } };

describe('shadows survive kill -9', () => {
  it('keeps every update that got /accepted, with no version gaps', async () => {
    let daemon = await TestDaemon.start({ config: ANONYMOUS });
    const things = Array.from({ length: 8 }, (_, i) => `storm-${i}`);
    const accepted = new Map<string, number[]>(things.map((thing) => [thing, []]));
    const clients = await Promise.all(things.map((thing) => ShadowMqttClient.connect(daemon.mqttUrl, { clientId: thing }, [`$aws/things/${thing}/shadow/update/+`])))
      .catch(async (error) => {
        await daemon.cleanup();
        throw error;
      });
    let killed = false;
    // Each thing updates its own shadow in a closed loop (at most 5 in flight) until the kill.
    const storms = things.map(async (thing, i) => {
      let sequence = 0;
      const worker = async () => {
        while (!killed && sequence < 20_000) {
          const seq = sequence++;
          try {
            const answer = await clients[i].request(`$aws/things/${thing}/shadow/update`, { state: { reported: { seq } } }, 3000);
            if (answer.outcome === 'accepted' && !killed) accepted.get(thing)!.push(answer.body.version);
          } catch {
            return; // no answer: the daemon is gone
          }
        }
      };
      await Promise.all(Array.from({ length: 5 }, worker));
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await daemon.kill();
    killed = true;
    await Promise.all(storms);
    for (const client of clients) client.end();

    daemon = await TestDaemon.start({ config: ANONYMOUS, dataDir: daemon.dataDir });
    try {
      const reader = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId: 'reader' }, ['$aws/things/+/shadow/get/+']);
      let total = 0;
      for (const thing of things) {
        const versions = accepted.get(thing)!.sort((a, b) => a - b);
        total += versions.length;
        // Versions handed out are consecutive from 1: no gaps, no repeats.
        expect(versions).toEqual(versions.map((_, index) => index + 1));
        const stored = await reader.request(`$aws/things/${thing}/shadow/get`);
        expect(stored.outcome).toBe('accepted');
        // Everything acknowledged is on disk (updates committed but not yet answered may add more).
        expect(stored.body.version).toBeGreaterThanOrEqual(versions.length);
        expect(stored.body.metadata.reported.seq.timestamp).toBeTypeOf('number');
      }
      expect(total).toBeGreaterThan(100);
      reader.end();
    } finally {
      await daemon.cleanup();
    }
  }, 60_000);

  it('keeps every update answered 200 over the HTTP REST API', async () => {
    const config = { http: { port: 0, auth: 'none' } };
    let daemon = await TestDaemon.start({ config });
    const port = daemon.port('http');
    const things = Array.from({ length: 4 }, (_, i) => `rest-storm-${i}`);
    /** Per thing: how many updates were answered 200, and the last one's seq (one update in flight per thing). */
    const acknowledged = new Map(things.map((thing) => [thing, { count: 0, lastSeq: -1 }]));
    let killed = false;
    const storms = things.map(async (thing) => {
      for (let seq = 0; !killed && seq < 20_000; seq++) {
        try {
          const answer = await fetch(`http://127.0.0.1:${port}/things/${thing}/shadow`, { method: 'POST', body: JSON.stringify({ state: { reported: { seq } } }), signal: AbortSignal.timeout(3000) });
          if (answer.status === 200 && !killed) acknowledged.set(thing, { count: acknowledged.get(thing)!.count + 1, lastSeq: seq });
        } catch {
          return; // no answer: the daemon is gone
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await daemon.kill();
    killed = true;
    await Promise.all(storms);

    daemon = await TestDaemon.start({ config, dataDir: daemon.dataDir });
    try {
      let total = 0;
      for (const thing of things) {
        const { count, lastSeq } = acknowledged.get(thing)!;
        total += count;
        const stored = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/things/${thing}/shadow`)).json();
        // everything answered 200 is on disk; the one update in flight at the kill may be too
        expect(stored.version, thing).toBeGreaterThanOrEqual(count);
        expect([lastSeq, lastSeq + 1], thing).toContain(stored.state.reported.seq);
      }
      expect(total).toBeGreaterThan(20);
    } finally {
      await daemon.cleanup();
    }
  }, 60_000);
});
