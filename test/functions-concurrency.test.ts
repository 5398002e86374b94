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
// concurrency bounds an account's: here 3, of which a function's ReservedConcurrentExecutions: 1 is
// set aside, so the unreserved functions (Node.js and Python) share 2. Each handler appends its
// event to `out` and, given `hold`, stays busy until that file exists (15 s at most).
const fn = (properties: Record<string, unknown>) => ({ Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', Handler: 'index.handler', Timeout: 30, ...properties } });
const NODE_HANDLER = 'const fs = require("node:fs");\nexports.handler = async (event) => {\n'
  + '  fs.appendFileSync(event.out, JSON.stringify({ fn: process.env.AWS_LAMBDA_FUNCTION_NAME, n: event.n }) + "\\n");\n'
  + '  for (let i = 0; event.hold && i < 300 && !fs.existsSync(event.hold); i++) await new Promise((resolve) => setTimeout(resolve, 50));\n'
  + '  return process.env.AWS_LAMBDA_FUNCTION_NAME;\n};\n';
const PYTHON_HANDLER = 'import json, os, time\n\ndef handler(event, context):\n'
  + '    with open(event["out"], "a") as out:\n        out.write(json.dumps({"fn": context.function_name, "n": event.get("n")}) + "\\n")\n'
  + '    for _ in range(300):\n        if not event.get("hold") or os.path.exists(event["hold"]):\n            break\n        time.sleep(0.05)\n'
  + '    return context.function_name\n';

/** The function's environments busy and idle, of all its versions (`outpost functions info`). */
const instancesOf = async (daemon: TestDaemon, name: string) => JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', name])).stdout).instances as { busy: number; idle: number };
const busyOnce = (daemon: TestDaemon, name: string) => eventually(async () => (await instancesOf(daemon, name)).busy === 1, 15_000, 100);
/** The numbered events of `name` its handler appended to `out`. */
const eventsIn = (out: string, name: string) => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { fn: string; n?: number }) : [])
  .filter((entry) => entry.fn === name && entry.n !== undefined).map((entry) => entry.n!).sort();
const environments = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout).services.functions.environments;

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
  const instances = (name: string) => instancesOf(daemon, name);
  const events = (name: string) => eventsIn(out, name);
  /** A synchronous invocation that stays busy until `hold` exists (not awaited here). */
  const held = (name: string, hold: string) => invoke(daemon.socket, name, { out, hold });
  const busy = (name: string) => busyOnce(daemon, name);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { maxConcurrency: 3, pythonPath: PYTHON, idleTimeoutSeconds: 600 } } });
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

  it('stops the environment idle the longest, of another function, to start one beyond the unreserved pool', async () => {
    for (const name of ['Alpha', 'Beta', 'Gamma']) {
      const { code, result } = await invoke(daemon.socket, name, { out });
      expect(code).toBe(0);
      expect(result.payload).toBe(name);
    }
    // Alpha's went idle first: stopped for Gamma's; Beta's (a Python process) counted and kept.
    expect(await instances('Alpha')).toMatchObject({ busy: 0, idle: 0 });
    expect(await instances('Beta')).toMatchObject({ busy: 0, idle: 1 });
    expect(await instances('Gamma')).toMatchObject({ busy: 0, idle: 1 });
    expect(await environments(daemon)).toEqual({ warm: 2, max: 3, unreserved: 2 });
  });

  it('refuses a synchronous invoke with every unreserved environment busy (429 ConcurrentInvocationLimitExceeded); events wait and run, none lost, while another function keeps invoking', async () => {
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
    // the unreserved pool is there for the others
    expect((await invoke(daemon.socket, 'Alpha', { out })).result.payload).toBe('Alpha');
    writeFileSync(hold, '');
    expect((await solo).result.payload).toBe('Solo');
  });

  it('refuses a functions.maxConcurrency below 1 with the key named', () => {
    expect(() => validateConfig({ functions: { maxConcurrency: 0 } }, 'test')).toThrow(/functions\.maxConcurrency: expected environment count ≥ 1, got 0/);
  });
});

// As Lambda's reserved concurrency: out of functions.maxConcurrency 3, Kept's ReservedConcurrentExecutions: 1
// is its own, whatever One, Two and Three (no reservation) do with the other 2. No spare threads, so
// that the environments counted are the functions' only.
describe('functions: ReservedConcurrentExecutions set aside out of functions.maxConcurrency', () => {
  let daemon: TestDaemon;
  let key: AccessKey;
  const pkg = writePackage({
    'template.yaml': JSON.stringify({ Resources: { Kept: fn({ ReservedConcurrentExecutions: 1 }), One: fn({}), Two: fn({}), Three: fn({}) } }),
    'index.js': NODE_HANDLER,
  });
  const out = join(pkg.dir, 'out.jsonl');
  const holds = ['hold-one', 'hold-two', 'hold-kept'].map((name) => join(pkg.dir, name));
  const config = { functions: { maxConcurrency: 3, maxSpareThreads: 0, idleTimeoutSeconds: 600 } };
  const cli = (...args: string[]) => outpost(daemon.socket, args);
  /** A package of its own with these functions (the handler of the others), deployed next to them. */
  const deployOnly = (resources: Record<string, unknown>) => {
    const only = writePackage({ 'template.yaml': JSON.stringify({ Resources: resources }), 'index.js': NODE_HANDLER });
    return cli('deploy', only.dir).finally(only.remove);
  };
  const refusal = (name: string) => `outpost: InvalidParameterValueException: ${name}: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [1].\n`;
  const info = async (name: string) => JSON.parse((await cli('--json', 'functions', 'info', name)).stdout);
  const sync = (name: string, query?: string) => lambdaInvoke(daemon.port('http'), key, name, { body: JSON.stringify({ out }), ...(query ? { query } : {}) });

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config });
    key = await thingKey(daemon.socket, 'invoker');
    const deployed = await cli('deploy', pkg.dir);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    for (const hold of holds) writeFileSync(hold, '');
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('refuses a reservation that leaves the unreserved pool below 1 with Lambda\'s error, and changes nothing', async () => {
    // all or none: One's new version is not deployed either
    const big = await deployOnly({ One: fn({ Environment: { Variables: { CHANGED: '1' } } }), Big: fn({ ReservedConcurrentExecutions: 2 }) });
    expect(big).toMatchObject({ code: 1, stderr: refusal('Big') });
    expect((await cli('functions', 'info', 'Big')).code).toBe(1);
    expect((await info('One')).versions).toHaveLength(1);
    const raised = await deployOnly({ Kept: fn({ ReservedConcurrentExecutions: 3 }) });
    expect(raised).toMatchObject({ code: 1, stderr: refusal('Kept') });
    expect(await info('Kept')).toMatchObject({ reservedConcurrency: 1, versions: [{ version: 1 }] });
    expect(await environments(daemon)).toEqual({ warm: 0, max: 3, unreserved: 2 });
  });

  it('keeps the reserved environment for its function: the unreserved functions share the rest, their third stopping the idle one unused the longest', async () => {
    for (const name of ['One', 'Two', 'Three']) expect((await invoke(daemon.socket, name, { out })).result.payload).toBe(name);
    expect(await instancesOf(daemon, 'One')).toMatchObject({ busy: 0, idle: 0 });
    expect(await environments(daemon)).toEqual({ warm: 2, max: 3, unreserved: 2 });
    // Kept's start stops nothing
    expect((await invoke(daemon.socket, 'Kept', { out })).result.payload).toBe('Kept');
    for (const name of ['Two', 'Three', 'Kept']) expect(await instancesOf(daemon, name)).toMatchObject({ busy: 0, idle: 1 });
    expect(await environments(daemon)).toEqual({ warm: 3, max: 3, unreserved: 2 });
  });

  it('throttles unreserved functions (429 ConcurrentInvocationLimitExceeded) while the reservation is unused, and runs the reserved function while they are all busy', async () => {
    const [holdOne, holdTwo] = holds;
    const one = invoke(daemon.socket, 'One', { out, hold: holdOne });
    await busyOnce(daemon, 'One');
    const two = invoke(daemon.socket, 'Two', { out, hold: holdTwo });
    await busyOnce(daemon, 'Two');
    const refused = await sync('Three');
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ Reason: 'ConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    expect(await instancesOf(daemon, 'Kept')).toMatchObject({ busy: 0, idle: 1 });
    const kept = await sync('Kept');
    expect(kept.status).toBe(200);
    expect(await kept.json()).toBe('Kept');
    for (const hold of [holdOne, holdTwo]) writeFileSync(hold, '');
    expect((await one).result.payload).toBe('One');
    expect((await two).result.payload).toBe('Two');
  });

  it('counts the reservation over the function\'s versions and aliases together', async () => {
    expect(await cli('functions', 'alias', 'Kept', 'live', '1')).toMatchObject({ code: 0 });
    const hold = holds[2];
    const byNumber = invoke(daemon.socket, 'Kept:1', { out, hold });
    await busyOnce(daemon, 'Kept');
    for (const query of [undefined, '?Qualifier=live']) {
      const refused = await sync('Kept', query);
      expect(refused.status).toBe(429);
      expect(await refused.json()).toEqual({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    }
    // an event of $LATEST waits for version 1's environment to finish
    expect(JSON.parse((await cli('--json', 'invoke', 'Kept', '--async', '--payload', JSON.stringify({ out, n: 1 }))).stdout)).toMatchObject({ statusCode: 202 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(eventsIn(out, 'Kept')).toEqual([]);
    writeFileSync(hold, '');
    expect((await byNumber).result.payload).toBe('Kept');
    await eventually(() => eventsIn(out, 'Kept').length === 1, 15_000, 100);
    const { busy, idle } = await instancesOf(daemon, 'Kept');
    expect(busy + idle).toBeLessThanOrEqual(1);
  });

  it('refuses a rollback to a version whose reservation no longer fits', async () => {
    expect(await deployOnly({ Kept: fn({ ReservedConcurrentExecutions: 0 }) })).toMatchObject({ code: 0 });
    expect(await deployOnly({ Big: fn({ ReservedConcurrentExecutions: 2 }) })).toMatchObject({ code: 0 });
    expect(await environments(daemon)).toMatchObject({ max: 3, unreserved: 1 });
    expect(await cli('functions', 'rollback', 'Kept')).toMatchObject({ code: 1, stderr: refusal('Kept') });
    expect(await info('Kept')).toMatchObject({ version: 2, reservedConcurrency: 0 });
  });

  it('starts with reservations beyond a lowered functions.maxConcurrency, those that do not fit as maxima only', async () => {
    expect(await daemon.stop()).toBe(0);
    daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: { functions: { ...config.functions, maxConcurrency: 2 } } });
    expect(daemon.logs.find((entry) => entry.maximaOnly)).toMatchObject({ level: 40, reserved: 2, maxConcurrency: 2, maximaOnly: ['Big'] });
    expect(await environments(daemon)).toEqual({ warm: 0, max: 2, unreserved: 2 });
    for (const name of ['Big', 'One']) expect((await invoke(daemon.socket, name, { out })).result.payload).toBe(name);
  });
});

describe('functions: functions.maxEventBytesInFlight, the payloads of the asynchronous events running at once', () => {
  it('are bounded every function together: events that do not fit wait in their queues, one always runs, and all run', async () => {
    // each handler notes when it started and ended; with a bound smaller than any event, they run one at a time
    const handler = 'const fs = require("node:fs");\nexports.handler = async (event) => {\n'
      + '  const start = Date.now();\n  await new Promise((resolve) => setTimeout(resolve, 150));\n'
      + '  fs.appendFileSync(event.out, JSON.stringify({ fn: process.env.AWS_LAMBDA_FUNCTION_NAME, start, end: Date.now() }) + "\\n");\n};\n';
    const pkg = writePackage({ 'index.js': handler, 'template.yaml': JSON.stringify({ Resources: { First: fn({}), Second: fn({}) } }) });
    const daemon = await TestDaemon.start({ config: { http: { auth: 'none' }, functions: { maxEventBytesInFlight: 1 } } });
    try {
      expect((await outpost(daemon.socket, ['deploy', pkg.dir])).code).toBe(0);
      const out = join(pkg.dir, 'runs.jsonl');
      const invokes = ['First', 'Second'].flatMap((name) => [1, 2, 3].map(() => lambdaInvoke(daemon.port('http'), undefined, name,
        { body: JSON.stringify({ out }), headers: { 'X-Amz-Invocation-Type': 'Event' } })));
      expect((await Promise.all(invokes)).map((response) => response.status)).toEqual([202, 202, 202, 202, 202, 202]);
      const runs = await eventually(() => {
        const lines = existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n') : [];
        return lines.length === 6 && lines.map((line) => JSON.parse(line) as { fn: string; start: number; end: number });
      }, 15_000);
      expect(runs.filter((run) => run.fn === 'First')).toHaveLength(3);
      runs.sort((a, b) => a.start - b.start);
      for (let i = 1; i < runs.length; i++) expect(runs[i].start).toBeGreaterThanOrEqual(runs[i - 1].end);
    } finally {
      await daemon.cleanup();
      pkg.remove();
    }
  });
});

// A busy environment that frees before a new one would have started takes the invocation: Quick's
// handler takes 300 ms to load (its cold start, which is how long an invocation waits for a busy
// environment), and an invocation a few ms. No spare threads, so every environment is a cold start.
describe('functions: an invocation waits for a busy environment of its function no longer than a cold start takes', () => {
  let daemon: TestDaemon;
  let key: AccessKey;
  const pkg = writePackage({
    'template.yaml': JSON.stringify({ Resources: { Quick: fn({ Handler: 'slow-init.handler' }) } }),
    'slow-init.js': 'for (const end = Date.now() + 300; Date.now() < end;);\n' + NODE_HANDLER,
  });
  const out = join(pkg.dir, 'out.jsonl');
  const hold = join(pkg.dir, 'hold-quick');
  const cli = (...args: string[]) => outpost(daemon.socket, args);
  const sync = (event: Record<string, unknown>) => lambdaInvoke(daemon.port('http'), key, 'Quick', { body: JSON.stringify({ out, ...event }) });
  const asyncEvent = (event: Record<string, unknown>) => lambdaInvoke(daemon.port('http'), key, 'Quick', { body: JSON.stringify({ out, ...event }), headers: { 'X-Amz-Invocation-Type': 'Event' } });
  const eventsDone = () => eventually(async () => JSON.parse((await cli('--json', 'functions', 'info', 'Quick')).stdout).asyncEvents === 0, 15_000, 100);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { maxSpareThreads: 0, idleTimeoutSeconds: 600 } } });
    key = await thingKey(daemon.socket, 'invoker');
    const deployed = await cli('deploy', pkg.dir);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    writeFileSync(hold, '');
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('runs invocations that meet, synchronous and asynchronous, on the one environment as it frees', async () => {
    expect((await sync({})).status).toBe(200);
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all([sync({}), asyncEvent({ n: round }), sync({}), sync({})]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 202, 200, 200]);
      expect(await answers[0].text()).toBe('"Quick"');
    }
    await eventsDone();
    expect(eventsIn(out, 'Quick')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await instancesOf(daemon, 'Quick')).toMatchObject({ busy: 0, idle: 1 });
  });

  it('starts another environment for invocations the busy one keeps waiting', async () => {
    const held = sync({ hold });
    await busyOnce(daemon, 'Quick');
    // answered, and the event run, while the first invocation still holds its environment
    const answer = await sync({});
    expect(answer.status).toBe(200);
    expect((await asyncEvent({ n: 10 })).status).toBe(202);
    await eventually(async () => eventsIn(out, 'Quick').includes(10), 15_000, 100);
    expect(await instancesOf(daemon, 'Quick')).toMatchObject({ busy: 1 });
    writeFileSync(hold, '');
    expect((await held).status).toBe(200);
    await eventsDone();
    expect((await instancesOf(daemon, 'Quick')).idle).toBeGreaterThanOrEqual(2);
  });
});
