import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPOST, TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { FAULT_CASES, FIXTURES, invoke, template, writePackage } from './helpers/functions.js';
import { jsonLines } from './helpers/json-lines.js';
import { eventually } from './helpers/eventually.js';

describe('functions: deploy, invoke, faults, triggers', () => {
  let daemon: TestDaemon;
  /** Where the MQTT-triggered function appends each event it got. */
  let eventsFile = '';
  const readEvents = () => jsonLines(eventsFile);
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, functions: { maxInstances: 2, idleTimeoutSeconds: 60 } } });
    for (const fixture of ['basic', 'faults']) {
      const deployed = await outpost(daemon.socket, ['deploy', join(FIXTURES, fixture)]);
      expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
    }
  });

  afterAll(async () => {
    for (const cleanup of cleanups) cleanup();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('lists deployed functions at version 1 and shows one with its versions', async () => {
    const ls = await outpost(daemon.socket, ['functions', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+VERSION\s+RUNTIME\s+HANDLER\s+MEMORY\s+TIMEOUT\s+TOPICS\n/);
    expect(ls.stdout).toMatch(/\nEchoCjs\s+1\s+nodejs20\.x\s+index\.handler\s+256 MB\s+5 s\s+-\n/);
    const info = JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'EchoCjs'])).stdout);
    expect(info).toMatchObject({ name: 'EchoCjs', version: 1, environment: { GREETING: 'hello', RETRIES: '3' }, versions: [{ version: 1 }] });
    expect(info.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(join(daemon.dataDir, 'functions', 'EchoCjs', info.hash, 'index.js'))).toBe(true);
    const again = await outpost(daemon.socket, ['deploy', join(FIXTURES, 'basic')]);
    expect(again.stdout).toContain(`EchoCjs: unchanged at version 1 (${info.hash.slice(0, 12)})`);
  });

  it('runs a CommonJS async handler with the Lambda context and environment', async () => {
    const { code, result } = await invoke(daemon.socket, 'EchoCjs', { temp: 21.5 });
    expect(code).toBe(0);
    expect(result).toMatchObject({ statusCode: 200, executedVersion: '$LATEST' });
    const { event, module, context, env } = result.payload;
    expect(event).toEqual({ temp: 21.5 });
    expect(module).toBe('cjs');
    expect(context).toMatchObject({
      functionName: 'EchoCjs',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:EchoCjs',
      memoryLimitInMB: '256',
      logGroupName: '/aws/lambda/EchoCjs',
      callbackWaitsForEmptyEventLoop: true,
    });
    expect(context.awsRequestId).toBe(result.requestId);
    expect(context.logStreamName).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    expect(context.remaining).toBeGreaterThan(4000);
    expect(context.remaining).toBeLessThanOrEqual(5000);
    expect(env).toMatchObject({
      AWS_LAMBDA_FUNCTION_NAME: 'EchoCjs',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/EchoCjs',
      AWS_LAMBDA_LOG_STREAM_NAME: context.logStreamName,
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
      _HANDLER: 'index.handler',
      GREETING: 'hello',
      RETRIES: '3',
    });
    expect(env.LAMBDA_TASK_ROOT).toContain(join('functions', 'EchoCjs'));
    // Nothing of the daemon's own environment leaks into a function's.
    expect(env.HOME).toBeUndefined();
    // A warm instance serves the next invocation.
    expect((await invoke(daemon.socket, 'EchoCjs')).result.payload.threadId).toBe(result.payload.threadId);
  });

  it('writes console output and START/END/REPORT lines to the function log', async () => {
    const { result } = await invoke(daemon.socket, 'EchoCjs', { logged: true });
    const file = join(daemon.dataDir, 'functions', 'EchoCjs', 'logs', 'function.log');
    const lines = await eventually(() => {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return text.includes(`REPORT RequestId: ${result.requestId}`) ? text : undefined;
    });
    expect(lines).toContain(`START RequestId: ${result.requestId} Version: $LATEST\n`);
    expect(lines).toMatch(new RegExp(`\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z\\t${result.requestId}\\tINFO\\techo {"logged":true}\\n`));
    // in order, as on Lambda: all the handler's lines before the END its answer brings
    const chatty = (await invoke(daemon.socket, 'EchoCjs', { moreLines: 50 })).result.requestId;
    const ordered = await eventually(() => {
      const text = readFileSync(file, 'utf8');
      return text.includes(`REPORT RequestId: ${chatty}`) ? text : undefined;
    });
    expect(ordered).toMatch(new RegExp(`START RequestId: ${chatty} [^\\n]*\\n[\\s\\S]*\\t${chatty}\\tINFO\\tline 50\\nEND RequestId: ${chatty}\\n`));
    expect(lines).toMatch(new RegExp(`REPORT RequestId: ${result.requestId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 256 MB`));
  });

  it('prints the log with outpost logs, and follows it with -f', async () => {
    const { result } = await invoke(daemon.socket, 'EchoCjs', { tail: 1 });
    const last = await eventually(async () => {
      const out = await outpost(daemon.socket, ['logs', 'EchoCjs', '-n', '2']);
      return out.stdout.includes(`REPORT RequestId: ${result.requestId}`) ? out : undefined;
    });
    expect(last.code).toBe(0);
    expect(last.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    expect(last.stdout).toContain(`END RequestId: ${result.requestId}\n`);

    const follower = spawn(process.execPath, [OUTPOST, '--socket', daemon.socket, 'logs', 'EchoCjs', '-n', '1', '-f']);
    let followed = '';
    follower.stdout.setEncoding('utf8').on('data', (chunk: string) => { followed += chunk; });
    try {
      await new Promise((resolve) => setTimeout(resolve, 700));
      const next = (await invoke(daemon.socket, 'EchoCjs', { followed: true })).result;
      await eventually(() => followed.includes(`REPORT RequestId: ${next.requestId}`), 8000);
      expect(followed).toContain(`INFO\techo {"followed":true}`);
    } finally {
      follower.kill();
    }
    const missing = await outpost(daemon.socket, ['logs', 'NoSuchFunction']);
    expect(missing.code).toBe(1);
  });

  it('supports callback handlers and context.succeed/fail/done', async () => {
    expect((await invoke(daemon.socket, 'CallbackCjs', { n: 1 })).result.payload).toMatchObject({ event: { n: 1 }, context: { functionName: 'CallbackCjs' } });
    const failed = await invoke(daemon.socket, 'CallbackCjs', { fail: true });
    expect(failed).toMatchObject({ code: 1, result: { functionError: 'Unhandled', payload: { errorType: 'TypeError', errorMessage: 'callback failure' } } });
    expect(failed.result.payload.trace[0]).toBe('TypeError: callback failure');
    expect(failed.stderr).toBe('outpost: CallbackCjs failed (Unhandled): TypeError: callback failure\n');
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'succeed' })).result.payload).toEqual({ via: 'succeed' });
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'done' })).result.payload).toEqual({ via: 'done' });
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'fail' })).result.payload).toMatchObject({ errorType: 'Error', errorMessage: 'context.fail failure' });
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'done-error' })).result.payload).toEqual({ errorType: 'string', errorMessage: 'a plain string', trace: [] });
    // A value that is not an Error answers as one only with a name, message and stack, as Lambda's runtime reads it.
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'fail-error-like' })).result.payload).toEqual({ errorType: 'object', errorMessage: '[object Object]', trace: [] });
    expect((await invoke(daemon.socket, 'ContextCjs', { style: 'reject-error-like' })).result.payload)
      .toEqual({ errorType: 'ValidationError', errorMessage: 'with a stack', trace: ['ValidationError: with a stack', '    at validate (index.js:1:1)'] });
    // A failure without a reason is Lambda's string 'handled'.
    for (const style of ['fail-empty', 'reject-empty']) {
      expect((await invoke(daemon.socket, 'ContextCjs', { style })).result, style).toMatchObject({ functionError: 'Unhandled', payload: { errorType: 'string', errorMessage: 'handled', trace: [] } });
    }
  });

  it('runs ES module handlers: .mjs, and .js under "type": "module" with a nested handler path', async () => {
    const esm = await invoke(daemon.socket, 'EchoEsm', { x: 1 });
    expect(esm.result.payload).toMatchObject({ event: { x: 1 }, module: 'esm', functionName: 'EchoEsm' });
    expect(esm.result.payload.remaining).toBeGreaterThan(2000);
    expect((await invoke(daemon.socket, 'EsmPackage', { y: 2 })).result.payload).toEqual({ nested: true, module: 'esm', event: { y: 2 } });
  });

  it('answers each fault with the Lambda error and serves the next invocation', async () => {
    const ok = async () => {
      const next = await invoke(daemon.socket, 'Faults');
      expect(next.result.payload).toMatchObject({ ok: true });
      return next.result.payload.threadId as number;
    };
    let thread = await ok();
    for (const [mode, error, environment] of FAULT_CASES) {
      const failed = await invoke(daemon.socket, 'Faults', { mode });
      expect(failed.code, mode).toBe(1);
      expect(failed.result, mode).toMatchObject({ statusCode: 200, functionError: 'Unhandled', payload: error });
      const next = await ok();
      if (environment === 'kept') expect(next, mode).toBe(thread);
      else expect(next, mode).not.toBe(thread);
      thread = next;
    }
  }, 60_000); // 15 CLI runs and two 1 s timeouts

  it('stops a handler that allocates beyond MemorySize with Runtime.OutOfMemory; the daemon keeps serving', async () => {
    const failed = await invoke(daemon.socket, 'Oom');
    expect(failed.result.payload).toMatchObject({ errorType: 'Runtime.OutOfMemory', errorMessage: expect.stringContaining('Runtime exited with error: signal: killed') });
    // as Lambda's REPORT of an out-of-memory end: the whole Memory Size used
    const file = join(daemon.dataDir, 'functions', 'Oom', 'logs', 'function.log');
    const report = await eventually(() => (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').find((line) => line.startsWith(`REPORT RequestId: ${failed.result.requestId}`)));
    expect(report).toMatch(/\tMemory Size: 128 MB\tMax Memory Used: 128 MB(\t|$)/);
    expect((await invoke(daemon.socket, 'Faults')).result.payload).toMatchObject({ ok: true });
    expect((await outpost(daemon.socket, ['status'])).code).toBe(0);
  });

  it('refuses a synchronous invoke beyond ReservedConcurrentExecutions with 429 TooManyRequestsException', async () => {
    // Long enough for the polls below and the refused invoke on a loaded machine (each spawns the CLI).
    const first = invoke(daemon.socket, 'Slow', { ms: 12_000 });
    for (let i = 0; i < 50; i++) {
      const info = JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Slow'])).stdout);
      if (info.instances.busy === 1) break;
    }
    const refused = await outpost(daemon.socket, ['invoke', 'Slow']);
    expect(refused).toMatchObject({ code: 1, stderr: 'outpost: TooManyRequestsException: Rate Exceeded.\n' });
    expect((await first).result.payload).toBe('slow done');
    expect((await invoke(daemon.socket, 'Slow', { ms: 1 })).result.payload).toBe('slow done');
  }, 45_000);

  it('exposes per-function invocations, errors, throttles and durations in /metrics', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
    const value = (name: string, fn: string) => Number(metrics.match(new RegExp(`^${name}\\{function="${fn}"\\} (\\d+)`, 'm'))?.[1] ?? 0);
    expect(value('outpost_function_invocations_total', 'Slow')).toBeGreaterThanOrEqual(2);
    expect(value('outpost_function_throttles_total', 'Slow')).toBeGreaterThanOrEqual(1);
    expect(value('outpost_function_errors_total', 'Faults')).toBeGreaterThanOrEqual(7);
    expect(value('outpost_function_duration_seconds_count', 'Slow')).toBeGreaterThanOrEqual(2);
    expect(metrics).toContain('outpost_function_dead_letters ');
  });

  it('refuses templates with unsupported keys, naming each key, and deploys nothing', async () => {
    const bad = writePackage({
      'template.yaml': 'Globals:\n  Function:\n    Timeout: 5\nResources:\n  Bad:\n    Type: AWS::Serverless::Function\n'
        + '    Properties:\n      Handler: index.handler\n      Runtime: nodejs20.x\n      Layers: [x]\n      Timeout: 0\n'
        + '      Events:\n        Tick:\n          Type: SQS\n          Properties:\n            Queue: q\n',
      'index.js': 'exports.handler = async () => 1;\n',
    });
    cleanups.push(bad.remove);
    const refused = await outpost(daemon.socket, ['deploy', bad.dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('outpost: InvalidParameterValueException: template.yaml: ');
    expect(refused.stderr).toContain('Globals: unsupported key');
    expect(refused.stderr).toContain('Resources.Bad.Properties.Layers: unsupported key');
    expect(refused.stderr).toContain('Resources.Bad.Properties.Timeout: expected seconds 1-900');
    expect(refused.stderr).toContain('Resources.Bad.Properties.Events.Tick.Type: unsupported event type "SQS": expected "MQTT" or "Schedule"');
    expect((await outpost(daemon.socket, ['functions', 'info', 'Bad'])).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Bad\n');
    // Named by an ARN, it is not wrapped in another.
    expect((await outpost(daemon.socket, ['functions', 'info', 'arn:aws:lambda:local:000000000000:function:Bad'])).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Bad\n');
  });

  it('refuses environment variables Lambda refuses: names it does not allow, reserved ones, and more than 4 KB together', async () => {
    const deployWith = async (variables: Record<string, string>) => {
      const pkg = writePackage({ 'template.yaml': template('Variables', { Handler: 'index.handler', Environment: { Variables: variables } }), 'index.js': 'exports.handler = async () => process.env;\n' });
      cleanups.push(pkg.remove);
      return outpost(daemon.socket, ['deploy', pkg.dir]);
    };
    const badNames = await deployWith({ 'MY-VAR': 'x', '1ST': 'x', X: 'x', 'A=B': 'x', AWS_ACCESS_KEY: 'x' });
    expect(badNames.code).toBe(1);
    for (const name of ['MY-VAR', '1ST', 'X', 'A=B']) {
      expect(badNames.stderr).toContain(`Variables.Environment.Variables.${name}: expected a name of letters, digits and _ that starts with a letter, at least 2 characters`);
    }
    expect(badNames.stderr).toContain('Variables.Environment.Variables.AWS_ACCESS_KEY: reserved by the runtime');
    const tooBig = await deployWith({ BLOB: 'x'.repeat(4096) });
    expect(tooBig.stderr).toContain('Variables.Environment.Variables: 4107 bytes, over Lambda\'s limit of 4096 for all variables together');
    expect((await outpost(daemon.socket, ['functions', 'info', 'Variables'])).code).toBe(1);
    // Up to the limit, and names such as TZ that Lambda lets a function set, are taken.
    const taken = await deployWith({ TZ: 'Europe/Paris', BLOB: 'x'.repeat(4096 - 31) });
    expect(taken, taken.stderr).toMatchObject({ code: 0 });
    expect((await invoke(daemon.socket, 'Variables')).result.payload).toMatchObject({ TZ: 'Europe/Paris' });
    expect((await outpost(daemon.socket, ['functions', 'rm', 'Variables'])).code).toBe(0);
  });

  it('sets _X_AMZN_TRACE_ID for each invocation, as Lambda\'s Node.js runtime', async () => {
    const pkg = writePackage({ 'template.yaml': template('Traced', { Handler: 'index.handler' }), 'index.js': 'exports.handler = async () => process.env._X_AMZN_TRACE_ID;\n' });
    cleanups.push(pkg.remove);
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const first = (await invoke(daemon.socket, 'Traced')).result.payload;
    const second = (await invoke(daemon.socket, 'Traced')).result.payload;
    expect(first).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(second).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(second).not.toBe(first);
    expect(await outpost(daemon.socket, ['functions', 'rm', 'Traced'])).toMatchObject({ code: 0 });
  });

  it('refuses a Node.js handler that does not load with the error Lambda\'s runtime gives', async () => {
    const cases: Array<[files: Record<string, string>, handler: string, error: string]> = [
      [{ 'index.js': 'exports.handler = 42;\n' }, 'index.handler', 'Runtime.HandlerNotFound: index.handler is not a function'],
      [{ 'index.js': 'require("not-installed-anywhere");\n' }, 'index.handler', "Runtime.ImportModuleError: Error: Cannot find module 'not-installed-anywhere'"],
      [{ 'index.js': 'exports.handler = async () => 1;\n' }, 'index', 'Runtime.MalformedHandlerName: Bad handler'],
      [{ 'index.js': 'exports.handler = async () => 1;\n' }, 'lib/../index.handler', "Runtime.MalformedHandlerName: 'lib/../index.handler' is not a valid handler name."],
    ];
    for (const [files, handler, error] of cases) {
      const pkg = writePackage({ 'template.yaml': template('NodeBad', { Handler: handler }), ...files });
      cleanups.push(pkg.remove);
      const refused = await outpost(daemon.socket, ['deploy', pkg.dir]);
      expect(refused.code, handler).toBe(1);
      expect(refused.stderr, handler).toContain(`NodeBad: the handler does not load (nothing was deployed): ${error}`);
      // not even its check's log: `outpost logs NodeBad` says the function does not exist
      expect(existsSync(join(daemon.dataDir, 'functions', 'NodeBad')), handler).toBe(false);
    }
  });

  it('keeps the running version when a new one does not load, and takes a good one atomically', async () => {
    const v1 = writePackage({ 'template.yaml': template('Versioned', { Handler: 'index.handler' }), 'index.js': 'exports.handler = async () => "v1";\n' });
    const broken = writePackage({ 'template.yaml': template('Versioned', { Handler: 'index.handler' }), 'index.js': 'exports.handler = async () => {\n' });
    const missing = writePackage({ 'template.yaml': template('Versioned', { Handler: 'index.nope' }), 'index.js': 'exports.handler = async () => "v3";\n' });
    const v2 = writePackage({ 'template.yaml': template('Versioned', { Handler: 'index.handler', Timeout: 2 }), 'index.js': 'exports.handler = async () => "v2";\n' });
    cleanups.push(v1.remove, broken.remove, missing.remove, v2.remove);
    expect((await outpost(daemon.socket, ['deploy', v1.dir])).stdout).toMatch(/^Versioned: deployed version 1 \([0-9a-f]{12}\)\n$/);
    expect((await invoke(daemon.socket, 'Versioned')).result.payload).toBe('v1');

    const syntax = await outpost(daemon.socket, ['deploy', broken.dir]);
    expect(syntax).toMatchObject({ code: 1 });
    expect(syntax.stderr).toContain('Versioned: the handler does not load (version 1 keeps running): Runtime.UserCodeSyntaxError');
    const notExported = await outpost(daemon.socket, ['deploy', missing.dir]);
    expect(notExported.stderr).toContain('Runtime.HandlerNotFound: index.nope is undefined or not exported');
    expect((await invoke(daemon.socket, 'Versioned')).result.payload).toBe('v1');
    const info = JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Versioned'])).stdout);
    expect(info.versions).toHaveLength(1);

    expect((await outpost(daemon.socket, ['deploy', v2.dir])).stdout).toMatch(/^Versioned: deployed version 2 /);
    expect((await invoke(daemon.socket, 'Versioned')).result.payload).toBe('v2');
    expect(await outpost(daemon.socket, ['functions', 'rm', 'Versioned'])).toMatchObject({ code: 0, stdout: 'removed Versioned\n' });
    expect((await invoke(daemon.socket, 'Versioned')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Versioned\n');
    expect(existsSync(join(daemon.dataDir, 'functions', 'Versioned'))).toBe(false);
  });

  it('invokes a function for each MQTT message on its topics, JSON or base64, with the topic in clientContext', async () => {
    const out = writePackage({});
    const pkg = writePackage({
      'template.yaml': template('OnTemp', {
        Handler: 'index.handler',
        Environment: { Variables: { OUT_FILE: join(out.dir, 'events.jsonl') } },
        Events: { Temp: { Type: 'MQTT', Properties: { Topic: 'sensors/+/temp' } } },
      }),
      'index.js': 'const fs = require("node:fs");\nexports.handler = async (event, context) => {\n'
        + '  fs.appendFileSync(process.env.OUT_FILE, JSON.stringify({ event, subject: context.clientContext.Custom.subject }) + "\\n");\n};\n',
    });
    cleanups.push(out.remove, pkg.remove);
    eventsFile = join(out.dir, 'events.jsonl');
    expect((await outpost(daemon.socket, ['deploy', pkg.dir])).code).toBe(0);
    const client = await connectClient(daemon.mqttUrl, { clientId: 'fn-sensor' });
    try {
      await client.publishAsync('sensors/greenhouse/temp', JSON.stringify({ celsius: 21.5 }), { qos: 1 });
      await client.publishAsync('sensors/cellar/temp', Buffer.from([0xff, 0x00, 0x01]), { qos: 1 });
      await client.publishAsync('sensors/cellar/humidity', '80', { qos: 1 });
      const lines = await eventually(() => (readEvents().length >= 2 ? readEvents() : undefined));
      expect(lines).toEqual(expect.arrayContaining([
        { event: { celsius: 21.5 }, subject: 'sensors/greenhouse/temp' },
        { event: { base64: Buffer.from([0xff, 0x00, 0x01]).toString('base64') }, subject: 'sensors/cellar/temp' },
      ]));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(readEvents()).toHaveLength(2);
    } finally {
      client.end(true);
    }
  });

  it('keeps functions and their triggers across a restart', async () => {
    expect(await daemon.stop()).toBe(0);
    daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: { mqtt: { allowAnonymous: true }, functions: { maxInstances: 2 } } });
    expect((await invoke(daemon.socket, 'EchoEsm', { after: 'restart' })).result.payload).toMatchObject({ event: { after: 'restart' } });
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'ls'])).stdout).functions.map((f: { name: string }) => f.name))
      .toEqual(['CallbackCjs', 'ContextCjs', 'EchoCjs', 'EchoEsm', 'EsmPackage', 'Faults', 'OnTemp', 'Oom', 'Slow']);
    const client = await connectClient(daemon.mqttUrl, { clientId: 'fn-sensor-2' });
    try {
      await client.publishAsync('sensors/attic/temp', '{"celsius":30}', { qos: 1 });
      const events = await eventually(() => (readEvents().length >= 3 ? readEvents() : undefined));
      expect(events[2]).toEqual({ event: { celsius: 30 }, subject: 'sensors/attic/temp' });
    } finally {
      client.end(true);
    }
  });
});
