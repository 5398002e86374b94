import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, lambdaInvoke, thingKey, writePackage, type AccessKey } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { validateConfig } from '../src/config/load.js';

// As functions-python.test.ts: the real interpreter behind `python3`.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

// functions.maxConcurrency bounds the environments of all functions together, as Lambda's account
// concurrency bounds an account's: here 2, for three functions (Node.js and Python) and a fourth
// with ReservedConcurrentExecutions: 1. Each handler appends its event to `out` and, given `hold`,
// stays busy until that file exists (15 s at most).
const fn = (properties: Record<string, unknown>) => ({ Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'index.handler', Timeout: 30, ...properties } });
const NODE_HANDLER = 'const fs = require("node:fs");\nexports.handler = async (event) => {\n'
  + '  fs.appendFileSync(event.out, JSON.stringify({ fn: process.env.AWS_LAMBDA_FUNCTION_NAME, n: event.n }) + "\\n");\n'
  + '  for (let i = 0; event.hold && i < 300 && !fs.existsSync(event.hold); i++) await new Promise((resolve) => setTimeout(resolve, 50));\n'
  + '  return process.env.AWS_LAMBDA_FUNCTION_NAME;\n};\n';
const PYTHON_HANDLER = 'import json, os, time\n\ndef handler(event, context):\n'
  + '    with open(event["out"], "a") as out:\n        out.write(json.dumps({"fn": context.function_name, "n": event.get("n")}) + "\\n")\n'
  + '    for _ in range(300):\n        if not event.get("hold") or os.path.exists(event["hold"]):\n            break\n        time.sleep(0.05)\n'
  + '    return context.function_name\n';

describe('functions: functions.maxConcurrency, the environments of all functions together', () => {
  let daemon: TestDaemon;
  let key: AccessKey;
  const pkg = writePackage({
    'template.yaml': JSON.stringify({
      Resources: {
        Alpha: fn({}),
        Beta: fn({ Runtime: 'python3.11' }),
        Gamma: fn({}),
        Solo: fn({ ReservedConcurrentExecutions: 1 }),
      },
    }),
    'index.js': NODE_HANDLER,
    'index.py': PYTHON_HANDLER,
  });
  const out = join(pkg.dir, 'out.jsonl');
  const cli = (...args: string[]) => outpost(daemon.socket, args);
  const instances = async (name: string) => JSON.parse((await cli('--json', 'functions', 'info', name)).stdout).instances as { busy: number; idle: number };
  /** The numbered events of `name` its handler saw. */
  const events = (name: string) => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { fn: string; n?: number }) : [])
    .filter((entry) => entry.fn === name && entry.n !== undefined).map((entry) => entry.n!).sort();
  /** A synchronous invocation that stays busy until `release` (not awaited here). */
  const held = (name: string, hold: string) => invoke(daemon.socket, name, { out, hold });
  const busy = (name: string) => eventually(async () => (await instances(name)).busy === 1, 15_000, 100);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { maxConcurrency: 2, pythonPath: PYTHON, idleTimeoutSeconds: 600 } } });
    key = await thingKey(daemon.socket, 'invoker');
    const deployed = await cli('deploy', pkg.dir);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    // whatever a failed case left holding
    for (const name of ['hold-a', 'hold-b', 'hold-solo']) writeFileSync(join(pkg.dir, name), '');
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('stops the environment idle the longest, of another function, to start one beyond the bound', async () => {
    for (const name of ['Alpha', 'Beta', 'Gamma']) {
      const { code, result } = await invoke(daemon.socket, name, { out });
      expect(code).toBe(0);
      expect(result.payload).toBe(name);
    }
    // Alpha's went idle first: stopped for Gamma's; Beta's (a Python process) counted and kept.
    expect(await instances('Alpha')).toMatchObject({ busy: 0, idle: 0 });
    expect(await instances('Beta')).toMatchObject({ busy: 0, idle: 1 });
    expect(await instances('Gamma')).toMatchObject({ busy: 0, idle: 1 });
    const status = JSON.parse((await cli('status', '--json')).stdout);
    expect(status.services.functions.environments).toEqual({ warm: 2, max: 2 });
  });

  it('refuses a synchronous invoke with every environment busy (429 ConcurrentInvocationLimitExceeded); events wait and run, none lost, while another function keeps invoking', async () => {
    const holdA = join(pkg.dir, 'hold-a');
    const holdB = join(pkg.dir, 'hold-b');
    const alpha = held('Alpha', holdA);
    await busy('Alpha');
    const beta = held('Beta', holdB);
    await busy('Beta');

    const refused = await lambdaInvoke(daemon.port('http'), key, 'Gamma', { body: JSON.stringify({ out }) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(await refused.json()).toEqual({ Reason: 'ConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    expect(await cli('invoke', 'Gamma', '--payload', JSON.stringify({ out }))).toMatchObject({ code: 1, stderr: 'outpost: TooManyRequestsException: Rate Exceeded.\n' });

    // Events are accepted and wait for an environment: not refused, not run yet.
    for (let n = 1; n <= 4; n++) {
      const queued = await cli('--json', 'invoke', 'Gamma', '--async', '--payload', JSON.stringify({ out, n }));
      expect(JSON.parse(queued.stdout)).toMatchObject({ statusCode: 202 });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(events('Gamma')).toEqual([]);
    expect(await instances('Gamma')).toMatchObject({ busy: 0 });

    // Beta's environment frees while Beta is invoked again and again: Gamma's events get it all the same.
    writeFileSync(holdB, '');
    expect((await beta).result.payload).toBe('Beta');
    for (let i = 0; i < 100 && events('Gamma').length < 4; i++) {
      const again = await lambdaInvoke(daemon.port('http'), key, 'Beta', { body: JSON.stringify({ out }) });
      expect([200, 429]).toContain(again.status);
    }
    expect(events('Gamma')).toEqual([1, 2, 3, 4]);
    // Alpha is still running, the one invocation it was given.
    expect(await instances('Alpha')).toMatchObject({ busy: 1 });
    writeFileSync(holdA, '');
    expect((await alpha).result.payload).toBe('Alpha');
    await eventually(async () => JSON.parse((await cli('--json', 'functions', 'info', 'Gamma')).stdout).asyncEvents === 0, 15_000, 100);
    // each once
    expect(events('Gamma')).toEqual([1, 2, 3, 4]);
  });

  it('still holds a function to its ReservedConcurrentExecutions below the bound', async () => {
    const hold = join(pkg.dir, 'hold-solo');
    const solo = held('Solo', hold);
    await busy('Solo');
    const refused = await lambdaInvoke(daemon.port('http'), key, 'Solo', { body: JSON.stringify({ out }) });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    // the bound's other environment is there for the others
    expect((await invoke(daemon.socket, 'Alpha', { out })).result.payload).toBe('Alpha');
    writeFileSync(hold, '');
    expect((await solo).result.payload).toBe('Solo');
  });

  it('refuses a functions.maxConcurrency below 1 with the key named', () => {
    expect(() => validateConfig({ functions: { maxConcurrency: 0 } }, 'test')).toThrow(/functions\.maxConcurrency: expected environment count ≥ 1, got 0/);
  });
});
