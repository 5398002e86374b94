import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { template, writePackage } from './helpers/functions.js';
import { outpost, runOutpost } from './helpers/mqtt.js';

// Past the 15 s the CLI gives an ordinary request for its answer.
const SLOW_MS = 16_500;

describe('outpost admin CLI: requests that take long', () => {
  let daemon: TestDaemon;
  let stopped: TestDaemon;
  let slow: ReturnType<typeof writePackage>;
  beforeAll(async () => {
    slow = writePackage({
      'template.yaml': template('Slow', { Handler: 'index.handler', Timeout: 60 }),
      'index.js': `exports.handler = () => new Promise((resolve) => setTimeout(() => resolve({ waited: ${SLOW_MS} }), ${SLOW_MS}));\n`,
    });
    [daemon, stopped] = await Promise.all([TestDaemon.start({ config: {} }), TestDaemon.start({ config: {} })]);
  });
  afterAll(async () => {
    stopped.process.kill('SIGCONT');
    await Promise.all([daemon.cleanup(), stopped.cleanup()]);
    slow.remove();
  });

  it('waits for an invocation as long as it runs, and tells a daemon that does not answer from one that is not there', async () => {
    expect((await outpost(daemon.socket, ['deploy', slow.dir])).code).toBe(0);
    // the socket of a stopped daemon accepts the connection; nothing answers on it
    stopped.process.kill('SIGSTOP');
    const [invoked, unanswered] = await Promise.all([
      runOutpost(['--socket', daemon.socket, 'invoke', 'Slow'], { timeoutMs: 40_000 }),
      runOutpost(['--socket', stopped.socket, 'status'], { timeoutMs: 40_000 }),
    ]);
    expect(invoked.stderr).toBe('');
    expect(invoked.stdout).toBe(`{"waited":${SLOW_MS}}\n`);
    expect(invoked.code).toBe(0);
    expect(unanswered.stderr).toBe(`outpost: outpostd did not answer within 15 s (at ${stopped.socket})\n`);
    expect(unanswered.code).toBe(1);
  }, 45_000);
});
