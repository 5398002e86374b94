import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, writePackage } from './helpers/functions.js';
import { steadyThreadCount } from './helpers/threads.js';
import { validateConfig } from '../src/config/load.js';

// Each Node.js function deployed starts a spare thread (a V8 heap of its own, ~7 MB) for its first
// cold start; functions.maxSpareThreads bounds them daemon-wide, so a deploy of many functions does
// not hold a 128 MB board's memory for the idle timeout. At the bound, a cold start starts its own thread.
const NAMES = ['SpareA', 'SpareB', 'SpareC', 'SpareD'];
const HANDLER = 'exports.handler = async () => ({ name: process.env.AWS_LAMBDA_FUNCTION_NAME });\n';

function templateOf(names: string[]): string {
  const function_ = { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'index.handler' } };
  return JSON.stringify({ Resources: Object.fromEntries(names.map((name) => [name, function_])) });
}

describe('functions: spare threads bounded daemon-wide', () => {
  let daemon: TestDaemon;
  const first = writePackage({ 'template.yaml': templateOf(NAMES.slice(0, 1)), 'index.js': HANDLER });
  const rest = writePackage({ 'template.yaml': templateOf(NAMES.slice(1)), 'index.js': HANDLER });
  /** The thread count once it has not changed for 500 ms (the deploy's check environments have ended). */
  const steadyThreads = () => steadyThreadCount(daemon.process.pid!);

  beforeAll(async () => {
    // An idle timeout far beyond the test: spares would stay for all of it.
    daemon = await TestDaemon.start({ config: { functions: { maxSpareThreads: 1, idleTimeoutSeconds: 600 } } });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    first.remove();
    rest.remove();
  });

  it('holds at most functions.maxSpareThreads spare threads however many functions are deployed, and every function still runs', async () => {
    // The first deploy loads the runtime (threads of its own) and stages the one spare.
    expect(await outpost(daemon.socket, ['deploy', first.dir])).toMatchObject({ code: 0 });
    const withOneSpare = await steadyThreads();
    // Three more Node.js functions: no spare thread for them (one each before the bound).
    expect(await outpost(daemon.socket, ['deploy', rest.dir])).toMatchObject({ code: 0 });
    expect(await steadyThreads()).toBe(withOneSpare);
    // At the bound a cold start starts its own thread: each function answers.
    for (const name of NAMES) {
      const { code, result } = await invoke(daemon.socket, name);
      expect(code).toBe(0);
      expect(result.payload).toEqual({ name });
    }
    // Four warm instances, and still one spare at most.
    expect(await steadyThreads()).toBeLessThanOrEqual(withOneSpare + NAMES.length);
  });

  it('refuses a negative functions.maxSpareThreads with the key named', () => {
    expect(() => validateConfig({ functions: { maxSpareThreads: -1 } }, 'test')).toThrow(/functions\.maxSpareThreads: expected a thread count ≥ 0, got -1/);
  });
});
