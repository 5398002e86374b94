import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, lambdaInvoke, thingKey, writePackage, type AccessKey } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// As functions-python.test.ts: the real interpreter behind `python3`.
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

const fn = (properties: Record<string, unknown>, metadata?: Record<string, unknown>) => ({
  Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', ...properties }, ...(metadata ? { Metadata: metadata } : {}),
});

describe('functions: crash loops, Max Memory Used, zero concurrency', () => {
  let daemon: TestDaemon;
  let key: AccessKey;
  const pkg = writePackage({
    'template.yaml': JSON.stringify({
      Resources: {
        // Loads fine at deploy; once FLAG exists every new environment fails at init (and says so in INITS).
        Flaky: fn({ Handler: 'flaky.handler', Environment: { Variables: { FLAG: '', INITS: '' } } }),
        Hungry: fn({ Handler: 'hungry.handler', MemorySize: 256 }),
        HungryProcess: fn({ Handler: 'hungry.handler', MemorySize: 256 }, { Outpost: { Isolation: 'process' } }),
        PyHungry: fn({ Runtime: 'python3.11', Handler: 'hungry.handler', MemorySize: 256 }),
        Closed: fn({ Handler: 'hungry.handler', ReservedConcurrentExecutions: 0 }),
        Size: fn({ Handler: 'size.handler' }),
      },
    }),
    'flaky.js': 'const fs = require("node:fs");\nif (process.env.FLAG && fs.existsSync(process.env.FLAG)) {\n'
      + '  fs.appendFileSync(process.env.INITS, "init\\n");\n  throw new Error("config missing");\n}\nexports.handler = async () => "ok";\n',
    // Keeps about 40 MB alive in the environment.
    'hungry.js': 'const keep = [];\nexports.handler = async () => { keep.push(Buffer.alloc(40 * 1024 * 1024, 1)); keep.push(new Array(1e6).fill(1)); return keep.length; };\n',
    'size.js': 'exports.handler = async (event) => event.text.length;\n',
    'hungry.py': 'keep = []\n\ndef handler(event, context):\n    keep.append(bytearray(40 * 1024 * 1024))\n    return len(keep)\n',
  });
  const flag = join(pkg.dir, 'flag');
  const inits = join(pkg.dir, 'inits.txt');

  beforeAll(async () => {
    // The flaky function's files are named through its environment, so the template above is rewritten with them.
    const templateFile = join(pkg.dir, 'template.yaml');
    writeFileSync(templateFile, readFileSync(templateFile, 'utf8').replace('"FLAG":""', `"FLAG":${JSON.stringify(flag)}`).replace('"INITS":""', `"INITS":${JSON.stringify(inits)}`));
    daemon = await TestDaemon.start({ config: { functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60, maxEventAgeSeconds: 2 } } });
    key = await thingKey(daemon.socket, 'invoker');
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('backs off a function whose environments keep failing at init, and says so', async () => {
    writeFileSync(flag, '');
    // Over HTTP: quick enough that all six fall within the first backoff (1 s).
    for (let i = 0; i < 6; i++) {
      const failed = await lambdaInvoke(daemon.port('http'), key, 'Flaky');
      expect(failed.headers.get('x-amz-function-error'), `attempt ${i}`).toBe('Unhandled');
      expect(await failed.json(), `attempt ${i}`).toMatchObject({ errorType: 'Error', errorMessage: 'config missing' });
    }
    // Three cold starts were tried, each init twice (the second in the invocation, as Lambda's); the next invocations failed at once with the same error.
    expect(readFileSync(inits, 'utf8').trim().split('\n')).toHaveLength(6);
    const info = JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Flaky'])).stdout);
    expect(info.instances).toMatchObject({ initFailures: 3, initError: 'Error: config missing', initVersion: '$LATEST' });
    expect((await outpost(daemon.socket, ['functions', 'info', 'Flaky'])).stdout).toMatch(/init failures\s+3 in a row(, next attempt after \S+)?: Error: config missing/);
    expect(daemon.logs.some((line: any) => line.msg?.includes('keeps failing at init') && line.function === 'Flaky')).toBe(true);
    // Fixed: after the backoff (1 s) a fresh environment starts and the count clears.
    rmSync(flag);
    const recovered = await eventually(async () => ((await invoke(daemon.socket, 'Flaky')).result.payload === 'ok' ? true : undefined), 8000, 300);
    expect(recovered).toBe(true);
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Flaky'])).stdout).instances.initFailures).toBeUndefined();
  });

  it('logs an environment that fails to initialize as Lambda does: INIT_START, the runtime\'s error line, INIT_REPORT, the same for the init\'s second try in the invoke phase, then the invocation with its status', async () => {
    const broken = writePackage({
      'template.yaml': JSON.stringify({
        Resources: {
          NodeInit: fn({ Handler: 'broken.handler', Environment: { Variables: { FLAG: join(pkg.dir, 'broken-flag') } } }),
          PyInit: fn({ Runtime: 'python3.11', Handler: 'pybroken.handler', Environment: { Variables: { FLAG: join(pkg.dir, 'broken-flag') } } }),
          ExitInit: fn({ Handler: 'exits.handler', Environment: { Variables: { FLAG: join(pkg.dir, 'broken-flag') } } }),
        },
      }),
      // Load fine at deploy; with the flag, their module requires one that is not there.
      'broken.js': 'console.log("loading");\nif (require("node:fs").existsSync(process.env.FLAG)) require("not-installed-anywhere");\nexports.handler = async () => "ok";\n',
      'exits.js': 'if (require("node:fs").existsSync(process.env.FLAG)) process.exit(3);\nexports.handler = async () => "ok";\n',
      'pybroken.py': 'import os\nif os.path.exists(os.environ["FLAG"]):\n    import not_installed_anywhere\n\ndef handler(event, context):\n    return "ok"\n',
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', broken.dir])).toMatchObject({ code: 0 });
      writeFileSync(join(pkg.dir, 'broken-flag'), '');
      const logThrough = (name: string, requestId: string) => eventually(() => {
        const file = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
        const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        // From the environment's INIT_START (after the deploy's) through the invocation's REPORT.
        const end = text.indexOf('\n', text.indexOf(`REPORT RequestId: ${requestId}`));
        return text.includes(`REPORT RequestId: ${requestId}`) && end > 0 ? text.slice(text.lastIndexOf('INIT_START', end), end + 1) : undefined;
      });

      const node = await lambdaInvoke(daemon.port('http'), key, 'NodeInit', { headers: { 'X-Amz-Log-Type': 'Tail' } });
      const nodeId = node.headers.get('x-amzn-requestid')!;
      // The log tail has the init's lines too, from the error on (as Lambda's).
      expect(Buffer.from(node.headers.get('x-amz-log-result')!, 'base64').toString('utf8')).toMatch(new RegExp(
        `^([^\\n]+\\tundefined\\tERROR\\tUncaught Exception \\t[^\\n]+\\nINIT_REPORT [^\\n]+\\n){2}START RequestId: ${nodeId} [^\\n]+\\nEND RequestId: ${nodeId}\\nREPORT RequestId: ${nodeId}\\t[^\\n]+\\n$`,
      ));
      const nodeError = await node.json();
      expect(nodeError).toMatchObject({ errorType: 'Runtime.ImportModuleError' });
      expect(nodeError.errorMessage).toMatch(/^Error: Cannot find module 'not-installed-anywhere'\nRequire stack:\n/);
      expect(nodeError.trace[0]).toBe('Runtime.ImportModuleError: Error: Cannot find module \'not-installed-anywhere\'');
      const nodeLog = await logThrough('NodeInit', nodeId);
      const uncaught = [...nodeLog.matchAll(/^\d{4}-[\d-]+T[\d:.]+Z\tundefined\tERROR\tUncaught Exception \t(\{.*\})$/gm)];
      expect(uncaught).toHaveLength(2);
      expect(JSON.parse(uncaught[1][1])).toMatchObject({ errorType: 'Runtime.ImportModuleError', errorMessage: nodeError.errorMessage, stack: nodeError.trace });
      expect(nodeLog).toMatch(new RegExp([
        '^INIT_START Runtime Version: nodejs:20\\n',
        '[^\\n]+\\tundefined\\tINFO\\tloading\\n',
        '[^\\n]+\\tUncaught Exception \\t[^\\n]+\\n',
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: init\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n',
        '[^\\n]+\\tundefined\\tINFO\\tloading\\n',
        '[^\\n]+\\tUncaught Exception \\t[^\\n]+\\n',
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: invoke\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n',
        `START RequestId: ${nodeId} Version: \\$LATEST\\n`,
        `END RequestId: ${nodeId}\\n`,
        `REPORT RequestId: ${nodeId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n$`,
      ].join('')));

      const python = await lambdaInvoke(daemon.port('http'), key, 'PyInit');
      const pythonId = python.headers.get('x-amzn-requestid')!;
      expect(await python.json()).toMatchObject({ errorType: 'Runtime.ImportModuleError', errorMessage: "Unable to import module 'pybroken': No module named 'not_installed_anywhere'" });
      expect(await logThrough('PyInit', pythonId)).toMatch(new RegExp([
        '^INIT_START Runtime Version: python:3\\.11\\n',
        "\\[ERROR\\] Runtime\\.ImportModuleError: Unable to import module 'pybroken': No module named 'not_installed_anywhere'\\rTraceback \\(most recent call last\\):\\n",
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: init\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n',
        "\\[ERROR\\] Runtime\\.ImportModuleError: Unable to import module 'pybroken': No module named 'not_installed_anywhere'\\rTraceback \\(most recent call last\\):\\n",
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: invoke\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n',
        `START RequestId: ${pythonId} Version: \\$LATEST\\nEND RequestId: ${pythonId}\\n`,
        `REPORT RequestId: ${pythonId}\\t[^\\n]*\\tStatus: error\\tError Type: Runtime\\.ImportModuleError\\n$`,
      ].join('')));

      // An environment that exits while loading: the invocation's error names it, as Lambda's does.
      const exits = await lambdaInvoke(daemon.port('http'), key, 'ExitInit');
      const exitsId = exits.headers.get('x-amzn-requestid')!;
      expect(await exits.json()).toEqual({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${exitsId} Error: Runtime exited with error: exit status 3` });
      expect(await logThrough('ExitInit', exitsId)).toMatch(new RegExp([
        '^INIT_START Runtime Version: nodejs:20\\n',
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: init\\tStatus: error\\tError Type: Runtime\\.ExitError\\n',
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: invoke\\tStatus: error\\tError Type: Runtime\\.ExitError\\n',
        `START RequestId: ${exitsId} [^\\n]*\\nEND RequestId: ${exitsId}\\n`,
      ].join('')));
    } finally {
      broken.remove();
      rmSync(join(pkg.dir, 'broken-flag'), { force: true });
    }
  });

  it('tries a failed init again in the invocation, within the function\'s timeout, as Lambda\'s suppressed init: an init that fails once, or takes over 10 s once, answers the handler\'s result', async () => {
    const flaky = writePackage({
      'template.yaml': JSON.stringify({
        Resources: {
          OnceBroken: fn({ Handler: 'once.handler', Environment: { Variables: { FLAG: join(pkg.dir, 'once-flag'), MARK: join(pkg.dir, 'once-mark') } } }),
          OnceSlow: fn({ Handler: 'slow.handler', Timeout: 30, Environment: { Variables: { FLAG: join(pkg.dir, 'once-flag'), MARK: join(pkg.dir, 'slow-mark') } } }),
        },
      }),
      // Load fine at deploy; with the flag, the first load after it fails (throws, or never ends), the next one does not.
      'once.js': 'const fs = require("node:fs");\nif (fs.existsSync(process.env.FLAG) && !fs.existsSync(process.env.MARK)) {\n  fs.writeFileSync(process.env.MARK, "");\n  throw new Error("first load fails");\n}\nexports.handler = async () => "loaded on the second try";\n',
      'slow.mjs': 'import fs from "node:fs";\nif (fs.existsSync(process.env.FLAG) && !fs.existsSync(process.env.MARK)) {\n  fs.writeFileSync(process.env.MARK, "");\n  await new Promise(() => setInterval(() => undefined, 1000));\n}\nexport const handler = async () => "loaded on the second try";\n',
    });
    const log = (name: string, requestId: string) => eventually(() => {
      const file = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const end = text.indexOf('\n', text.indexOf(`REPORT RequestId: ${requestId}`));
      return text.includes(`REPORT RequestId: ${requestId}`) && end > 0 ? text.slice(text.lastIndexOf('INIT_START', end), end + 1) : undefined;
    });
    try {
      expect(await outpost(daemon.socket, ['deploy', flaky.dir])).toMatchObject({ code: 0 });
      writeFileSync(join(pkg.dir, 'once-flag'), '');

      const once = await lambdaInvoke(daemon.port('http'), key, 'OnceBroken');
      expect(once.headers.get('x-amz-function-error')).toBeNull();
      expect(await once.json()).toBe('loaded on the second try');
      const onceId = once.headers.get('x-amzn-requestid')!;
      // the first try's error and INIT_REPORT; the second try succeeded, so its time is the invocation's Duration, with no Init Duration
      expect(await log('OnceBroken', onceId)).toMatch(new RegExp([
        '^INIT_START Runtime Version: nodejs:20\\n',
        '[^\\n]+\\tundefined\\tERROR\\tUncaught Exception \\t[^\\n]+first load fails[^\\n]+\\n',
        'INIT_REPORT Init Duration: [\\d.]+ ms\\tPhase: init\\tStatus: error\\tError Type: Error\\n',
        `START RequestId: ${onceId} Version: \\$LATEST\\n`,
        `END RequestId: ${onceId}\\n`,
        `REPORT RequestId: ${onceId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tMax Memory Used: \\d+ MB\\n$`,
      ].join('')));

      const slow = await lambdaInvoke(daemon.port('http'), key, 'OnceSlow');
      expect(await slow.json()).toBe('loaded on the second try');
      expect(await log('OnceSlow', slow.headers.get('x-amzn-requestid')!)).toMatch(/^INIT_START [^\n]+\nINIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: timeout\nSTART /);
    } finally {
      flaky.remove();
      for (const file of ['once-flag', 'once-mark', 'slow-mark']) rmSync(join(pkg.dir, file), { force: true });
    }
  }, 30_000); // the slow init's 10 s

  it('reports the real Max Memory Used for threads, processes and Python', async () => {
    const report = (name: string, requestId: string) => {
      const file = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
      const line = existsSync(file) ? readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`REPORT RequestId: ${requestId}`)) : undefined;
      return line && Number(/\tMax Memory Used: (\d+) MB/.exec(line)?.[1]);
    };
    for (const name of ['Hungry', 'HungryProcess', 'PyHungry']) {
      await invoke(daemon.socket, name);
      const { result } = await invoke(daemon.socket, name);
      expect(result.payload, name).toBe(name === 'PyHungry' ? 2 : 4);
      const used = await eventually(() => report(name, result.requestId));
      // About 80 MB kept (and a bit of runtime); well under the 256 MB size.
      expect(used, name).toBeGreaterThanOrEqual(80);
      expect(used, name).toBeLessThan(256);
    }
  });

  it('takes a synchronous payload of almost 6 MB through the admin API, and refuses one over with RequestEntityTooLargeException; an asynchronous one over 1 MB too', async () => {
    const file = join(pkg.dir, 'big.json');
    writeFileSync(file, JSON.stringify({ text: 'x'.repeat(6 * 1024 * 1024 - 100) }));
    const big = await outpost(daemon.socket, ['--json', 'invoke', 'Size', '--payload', `@${file}`]);
    expect(JSON.parse(big.stdout).payload).toBe(6 * 1024 * 1024 - 100);
    writeFileSync(file, JSON.stringify({ text: 'x'.repeat(6 * 1024 * 1024) }));
    const over = await outpost(daemon.socket, ['invoke', 'Size', '--payload', `@${file}`]);
    expect(over.stderr).toBe('outpost: RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation\n');
    // An Event's limit is 1 MB; Lambda's message gives the size.
    const event = JSON.stringify({ text: 'x'.repeat(1024 * 1024) });
    const refused = await lambdaInvoke(daemon.port('http'), key, 'Size', { body: event, headers: { 'X-Amz-Invocation-Type': 'Event' } });
    expect(refused.status).toBe(413);
    expect(refused.headers.get('x-amzn-errortype')).toBe('RequestEntityTooLargeException');
    expect(await refused.json()).toEqual({ Type: 'User', message: `${event.length} byte payload is too large for the Event invocation type (limit 1048576 bytes)` });
    // Over the synchronous limit too: still the Event's message, not the synchronous one.
    const huge = JSON.stringify({ text: 'x'.repeat(7 * 1024 * 1024) });
    const hugeRefused = await lambdaInvoke(daemon.port('http'), key, 'Size', { body: huge, headers: { 'X-Amz-Invocation-Type': 'Event' } });
    expect(hugeRefused.status).toBe(413);
    expect(await hugeRefused.json()).toEqual({ Type: 'User', message: `${huge.length} byte payload is too large for the Event invocation type (limit 1048576 bytes)` });
  });

  it('throttles everything of a function with ReservedConcurrentExecutions: 0: sync 429, async events dead-lettered at their maximum age', async () => {
    const refused = await outpost(daemon.socket, ['invoke', 'Closed']);
    expect(refused).toMatchObject({ code: 1, stderr: 'outpost: TooManyRequestsException: Rate Exceeded.\n' });
    // Lambda's Reason says which limit: the function's reserved concurrency.
    const throttled = await lambdaInvoke(daemon.port('http'), key, 'Closed');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(await throttled.json()).toEqual({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    const queued = await outpost(daemon.socket, ['--json', 'invoke', 'Closed', '--async', '--payload', '{"n":1}']);
    expect(JSON.parse(queued.stdout)).toMatchObject({ statusCode: 202 });
    // functions.maxEventAgeSeconds is 2 here; the event never runs.
    const letters = await eventually(async () => {
      const found = JSON.parse((await outpost(daemon.socket, ['--json', 'dlq', 'ls', 'Closed'])).stdout).deadLetters;
      return found.length > 0 ? found : undefined;
    }, 10_000, 250);
    expect(letters).toEqual([expect.objectContaining({ function: 'Closed', event: { n: 1 }, attempts: 0, reason: 'EventAgeExceeded', errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' })]);
  });
});

describe('functions: an answer over 6 MB, on a board-sized heap', () => {
  let daemon: TestDaemon;
  const takenFile = join(mkdtempSync(join(tmpdir(), 'outpost-taken-')), 'taken.jsonl');
  const pkg = writePackage({
    'template.yaml': JSON.stringify({
      Resources: {
        Loud: fn({ Handler: 'loud.handler', MemorySize: 256 }),
        LoudProcess: fn({ Handler: 'loud.handler', MemorySize: 256 }, { Outpost: { Isolation: 'process' } }),
        Wide: fn({ Handler: 'wide.handler' }),
        Taking: fn({ Handler: 'wide.taking', Environment: { Variables: { OUT: takenFile } } }),
      },
    }),
    'loud.js': 'exports.handler = async (event) => "y".repeat(event.mb * 1024 * 1024);\n',
    'wide.js': [
      'const fs = require("node:fs");',
      'const wide = (n) => "é€😀".repeat(n);',
      'exports.handler = async (event) => ({ text: wide(event.n), n: event.n });',
      // what an event arrived as, one line each
      'exports.taking = async (event) => { fs.appendFileSync(process.env.OUT, JSON.stringify({ n: event.n, whole: event.text === wide(event.n) }) + "\\n"); return { n: event.n, whole: event.text === wide(event.n) }; };',
    ].join('\n'),
  });

  beforeAll(async () => {
    // the minimal-128mb board's heap (which caps thread functions' heaps too: nodejs/node#43991): a
    // 12 MB answer copied into the daemon, twice, took all of it
    daemon = await TestDaemon.start({ config: {}, env: { NODE_OPTIONS: '--max-old-space-size=48' } });
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });
  afterAll(async () => {
    await daemon.cleanup();
    pkg.remove();
  });

  it('is refused in the function\'s environment with Function.ResponseSizeTooLarge, threads and processes alike, and the daemon stays up', async () => {
    for (const name of ['Loud', 'LoudProcess']) {
      for (let round = 0; round < 2; round++) {
        const { result, stderr } = await invoke(daemon.socket, name, { mb: 12 });
        expect(result, stderr).toBeDefined();
        expect(result.payload).toEqual({
          errorType: 'Function.ResponseSizeTooLarge',
          errorMessage: `Response payload size (${12 * 1024 * 1024 + 2} bytes) exceeded maximum allowed payload size (6291556 bytes).`,
        });
      }
    }
    expect((await invoke(daemon.socket, 'Loud', { mb: 1 })).result.payload).toHaveLength(1024 * 1024);
    expect(daemon.process.exitCode).toBeNull();
  }, 60_000);

  it('hands a large answer over as it was, characters of every UTF-8 length included, and answers small ones alike', async () => {
    // 9 bytes a repeat: 64 KiB and more go to the daemon as bytes rather than as a string
    for (const n of [1, 7281, 7282, 200_000, 600_000]) {
      const { result, stderr } = await invoke(daemon.socket, 'Wide', { n });
      expect(result, stderr).toBeDefined();
      expect(result.functionError).toBeUndefined();
      expect(result.payload).toEqual({ text: 'é€😀'.repeat(n), n });
    }
  }, 60_000);

  it('hands large events over as they were, alone and among small ones in one batch', async () => {
    // 4 UTF-16 units a repeat and 21 around them: from n = 16379 on, an event (64 Ki characters) goes to its thread as bytes, apart from its batch's text
    const sizes = [1, 16378, 16379, 60_000, 2, 100_000, 3];
    for (const n of [16379, 200_000]) {
      const file = join(dirname(takenFile), `event-${n}.json`);
      writeFileSync(file, JSON.stringify({ text: 'é€😀'.repeat(n), n }));
      const run = await outpost(daemon.socket, ['--json', 'invoke', 'Taking', '--payload', `@${file}`]);
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).payload).toEqual({ n, whole: true });
    }
    writeFileSync(takenFile, '');
    await Promise.all(sizes.map(async (n) => {
      const file = join(dirname(takenFile), `async-${n}.json`);
      writeFileSync(file, JSON.stringify({ text: 'é€😀'.repeat(n), n }));
      const queued = await outpost(daemon.socket, ['--json', 'invoke', 'Taking', '--async', '--payload', `@${file}`]);
      expect(queued.code, queued.stderr).toBe(0);
    }));
    const taken = await eventually(() => {
      const lines = readFileSync(takenFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { n: number; whole: boolean });
      return lines.length === sizes.length ? lines : undefined;
    }, 20_000, 100);
    expect(taken.sort((a, b) => a.n - b.n)).toEqual([...sizes].sort((a, b) => a - b).map((n) => ({ n, whole: true })));
  }, 60_000);
});
