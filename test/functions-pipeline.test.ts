import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { invoke, template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// Asynchronous events reach a Node.js instance in batches (runtime/pool.ts): these tests hold the
// batching to what a handler must see, one event at a time with its full timeout, and show that
// events an environment did not get to before it ended run on a fresh one, once.
const IDLE_TIMEOUT_SECONDS = 2;
const CONFIG = { mqtt: { allowAnonymous: true }, functions: { maxInstances: 2, idleTimeoutSeconds: IDLE_TIMEOUT_SECONDS } };

// Each event appends one JSON line: its seq, how many invocations of this instance were running at
// its start (the handler's own count) and the remaining time it was given. Some events misbehave.
const HANDLER = `const fs = require("node:fs");
let running = 0;
exports.handler = async (event, context) => {
  running++;
  const line = { seq: event.seq, running, remainingMs: context.getRemainingTimeInMillis(), thread: require("node:worker_threads").threadId };
  fs.appendFileSync(process.env.OUT_FILE, JSON.stringify(line) + "\\n");
  try {
    if (event.exit) process.exit(3);
    // a timer pending for ever: with an empty event loop the invocation would answer null, as on Lambda
    if (event.hang) await new Promise(() => setInterval(() => undefined, 1000));
    await new Promise((resolve) => setTimeout(resolve, event.sleepMs ?? 0));
    return null;
  } finally {
    running--;
  }
};
`;

describe('functions: asynchronous events in batches', () => {
  let daemon: TestDaemon;
  const out = writePackage({});
  const outFile = (name: string) => join(out.dir, `${name}.jsonl`);
  const lines = (name: string): any[] => (existsSync(outFile(name)) ? readFileSync(outFile(name), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)) : []);
  const deploy = async (name: string, properties: Record<string, unknown>) => {
    const pkg = writePackage({
      'template.yaml': template(name, {
        Handler: 'index.handler', Timeout: 1, ReservedConcurrentExecutions: 1,
        EventInvokeConfig: { MaximumRetryAttempts: 0 },
        Environment: { Variables: { OUT_FILE: outFile(name) } },
        Events: { Trigger: { Type: 'MQTT', Properties: { Topic: `batch/${name}` } } },
        ...properties,
      }),
      'index.js': HANDLER,
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    } finally {
      pkg.remove();
    }
  };
  const publishAll = async (name: string, events: Array<Record<string, unknown>>) => {
    const device = await connectClient(daemon.mqttUrl, { clientId: `batch-${name}` });
    try {
      await Promise.all(events.map((event) => device.publishAsync(`batch/${name}`, JSON.stringify(event), { qos: 1 })));
    } finally {
      device.end(true);
    }
  };
  const deadLetters = async (name: string) => JSON.parse((await outpost(daemon.socket, ['--json', 'dlq', 'ls', name])).stdout).deadLetters as any[];
  const queued = async (name: string) => JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', name])).stdout).asyncEvents as number;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: CONFIG });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    out.remove();
  });

  it('runs the events of a batch one at a time, each with its whole timeout', async () => {
    await deploy('Serial', {});
    // 6 × 300 ms on one instance: longer than the 1 s timeout together, well within it each.
    const events = Array.from({ length: 6 }, (_, i) => ({ seq: i + 1, sleepMs: 300 }));
    await publishAll('Serial', events);
    await eventually(async () => lines('Serial').length === 6 && await queued('Serial') === 0, 15_000);
    const seen = lines('Serial');
    expect(seen.map((line) => line.seq).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    for (const line of seen) {
      expect(line.running).toBe(1);
      expect(line.remainingMs).toBeGreaterThan(800);
    }
    expect(new Set(seen.map((line) => line.thread)).size).toBe(1);
    expect(await deadLetters('Serial')).toEqual([]);
  });

  it('runs the events an environment had not started when it exited on a fresh one, each once', async () => {
    await deploy('Exits', {});
    // The first holds the instance while the others are handed over behind it; the second ends the environment.
    await publishAll('Exits', [{ seq: 1, sleepMs: 400 }, { seq: 2, exit: true }, { seq: 3 }, { seq: 4 }, { seq: 5 }]);
    await eventually(async () => lines('Exits').length === 5 && await queued('Exits') === 0, 15_000);
    expect(lines('Exits').map((line) => line.seq).sort()).toEqual([1, 2, 3, 4, 5]);
    const [dead] = await deadLetters('Exits');
    expect(dead).toMatchObject({ event: { seq: 2, exit: true }, errorType: 'Runtime.ExitError', reason: 'RetriesExhausted' });
  });

  it('times out only the event that hangs; those behind it run on a fresh environment', async () => {
    await deploy('Hangs', {});
    await publishAll('Hangs', [{ seq: 1, sleepMs: 200 }, { seq: 2, hang: true }, { seq: 3 }, { seq: 4 }]);
    await eventually(async () => lines('Hangs').length === 4 && await queued('Hangs') === 0, 15_000);
    expect(lines('Hangs').map((line) => line.seq).sort()).toEqual([1, 2, 3, 4]);
    const [dead] = await deadLetters('Hangs');
    expect(dead).toMatchObject({ event: { seq: 2, hang: true }, errorType: 'Sandbox.Timedout' });
    expect(dead.errorMessage).toContain('Task timed out after 1.00 seconds');
  });
});

describe('functions: spare threads', () => {
  let daemon: TestDaemon;
  const pkg = writePackage({
    'template.yaml': template('Spare', {
      Handler: 'index.handler',
      Environment: { Variables: { GREETING: 'hello' } },
    }),
    'index.js': 'exports.handler = async () => ({ greeting: process.env.GREETING, name: process.env.AWS_LAMBDA_FUNCTION_NAME, root: process.env.LAMBDA_TASK_ROOT });\n',
  });
  const threads = () => readdirSync(`/proc/${daemon.process.pid}/task`).length;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: CONFIG });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('starts a function on a thread started during its deploy, with the function\'s environment, and stops idle threads', async () => {
    // The runtime loads on the first deploy (threads of its own): deploy once, let everything idle out, then count.
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    expect((await invoke(daemon.socket, 'Spare')).result.payload).toMatchObject({ greeting: 'hello', name: 'Spare' });
    const idle = await eventually(async () => {
      const count = threads();
      await new Promise((resolve) => setTimeout(resolve, (IDLE_TIMEOUT_SECONDS + 1) * 1000));
      return threads() === count ? count : undefined;
    }, 20_000);

    // A new version: its check's environment is stopped, the spare started meanwhile stays for the first invocation.
    const redeployed = writePackage({
      'template.yaml': template('Spare', { Handler: 'index.handler', Environment: { Variables: { GREETING: 'hi again' } } }),
      'index.js': readFileSync(join(pkg.dir, 'index.js'), 'utf8'),
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', redeployed.dir])).toMatchObject({ code: 0 });
    } finally {
      redeployed.remove();
    }
    await eventually(() => threads() > idle);
    const { result } = await invoke(daemon.socket, 'Spare');
    expect(result.payload).toEqual({ greeting: 'hi again', name: 'Spare', root: expect.stringContaining(join('functions', 'Spare')) });
    const log = (await outpost(daemon.socket, ['logs', 'Spare', '--lines', '200'])).stdout;
    expect(log).toMatch(new RegExp(`REPORT RequestId: ${result.requestId}\\t.*\\tInit Duration: [0-9.]+ ms`));
    // The instance and the spare kept for a second one are stopped once idle.
    await eventually(() => threads() === idle, 20_000);
  });
});
