import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest, outpost, runOutpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// Events near the 1 MiB limit of an asynchronous invoke: 40 of them are more than the 48 MB heap
// the minimal-128mb profile gives the daemon, as one answer.
const LETTERS = 40;
const PAD = 'x'.repeat(900 * 1024);

describe('functions: the dead-letter queue listed and replayed in pages', () => {
  let daemon: TestDaemon;
  let pkg: { dir: string; remove: () => void };
  const cli = (...args: string[]) => runOutpost(['--socket', daemon.socket, ...args], { timeoutMs: 60_000 });
  const dlq = async (...args: string[]) => {
    const run = await cli('--json', 'dlq', ...args);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout);
  };
  /** The first page's count of all letters: a cheap look while events fail. */
  const total = async () => JSON.parse((await adminRequest(daemon.socket, 'GET', '/v1/dlq?function=Doomed'))!.body).total as number;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {}, env: { NODE_OPTIONS: '--max-old-space-size=48' } });
    pkg = writePackage({
      'index.js': 'exports.handler = async (event) => { if (!event.heal) throw new Error(`failing ${event.id}`); return event.id; };',
      'template.yaml': template('Doomed', { Handler: 'index.handler', EventInvokeConfig: { MaximumRetryAttempts: 0 } }),
    });
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed.code, deployed.stderr).toBe(0);
    for (let id = 1; id <= LETTERS; id++) {
      const accepted = await adminRequest(daemon.socket, 'POST', '/v1/functions/Doomed/invocations', JSON.stringify({ invocationType: 'Event', payload: { id, pad: PAD } }));
      expect(accepted?.status, accepted?.body).toBe(200);
    }
  }, 120_000);

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('lists letters of 40 MB of events without outgrowing the daemon\'s heap, in pages the CLI follows', { timeout: 120_000 }, async () => {
    await eventually(async () => (await total()) === LETTERS, 60_000, 500);
    const first = JSON.parse((await adminRequest(daemon.socket, 'GET', '/v1/dlq?function=Doomed'))!.body);
    expect(first.deadLetters.length).toBeLessThan(LETTERS);
    expect(first).toMatchObject({ total: LETTERS, next: first.deadLetters.at(-1).id });
    const second = JSON.parse((await adminRequest(daemon.socket, 'GET', `/v1/dlq?function=Doomed&after=${first.next}`))!.body);
    expect(second.deadLetters[0].id).toBeGreaterThan(first.next);
    expect((await adminRequest(daemon.socket, 'GET', '/v1/dlq?after=-1'))!.status).toBe(400);

    const listed = await dlq('ls');
    expect(listed.total).toBe(LETTERS);
    // every event once, whichever order their attempts failed in (instances run them side by side)
    expect(listed.deadLetters.map((letter: any) => letter.event.id).sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: LETTERS }, (_, i) => i + 1));
    expect(listed.deadLetters.find((letter: any) => letter.event.id === 1)).toMatchObject({ function: 'Doomed', errorMessage: 'failing 1', event: { pad: PAD } });
    const table = await cli('dlq', 'ls', 'Doomed');
    expect(table.stdout.trim().split('\n')).toHaveLength(LETTERS + 1);
  });

  it('replays every letter, page after page, and a replayed event that fails again waits for the next replay', { timeout: 120_000 }, async () => {
    const replay = await cli('--json', 'dlq', 'replay', '--all');
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: expect.any(Array), skipped: [] });
    expect(JSON.parse(replay.stdout).replayed).toHaveLength(LETTERS);
    // each fails again, once: a new letter each, not replayed by the same replay
    await eventually(async () => (await total()) === LETTERS, 60_000, 500);
    const again = await dlq('ls', 'Doomed');
    expect(Math.min(...again.deadLetters.map((letter: any) => letter.id))).toBeGreaterThan(Math.max(...JSON.parse(replay.stdout).replayed.map((r: any) => r.id)));
    expect(daemon.process.exitCode).toBeNull();
  });
});
