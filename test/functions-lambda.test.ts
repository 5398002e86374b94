import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { invoke, lambdaInvoke, template, thingKey, writePackage, type AccessKey, type LambdaRequest } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

// The real interpreter behind `python3` (a pyenv shim needs more environment than a function gets).
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

// Lambda behaviour beyond the basics: X-Amz-Log-Type: Tail, weighted aliases, asynchronous
// invocations of a version or alias, and DestinationConfig with Lambda's invocation records.
describe('functions: log tail, weighted aliases, qualified async invocations, destinations', () => {
  let daemon: TestDaemon;
  const out = writePackage({});
  const cleanups: Array<() => void> = [() => out.remove()];
  const cli = (...args: string[]) => outpost(daemon.socket, args);
  let key: AccessKey;
  const lambda = (name: string, request?: LambdaRequest) => lambdaInvoke(daemon.port('http'), key, name, request);
  const deploy = async (files: Record<string, string>) => {
    const pkg = writePackage(files);
    cleanups.push(pkg.remove);
    const run = await cli('deploy', pkg.dir);
    expect(run, run.stderr).toMatchObject({ code: 0 });
  };
  // Each line a JSON value a handler appended.
  const lines = jsonLines;

  beforeAll(async () => {
    daemon = await TestDaemon.start({
      config: {
        mqtt: { allowAnonymous: true },
        functions: { pythonPath: PYTHON, idleTimeoutSeconds: 60, maxRetryAttempts: 0, retryDelaysSeconds: [1, 1] },
      },
    });
    key = await thingKey(daemon.socket, 'invoker');
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    for (const cleanup of cleanups) cleanup();
  });

  it('returns the end of the invocation\'s log with X-Amz-Log-Type: Tail, over HTTP, the AWS CLI and outpost invoke', async () => {
    await deploy({
      'template.yaml': template('Chatty', { Handler: 'index.handler' }),
      'index.js': 'exports.handler = async (event) => { console.log("hello from", event.who); console.fatal("fatal from", event.who); if (event.bytes) process.stdout.write("x".repeat(event.bytes) + "\\n"); if (event.partial) process.stdout.write("no newline"); return { ok: true }; };\n',
    });
    const response = await lambda('Chatty', { body: JSON.stringify({ who: 'tail' }), headers: { 'X-Amz-Log-Type': 'Tail' } });
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-amzn-requestid');
    const log = Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString('utf8');
    expect(log).toMatch(new RegExp(`^START RequestId: ${requestId} Version: \\$LATEST\\n`));
    expect(log).toMatch(new RegExp(`\\t${requestId}\\tINFO\\thello from tail\\n`));
    // Lambda's Node.js runtime adds console.fatal
    expect(log).toMatch(new RegExp(`\\t${requestId}\\tFATAL\\tfatal from tail\\n`));
    expect(log).toMatch(new RegExp(`END RequestId: ${requestId}\\nREPORT RequestId: ${requestId}\\tDuration: [0-9.]+ ms\\t[^\\n]*\\n$`));
    // None (the default) returns no log; other values are refused as Lambda refuses them.
    expect((await lambda('Chatty')).headers.get('x-amz-log-result')).toBeNull();
    const refused = await lambda('Chatty', { headers: { 'X-Amz-Log-Type': 'Full' } });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('x-amzn-errortype')).toBe('ValidationException');

    // The last 4 KB only, ending with REPORT.
    const big = await lambda('Chatty', { body: JSON.stringify({ who: 'big', bytes: 10_000 }), headers: { 'X-Amz-Log-Type': 'Tail' } });
    const bigLog = Buffer.from(big.headers.get('x-amz-log-result')!, 'base64');
    expect(bigLog.length).toBe(4096);
    expect(bigLog.toString('utf8')).toMatch(/xxxx\nEND RequestId: [0-9a-f-]{36}\nREPORT RequestId: [^\n]+\n$/);

    // Output without a final newline: END starts a line of its own, in the tail and in the log file.
    const partial = await lambda('Chatty', { body: JSON.stringify({ who: 'partial', partial: true }), headers: { 'X-Amz-Log-Type': 'Tail' } });
    const partialId = partial.headers.get('x-amzn-requestid')!;
    expect(Buffer.from(partial.headers.get('x-amz-log-result')!, 'base64').toString('utf8')).toContain(`no newline\nEND RequestId: ${partialId}\n`);
    const logFile = join(daemon.dataDir, 'functions', 'Chatty', 'logs', 'function.log');
    expect(await eventually(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(`END RequestId: ${partialId}`) && readFileSync(logFile, 'utf8')))
      .toContain(`no newline\nEND RequestId: ${partialId}\n`);

    // The AWS CLI reads LogResult from the header.
    const result = join(out.dir, 'aws-out.json');
    const aws = await new Promise<string>((resolve, reject) => execFile('/usr/bin/aws', [
      'lambda', 'invoke', '--function-name', 'Chatty', '--log-type', 'Tail', '--cli-binary-format', 'raw-in-base64-out',
      '--payload', '{"who":"aws"}', '--endpoint-url', `http://127.0.0.1:${daemon.port('http')}`, '--region', 'local', result,
    ], { env: { ...process.env, AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' }, timeout: 30_000 },
    (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))));
    expect(Buffer.from(JSON.parse(aws).LogResult, 'base64').toString('utf8')).toContain('hello from aws');
    expect(JSON.parse(readFileSync(result, 'utf8'))).toEqual({ ok: true });

    // outpost invoke --log-type Tail prints the log to stderr, the response to stdout.
    const run = await cli('invoke', 'Chatty', '--payload', '{"who":"cli"}', '--log-type', 'Tail');
    expect(run).toMatchObject({ code: 0, stdout: '{"ok":true}\n' });
    expect(run.stderr).toMatch(/^START RequestId: [\s\S]*hello from cli[\s\S]*REPORT RequestId: /);
    expect((await cli('invoke', 'Chatty', '--async', '--log-type', 'Tail')).stderr).toContain('only for synchronous invocations');
  });

  it('returns the log tail of a Python invocation too', async () => {
    await deploy({
      'template.yaml': template('PyChatty', { Handler: 'app.handler', Runtime: 'python3.12' }),
      'app.py': 'def handler(event, context):\n    print("python says", event["who"])\n    return {"ok": True}\n',
    });
    const response = await lambda('PyChatty', { body: '{"who":"tail"}', headers: { 'X-Amz-Log-Type': 'Tail' } });
    expect(response.status).toBe(200);
    const log = Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString('utf8');
    expect(log).toMatch(/^START RequestId: [\s\S]*python says tail\n[\s\S]*END RequestId: [\s\S]*REPORT RequestId: /);
  });

  it('answers a result JSON cannot hold as Lambda\'s runtimes do: Node.js a plain Error, Python 3.12 and later non-ASCII text unescaped', async () => {
    await deploy({
      'template.yaml': JSON.stringify({ Resources: Object.assign({}, ...[
        template('Cyclic', { Handler: 'index.handler' }), template('Py311', { Handler: 'app.handler', Runtime: 'python3.11' }), template('Py312', { Handler: 'app.handler', Runtime: 'python3.12' }),
      ].map((one) => JSON.parse(one).Resources)) }),
      'index.js': 'exports.handler = async () => { const a = {}; a.a = a; return a; };\n',
      'app.py': 'def handler(event, context):\n    return {"s": "h\u00e9llo \u2603"}\n',
    });
    const cyclic = await lambda('Cyclic');
    expect(cyclic.headers.get('x-amz-function-error')).toBe('Unhandled');
    expect(await cyclic.json()).toMatchObject({ errorType: 'Error', errorMessage: 'Unable to stringify response body', trace: expect.arrayContaining([expect.stringMatching(/^Error: Unable to stringify response body/)]) });
    expect(await (await lambda('Py311')).text()).toBe('{"s": "h\\u00e9llo \\u2603"}');
    expect(await (await lambda('Py312')).text()).toBe('{"s": "h\u00e9llo \u2603"}');
  });

  it('finds a handler\'s module as Lambda\'s Node.js runtime does: a file without an extension, a package in node_modules', async () => {
    await deploy({
      'template.yaml': JSON.stringify({ Resources: Object.assign({}, ...[
        template('Bare', { Handler: 'main.handler' }), template('Packaged', { Handler: 'sensor-kit.handler' }),
      ].map((one) => JSON.parse(one).Resources)) }),
      main: 'exports.handler = async () => "from main";\n',
      'node_modules/sensor-kit/package.json': '{"name":"sensor-kit","main":"lib/entry.js"}',
      'node_modules/sensor-kit/lib/entry.js': 'exports.handler = async () => "from sensor-kit";\n',
    });
    expect(await (await lambda('Bare')).json()).toBe('from main');
    expect(await (await lambda('Packaged')).json()).toBe('from sensor-kit');
  });

  it('keeps what the handler printed in the log tail of an invocation that ended its environment: a timeout, an exit, an uncaught exception, in a thread or a process', async () => {
    const handler = `exports.handler = async (event) => {
  console.log('before', event.mode);
  if (event.mode === 'hang') return new Promise(() => setInterval(() => undefined, 1000));
  if (event.mode === 'exit') process.exit(4);
  setImmediate(() => { throw new Error('thrown later'); });
  return new Promise(() => undefined);
};
`;
    const resource = (isolation: string) => ({
      Type: 'AWS::Serverless::Function',
      Properties: { Runtime: 'nodejs20.x', Handler: 'ends.handler', Timeout: 1 },
      Metadata: { Outpost: { Isolation: isolation } },
    });
    await deploy({
      'template.yaml': JSON.stringify({ Resources: { EndsThread: resource('thread'), EndsProcess: resource('process') } }),
      'ends.js': handler,
    });
    const ending: Record<string, RegExp> = {
      hang: /Task timed out after 1\.00 seconds/,
      exit: /Runtime\.ExitError/,
      throw: /ERROR\tUncaught Exception \t\{"errorType":"Error","errorMessage":"thrown later"/,
    };
    for (const name of ['EndsThread', 'EndsProcess']) {
      for (const [mode, said] of Object.entries(ending)) {
        const response = await lambda(name, { body: JSON.stringify({ mode }), headers: { 'X-Amz-Log-Type': 'Tail' } });
        expect(response.headers.get('x-amz-function-error')).toBe('Unhandled');
        const log = Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString('utf8');
        expect({ name, mode, log }).toEqual({ name, mode, log: expect.stringMatching(new RegExp(`^START RequestId: [\\s\\S]*\tINFO\tbefore ${mode}\n[\\s\\S]*${said.source}[\\s\\S]*END RequestId: [\\s\\S]*REPORT RequestId: `)) });
      }
    }
  });

  it('holds the Invoke API to SigV4 (service lambda) as the shadow routes: unsigned, badly signed and thing-less keys are refused', async () => {
    await deploy({
      'template.yaml': template('Guarded', { Handler: 'index.handler' }),
      'index.js': 'exports.handler = async () => "ran";\n',
    });
    const port = daemon.port('http');
    const refused = async (response: Response, status: number, type: string) => {
      expect(response.status, type).toBe(status);
      expect(response.headers.get('x-amzn-errortype')).toBe(type);
      expect(await response.json()).toMatchObject({ Type: 'User' });
    };
    // 403, as Lambda answers UnrecognizedClientException
    await refused(await lambdaInvoke(port, undefined, 'Guarded'), 403, 'UnrecognizedClientException');
    await refused(await lambdaInvoke(port, undefined, 'Guarded', { headers: { 'X-Amz-Invocation-Type': 'Event' } }), 403, 'UnrecognizedClientException');
    await refused(await lambdaInvoke(port, { ...key, secretAccessKey: 'not-the-secret-at-all-0123456789abcdefgh' }, 'Guarded'), 403, 'UnrecognizedClientException');
    // An S3 key bound to no thing is no data plane identity.
    const s3Only = JSON.parse((await cli('s3', 'keys', 'add', '--read', '*', '--json')).stdout);
    await refused(await lambdaInvoke(port, s3Only, 'Guarded'), 403, 'AccessDeniedException');
    // The shadow routes on the same port refuse the unsigned the same way.
    expect((await fetch(`http://127.0.0.1:${port}/things/invoker/shadow`)).status).toBe(401);
    const signed = await lambdaInvoke(port, key, 'Guarded');
    expect(signed.status).toBe(200);
    expect(await signed.text()).toBe('"ran"');
  });

  it.each(['thread', 'process', 'python'])('logs each of the queued events an environment (%s) runs one after the other from its START to its REPORT, not into the one before', { timeout: 30_000 }, async (isolation) => {
    const name = `OneAtATime${isolation}`;
    await deploy({
      // one environment: the events wait for it (a thread gets them together, a process one by one)
      'template.yaml': JSON.stringify({ Resources: { [name]: isolation === 'python'
        ? { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'python3.12', Handler: 'app.handler', ReservedConcurrentExecutions: 1 } }
        : {
          Type: 'AWS::Serverless::Function',
          Properties: { Runtime: 'nodejs20.x', Handler: 'index.handler', ReservedConcurrentExecutions: 1 },
          Metadata: { Outpost: { Isolation: isolation } },
        } } }),
      'index.js': 'exports.handler = async (event) => { console.log("begin", event.n); await new Promise((resolve) => setTimeout(resolve, 20)); console.log("finish", event.n); process.stdout.write(`raw ${event.n}\\n`); if (event.n % 4 === 3) process.stdout.write("x".repeat(100000) + "\\n"); return event.n; };\n',
      'app.py': [
        'import sys, time',
        'def handler(event, context):',
        '    print("begin", event["n"])',
        '    time.sleep(0.02)',
        '    print("finish", event["n"])',
        '    sys.stdout.write("raw %d\\n" % event["n"])',
        '    if event["n"] % 4 == 3: sys.stdout.write("x" * 100000 + "\\n")',
        '    return event["n"]',
        '',
      ].join('\n'),
    });
    // events 3 and 7 write more than a pipe holds just before they answer: a process's last lines came after its END
    const events = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    for (const run of await Promise.all(events.map((n) => cli('invoke', name, '--async', '--payload', JSON.stringify({ n }))))) expect(run, run.stderr).toMatchObject({ code: 0 });
    const logFile = join(daemon.dataDir, 'functions', name, 'logs', 'function.log');
    const log = await eventually(() => {
      const read = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      return (read.match(/^REPORT RequestId/gm) ?? []).length === events.length ? read : undefined;
    });
    // each invocation's lines: START, its two console lines (Node.js: under its request id) and its raw writes, END, REPORT
    const invocations = [...log.matchAll(/^START RequestId: (\S+) Version: \$LATEST\n((?:.*\n)*?)END RequestId: (\S+)\nREPORT RequestId: (\S+)\t.*\n/gm)]
      .map(([, start, body, end, report]) => ({ ends: [end, report].every((id) => id === start), body: body.replace(/^\S+\t(\S+)\t/gm, (_, id: string) => (id === start ? '' : `${id}\t`)) }));
    expect(invocations).toEqual(events.map(() => ({ ends: true, body: expect.stringMatching(/^(?:INFO\t)?begin (\d+)\n(?:INFO\t)?finish \1\nraw \1\n(x{100000}\n)?$/) })));
  });

  it('keeps an asynchronous event\'s request id across its retries, and answers it as x-amzn-RequestId (202 and 200)', async () => {
    const file = join(out.dir, 'retried.jsonl');
    await deploy({
      'template.yaml': template('Retried', { Handler: 'index.handler', EventInvokeConfig: { MaximumRetryAttempts: 1 } }),
      'index.js': `const fs = require("node:fs");\nexports.handler = async (event, context) => { fs.appendFileSync(${JSON.stringify(file)}, JSON.stringify(context.awsRequestId) + "\\n"); if (event.fail) throw new Error("again"); return context.awsRequestId; };\n`,
    });
    const queued = await lambda('Retried', { body: '{"fail":true}', headers: { 'X-Amz-Invocation-Type': 'Event' } });
    expect(queued.status).toBe(202);
    const requestId = queued.headers.get('x-amzn-requestid');
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // the first attempt and its retry (1 s later: retryDelaysSeconds)
    expect(await eventually(() => { const got = lines(file); return got.length === 2 ? got : undefined; })).toEqual([requestId, requestId]);
    const sync = await lambda('Retried');
    expect(sync.headers.get('x-amzn-requestid')).toBe(await sync.json());
  });

  it('queues an event with the deprecated InvokeAsync API that the AWS CLI still has (invoke-async), 202 and {"Status": 202}', async () => {
    const file = join(out.dir, 'invoked-async.jsonl');
    await deploy({
      'template.yaml': template('Queued', { Handler: 'index.handler' }),
      'index.js': `const fs = require("node:fs");\nexports.handler = async (event, context) => { fs.appendFileSync(${JSON.stringify(file)}, JSON.stringify([event, context.awsRequestId]) + "\\n"); };\n`,
    });
    const args = join(out.dir, 'invoke-args.json');
    writeFileSync(args, '{"via":"invoke-async"}');
    const aws = (...more: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => execFile('/usr/bin/aws', [
      'lambda', 'invoke-async', ...more, '--endpoint-url', `http://127.0.0.1:${daemon.port('http')}`, '--region', 'local',
    ], { env: { ...process.env, AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_MAX_ATTEMPTS: '1' }, timeout: 30_000 },
    (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr })));
    const queued = await aws('--function-name', 'Queued', '--invoke-args', args);
    expect(queued, queued.stderr).toMatchObject({ code: 0 });
    expect(JSON.parse(queued.stdout)).toEqual({ Status: 202 });
    expect(await eventually(() => { const got = lines(file); return got.length === 1 ? got : undefined; })).toEqual([[{ via: 'invoke-async' }, expect.stringMatching(/^[0-9a-f-]{36}$/)]]);
    // Lambda's errors, nothing queued
    expect((await aws('--function-name', 'Missing', '--invoke-args', args)).stderr).toContain('ResourceNotFoundException');
    writeFileSync(args, '{"not json');
    expect((await aws('--function-name', 'Queued', '--invoke-args', args)).stderr).toContain('InvalidRequestContentException');
    writeFileSync(args, JSON.stringify({ big: 'x'.repeat(256 * 1024) }));
    expect((await aws('--function-name', 'Queued', '--invoke-args', args)).stderr).toContain('RequestEntityTooLargeException');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lines(file)).toHaveLength(1);
  });

  it('gives a Python handler context.client_context and context.identity as objects, as Lambda\'s Python runtime', async () => {
    await deploy({
      'template.yaml': template('PyContext', { Handler: 'app.handler', Runtime: 'python3.12' }),
      'app.py': [
        'def handler(event, context):',
        '    client = context.client_context.client',
        '    return {',
        '        "installation_id": client.installation_id, "app_version_name": client.app_version_name,',
        '        "custom": context.client_context.custom, "env": context.client_context.env,',
        '        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],',
        '    }',
        '',
      ].join('\n'),
    });
    const clientContext = { client: { installation_id: 'install-1', app_title: 'Yard' }, custom: { zone: 'north' }, env: { platform: 'linux' } };
    const response = await lambda('PyContext', { headers: { 'X-Amz-Client-Context': Buffer.from(JSON.stringify(clientContext)).toString('base64') } });
    expect(response.headers.get('x-amz-function-error')).toBeNull();
    expect(await response.json()).toEqual({
      installation_id: 'install-1', app_version_name: null, custom: { zone: 'north' }, env: { platform: 'linux' }, identity: [null, null],
    });
  });

  it('splits an alias\'s invocations between two versions by RoutingConfig weight', async () => {
    const tagged = (tag: string) => ({
      'template.yaml': template('Weighted', { Handler: 'index.handler' }),
      'index.js': `exports.handler = async (event, context) => ({ tag: ${JSON.stringify(tag)}, version: context.functionVersion, arn: context.invokedFunctionArn });\n`,
    });
    await deploy(tagged('one'));
    await deploy(tagged('two'));
    expect(await cli('functions', 'alias', 'Weighted', 'live', '1', '--weight', '2=0.5')).toMatchObject({ code: 0, stdout: 'Weighted:live -> version 1 (2 gets 0.5)\n' });
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const response = await lambda('Weighted', { query: '?Qualifier=live' });
      const body = await response.json() as { tag: string; version: string; arn: string };
      // The version that ran says so, in the header and to the handler; the ARN keeps the alias.
      expect(response.headers.get('x-amz-executed-version')).toBe(body.version);
      expect(body).toMatchObject({ tag: body.version === '1' ? 'one' : 'two', arn: 'arn:aws:lambda:local:000000000000:function:Weighted:live' });
      seen.set(body.version, (seen.get(body.version) ?? 0) + 1);
    }
    // Both halves are taken (each missing from 60 fair draws has odds of 2^-60).
    expect([...seen.keys()].sort()).toEqual(['1', '2']);
    const info = await cli('functions', 'info', 'Weighted');
    expect(info.stdout).toMatch(/\n1\s+[0-9a-f]{12}\s+\S+\s+live \(50%\)\n2\s+[0-9a-f]{12}\s+\S+\s+\$LATEST live \(50%\)\n/);
    expect(JSON.parse((await cli('--json', 'functions', 'info', 'Weighted')).stdout).aliases)
      .toEqual([{ alias: 'live', version: 1, additionalVersionWeights: { 2: 0.5 }, updatedAt: expect.any(Number) }]);

    // Weight 1: all to the additional version; moving the alias without --weight ends the routing.
    await cli('functions', 'alias', 'Weighted', 'live', '1', '--weight', '2=1');
    for (let i = 0; i < 5; i++) expect((await invoke(daemon.socket, 'Weighted:live')).result.executedVersion).toBe('2');
    await cli('functions', 'alias', 'Weighted', 'live', '1');
    for (let i = 0; i < 5; i++) expect((await invoke(daemon.socket, 'Weighted:live')).result.executedVersion).toBe('1');

    // Refused, clearly, changing nothing.
    expect((await cli('functions', 'alias', 'Weighted', 'live', '2', '--weight', '2=0.1')).stderr).toContain('version 2 is the alias\'s own version');
    expect((await cli('functions', 'alias', 'Weighted', 'live', '2', '--weight', '9=0.1')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Weighted:9\n');
    expect((await cli('functions', 'alias', 'Weighted', 'live', '2', '--weight', '1=1.5')).stderr).toContain('expected a weight from 0.0 to 1.0');
    expect((await cli('functions', 'alias', 'Weighted', 'live', '2', '--weight', 'one')).stderr).toContain('--weight: expected VERSION=WEIGHT');
    expect(await cli('functions', 'alias', 'Weighted', 'live', '2', '--weight', '1=0.1', '--weight', '3=0.1'))
      .toMatchObject({ code: 2, stderr: 'outpost: --weight: one additional version at most (Lambda\'s RoutingConfig)\n(add --help for usage)\n' });
    expect(JSON.parse((await cli('--json', 'functions', 'info', 'Weighted')).stdout).aliases).toEqual([{ alias: 'live', version: 1, updatedAt: expect.any(Number) }]);
  }, 60_000); // 2 deploys, 70 invocations and 8 CLI runs

  it('runs an asynchronous invocation of a version or an alias on that version, from the CLI and the Invoke API', async () => {
    const file = join(out.dir, 'qualified.jsonl');
    const tagged = (tag: string) => ({
      'template.yaml': template('Qualified', { Handler: 'index.handler', Environment: { Variables: { OUT_FILE: file } } }),
      'index.js': `const fs = require("node:fs");\nexports.handler = async (event, context) => { fs.appendFileSync(process.env.OUT_FILE, JSON.stringify({ n: event.n, tag: ${JSON.stringify(tag)}, version: context.functionVersion, arn: context.invokedFunctionArn, clientContext: context.clientContext }) + "\\n"); };\n`,
    });
    await deploy(tagged('one'));
    await deploy(tagged('two'));
    expect((await cli('functions', 'alias', 'Qualified', 'stable', '1')).code).toBe(0);
    expect((await cli('invoke', 'Qualified:1', '--async', '--payload', '{"n":1}')).code).toBe(0);
    expect((await cli('invoke', 'Qualified:stable', '--async', '--payload', '{"n":2}')).code).toBe(0);
    // Lambda passes ClientContext to synchronous invocations only: n 3 runs without it.
    const clientContext = Buffer.from(JSON.stringify({ custom: { dropped: true } })).toString('base64');
    expect((await lambda('Qualified', { query: '?Qualifier=stable', body: '{"n":3}', headers: { 'X-Amz-Invocation-Type': 'Event', 'X-Amz-Client-Context': clientContext } })).status).toBe(202);
    expect((await cli('invoke', 'Qualified', '--async', '--payload', '{"n":4}')).code).toBe(0);
    const ran = await eventually(() => { const got = lines(file); return got.length === 4 ? got : undefined; });
    const arn = 'arn:aws:lambda:local:000000000000:function:Qualified';
    expect(ran.sort((a, b) => a.n - b.n)).toEqual([
      { n: 1, tag: 'one', version: '1', arn: `${arn}:1` },
      { n: 2, tag: 'one', version: '1', arn: `${arn}:stable` },
      { n: 3, tag: 'one', version: '1', arn: `${arn}:stable` },
      { n: 4, tag: 'two', version: '$LATEST', arn },
    ]);
    // An unknown qualifier is refused before anything is queued.
    expect((await cli('invoke', 'Qualified:nope', '--async')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Qualified:nope\n');
  });

  it('ends REPORT with Status: timeout or Status: error and the error type when the platform ended the invocation, with Init Duration on cold starts', async () => {
    await deploy({
      'template.yaml': template('Reporter', { Handler: 'index.handler', Timeout: 1 }),
      'index.js': [
        // an init phase of 50 ms at least
        'const until = Date.now() + 50; while (Date.now() < until);',
        'exports.handler = async (event) => {',
        '  if (event.op === "hang") return new Promise(() => setInterval(() => undefined, 100));',
        '  if (event.op === "exit") process.exit(3);',
        '  return "fine";',
        '};',
      ].join('\n'),
    });
    const logOf = async (op: string) => {
      const response = await lambda('Reporter', { body: JSON.stringify({ op }), headers: { 'X-Amz-Log-Type': 'Tail' } });
      const requestId = response.headers.get('x-amzn-requestid')!;
      return { requestId, log: Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString('utf8') };
    };
    const hung = await logOf('hang');
    expect(hung.log).toMatch(new RegExp(`\\n\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${hung.requestId} Task timed out after 1\\.00 seconds\\nEND RequestId: ${hung.requestId}\\n`));
    expect(hung.log).toMatch(/\tInit Duration: [\d.]+ ms\tStatus: timeout\n$/);
    expect(hung.log).not.toContain('Invoke Error');
    // A fresh environment: cold, no status, its Init Duration billed too (as Lambda bills it since August 2025); then warm.
    const cold = (await logOf('fine')).log;
    expect(cold).toMatch(/\tMemory Size: 128 MB[^\n]*\tInit Duration: [\d.]+ ms\n$/);
    const [, duration, billed, init] = /\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\t[^\n]*\tInit Duration: ([\d.]+) ms/.exec(cold)!.map(Number);
    // each printed to 0.01 ms: their sum rounded up may differ from the exact sum's by 1
    expect(billed).toBeGreaterThanOrEqual(Math.ceil(duration + init) - 1);
    expect(billed).toBeLessThanOrEqual(Math.ceil(duration + init) + 1);
    expect(init).toBeGreaterThanOrEqual(50);
    const warm = (await logOf('fine')).log;
    expect(warm).not.toContain('Init Duration');
    expect(warm).not.toContain('Status:');
    const exited = await logOf('exit');
    expect(exited.log).toContain(`RequestId: ${exited.requestId} Error: Runtime exited with error: exit status 3\nRuntime.ExitError\nEND RequestId: ${exited.requestId}\n`);
    expect(exited.log).toMatch(/\tStatus: error\tError Type: Runtime\.ExitError\n$/);
  });

  it('logs a Node.js handler\'s error as Lambda\'s runtime does: Invoke Error and the error with its stack lines under "stack"', async () => {
    await deploy({
      'template.yaml': template('Thrower', { Handler: 'index.handler' }),
      'index.js': 'exports.handler = async () => { throw new TypeError("boom"); };\n',
    });
    const response = await lambda('Thrower', { headers: { 'X-Amz-Log-Type': 'Tail' } });
    const requestId = response.headers.get('x-amzn-requestid')!;
    const answer = await response.json();
    expect(answer).toMatchObject({ errorType: 'TypeError', errorMessage: 'boom' });
    expect(answer.trace[0]).toBe('TypeError: boom');
    const log = Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString('utf8');
    const line = new RegExp(`\\n\\d{4}-[\\d-]+T[\\d:.]+Z\\t${requestId}\\tERROR\\tInvoke Error \\t(\\{[^\\n]*\\})\\nEND RequestId: ${requestId}\\n`).exec(log);
    expect(JSON.parse(line![1])).toEqual({ errorType: 'TypeError', errorMessage: 'boom', stack: answer.trace });
  });

  it('logs an uncaught exception and an unhandled rejection as Lambda\'s Node.js runtime does, under the invocation\'s request id', async () => {
    await deploy({
      'template.yaml': template('Crasher', { Handler: 'index.handler' }),
      'index.js': [
        'exports.handler = (event) => new Promise(() => {',
        '  if (event.op === "throw") setTimeout(() => { throw new Error("from a timer"); }, 10);',
        '  else Promise.reject(new Error("nobody awaits this"));',
        '});',
      ].join('\n'),
    });
    const file = join(daemon.dataDir, 'functions', 'Crasher', 'logs', 'function.log');
    for (const [op, label, error] of [
      ['throw', 'Uncaught Exception', { errorType: 'Error', errorMessage: 'from a timer' }],
      ['reject', 'Unhandled Promise Rejection', { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody awaits this' }],
    ] as const) {
      const response = await lambda('Crasher', { body: JSON.stringify({ op }) });
      const requestId = response.headers.get('x-amzn-requestid')!;
      expect(await response.json()).toMatchObject(error);
      const log = await eventually(() => {
        const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        return text.includes(`REPORT RequestId: ${requestId}`) ? text.slice(text.indexOf(`START RequestId: ${requestId}`)) : undefined;
      });
      const line = new RegExp(`^[\\d-]+T[\\d:.]+Z\\t${requestId}\\tERROR\\t${label} \\t(\\{[^\\n]*\\})\\nEND RequestId: ${requestId}\\n`, 'm').exec(log);
      expect(JSON.parse(line![1])).toMatchObject({ ...error, stack: expect.any(Array) });
      expect(log.slice(0, log.indexOf('REPORT'))).not.toContain('Invoke Error');
    }
  });

  it('answers a callback with callbackWaitsForEmptyEventLoop true once the event loop is empty, as Lambda\'s runtime does, and a loop still busy at the timeout with the timeout error', async () => {
    await deploy({
      'template.yaml': template('Waiter', { Handler: 'index.handler', Timeout: 1 }),
      'index.js': [
        'const environment = Math.random();',
        'let fired = 0;',
        'exports.handler = (event, context, callback) => {',
        // Lambda's runtime serializes a callback's answer when it sends it: after the timer changed it.
        '  if (event.op === "timer") { const answer = { fired: false }; setTimeout(() => { fired++; answer.fired = true; }, 500); return callback(null, answer); }',
        '  if (event.op === "forever") setInterval(() => undefined, 100);',
        '  if (event.op === "promise") { setTimeout(() => { fired++; }, 10_000); return Promise.resolve("left running"); }',
        '  if (event.op === "peek") return context.succeed({ fired, environment });',
        '  callback(null, event.op ? "left running" : { fired, environment });',
        '};',
      ].join('\n'),
    });
    const call = async (event: object) => (await lambda('Waiter', { body: JSON.stringify(event) })).json();
    expect(await call({ op: 'timer' })).toEqual({ fired: true });
    const first = await call({});
    expect(first.fired).toBe(1);
    // A loop that never empties: the timeout's error, and the next event gets a fresh environment.
    expect(await call({ op: 'forever' })).toMatchObject({ errorType: 'Sandbox.Timedout', errorMessage: expect.stringMatching(/ Error: Task timed out after 1\.00 seconds$/) });
    const fresh = await call({});
    expect(fresh).toMatchObject({ fired: 0 });
    expect(fresh.environment).not.toBe(first.environment);
    // A promise's answer does not wait (as Lambda's): its environment takes the next event at once
    // (a callback's would wait for the timer left behind, past the timeout, as on Lambda).
    expect(await call({ op: 'promise' })).toBe('left running');
    expect(await call({ op: 'peek' })).toMatchObject({ fired: 0, environment: fresh.environment });
  });

  it('reports the wait for an empty event loop after a callback in REPORT\'s Duration, as Lambda bills it, and a loop still busy at the timeout as a timeout', async () => {
    await deploy({
      'template.yaml': template('Biller', { Handler: 'index.handler', Timeout: 1 }),
      'index.js': [
        'let fired = 0;',
        'exports.handler = (event, context, callback) => {',
        '  if (event.op === "timer") setTimeout(() => { fired++; console.log("timer fired"); }, 600);',
        '  if (event.op === "forever") setInterval(() => undefined, 100);',
        '  if (event.op === "error") { setTimeout(() => { fired++; }, 600); return callback(new Error("failed")); }',
        '  callback(null, event.op ? "answered" : { fired });',
        '};',
      ].join('\n'),
    });
    const call = async (event: object) => {
      const response = await lambda('Biller', { body: JSON.stringify(event), headers: { 'X-Amz-Log-Type': 'Tail' } });
      return { payload: await response.json(), log: Buffer.from(response.headers.get('x-amz-log-result')!, 'base64').toString() };
    };
    // Warm (a cold start's Billed Duration has its Init Duration too).
    expect((await call({})).payload).toEqual({ fired: 0 });
    // The invocation lasts until the timer it left has run: its log has the timer's line, and REPORT's Duration the wait.
    const timer = await call({ op: 'timer' });
    expect(timer.payload).toBe('answered');
    expect(timer.log).toMatch(/\tINFO\ttimer fired\nEND RequestId: /);
    const duration = /\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\t/.exec(timer.log);
    expect(Number(duration![1])).toBeGreaterThanOrEqual(600);
    expect(Number(duration![2])).toBe(Math.ceil(Number(duration![1])));
    // A loop still busy at the timeout: ended as a timeout.
    const forever = await call({ op: 'forever' });
    expect(forever.payload).toMatchObject({ errorType: 'Sandbox.Timedout' });
    expect(forever.log).toMatch(/Z [0-9a-f-]{36} Task timed out after 1\.00 seconds\nEND RequestId: [0-9a-f-]{36}\n/);
    expect(forever.log).toMatch(/\tDuration: 1\d{3}\.\d\d ms\t[^\n]*\tStatus: timeout\n$/);
    // A callback's error takes the next event at once, as Lambda's runtime does: the timer it left has not run.
    const failed = await call({ op: 'error' });
    expect(failed.payload).toMatchObject({ errorType: 'Error', errorMessage: 'failed' });
    expect((await call({})).payload).toEqual({ fired: 0 });
  });

  it('logs the invocations one environment runs in turn each from START to REPORT, the next START after', async () => {
    await deploy({
      'template.yaml': template('InTurn', { Handler: 'index.handler', ReservedConcurrentExecutions: 1 }),
      'index.js': 'exports.handler = async (event) => { await new Promise((resolve) => setTimeout(resolve, 200)); console.log("event", event.i); return event.i; };\n',
    });
    // queued while the first runs: the environment takes them one after the other
    for (let i = 0; i < 4; i++) expect((await lambda('InTurn', { body: JSON.stringify({ i }), headers: { 'X-Amz-Invocation-Type': 'Event' } })).status).toBe(202);
    const file = join(daemon.dataDir, 'functions', 'InTurn', 'logs', 'function.log');
    const log = await eventually(() => {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return (text.match(/^REPORT /gm) ?? []).length === 4 ? text : undefined;
    }, 10_000);
    const kinds = log.split('\n').map((line) => /^(START|END|REPORT) /.exec(line)?.[1] ?? (/\tINFO\tevent /.test(line) ? 'event' : undefined)).filter(Boolean);
    expect(kinds).toEqual(Array.from({ length: 4 }, () => ['START', 'event', 'END', 'REPORT']).flat());
  });

  it('logs what an invocation left running under the request id of the invocation running when it writes, as on Lambda (of the last one while idle)', async () => {
    const flag = join(out.dir, 'leaver-flag');
    await deploy({
      'template.yaml': template('Leaver', { Handler: 'index.handler', Timeout: 3, Environment: { Variables: { FLAG: flag } } }),
      'index.js': [
        'const fs = require("node:fs");',
        'exports.handler = async (event) => {',
        // Left running: writes once the flag exists (at once when idle is asked for), every 50 ms until then.
        '  if (event.leave) { const timer = setInterval(() => { if (event.leave === "idle" || fs.existsSync(process.env.FLAG)) { console.log("left by", event.leave); clearInterval(timer); } }, 50); }',
        '  if (event.flag) { fs.writeFileSync(process.env.FLAG, ""); await new Promise((resolve) => setTimeout(resolve, 500)); }',
        '  return "done";',
        '};',
      ].join('\n'),
    });
    const file = join(daemon.dataDir, 'functions', 'Leaver', 'logs', 'function.log');
    const logged = (text: string) => eventually(() => {
      const log = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return log.includes(text) ? log : undefined;
    });
    const call = async (event: object) => (await lambda('Leaver', { body: JSON.stringify(event) })).headers.get('x-amzn-requestid')!;
    // Written while the environment is idle: after the invocation's REPORT, with its id.
    const idle = await call({ leave: 'idle' });
    expect(await logged('left by idle')).toMatch(new RegExp(`REPORT RequestId: ${idle}\\t[^\\n]*\\n[^\\n]*\\t${idle}\\tINFO\\tleft by idle\\n`));
    // Written during the next invocation: with that one's id, between its START and END.
    await call({ leave: 'busy' });
    const next = await call({ flag: true });
    expect(await logged(`END RequestId: ${next}`)).toMatch(new RegExp(`START RequestId: ${next} [^\\n]*\\n[^\\n]*\\t${next}\\tINFO\\tleft by busy\\nEND RequestId: ${next}\\n`));
  });

  it('sends Lambda\'s invocation records of asynchronous invocations to OnSuccess and OnFailure destinations', async () => {
    const collected = join(out.dir, 'collector.jsonl');
    await deploy({
      'template.yaml': JSON.stringify({
        Resources: {
          Collector: {
            Type: 'AWS::Serverless::Function',
            Properties: { Runtime: 'nodejs20.x', Handler: 'collector.handler', Environment: { Variables: { OUT_FILE: collected } } },
          },
          Worker: {
            Type: 'AWS::Serverless::Function',
            Properties: {
              Runtime: 'nodejs20.x', Handler: 'worker.handler',
              EventInvokeConfig: {
                MaximumRetryAttempts: 1,
                DestinationConfig: { OnSuccess: { Type: 'MQTT', Destination: 'records/worker' }, OnFailure: { Type: 'Lambda', Destination: 'arn:aws:lambda:local:000000000000:function:Collector' } },
              },
            },
          },
        },
      }),
      'collector.js': 'const fs = require("node:fs");\nexports.handler = async (event) => { fs.appendFileSync(process.env.OUT_FILE, JSON.stringify(event) + "\\n"); };\n',
      'worker.js': 'exports.handler = async (event) => { if (event.fail) throw new RangeError("failing on purpose"); return { doubled: event.n * 2 }; };\n',
    });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'records-watcher' });
    try {
      const records: any[] = [];
      watcher.on('message', (_topic, payload) => records.push(JSON.parse(payload.toString())));
      await watcher.subscribeAsync('records/#', { qos: 1 });
      expect((await cli('invoke', 'Worker', '--async', '--payload', '{"n":21}')).code).toBe(0);
      const [success] = await eventually(() => (records.length > 0 ? records : undefined));
      expect(success).toEqual({
        version: '1.0',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        requestContext: {
          requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          functionArn: 'arn:aws:lambda:local:000000000000:function:Worker:$LATEST',
          condition: 'Success',
          approximateInvokeCount: 1,
        },
        requestPayload: { n: 21 },
        responseContext: { statusCode: 200, executedVersion: '$LATEST' },
        responsePayload: { doubled: 42 },
      });

      // Fails twice (one retry, 1 s later with the test's retry delays), then the record goes to Collector, and the event to the DLQ.
      expect((await cli('invoke', 'Worker', '--async', '--payload', '{"fail":true}')).code).toBe(0);
      const [failure] = await eventually(() => { const got = lines(collected); return got.length > 0 ? got : undefined; }, 20_000, 100);
      expect(failure).toMatchObject({
        version: '1.0',
        requestContext: { functionArn: 'arn:aws:lambda:local:000000000000:function:Worker:$LATEST', condition: 'RetriesExhausted', approximateInvokeCount: 2 },
        requestPayload: { fail: true },
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        responsePayload: { errorType: 'RangeError', errorMessage: 'failing on purpose' },
      });
      const dead = JSON.parse((await cli('--json', 'dlq', 'ls', 'Worker')).stdout).deadLetters;
      expect(dead).toMatchObject([{ event: { fail: true }, reason: 'RetriesExhausted' }]);
      expect(records).toHaveLength(1);
    } finally {
      watcher.end(true);
    }
  }, 60_000);

  it('refuses destinations Outpost does not have, and a function that is its own destination, naming the key', async () => {
    const bad = (config: unknown) => writePackage({
      'template.yaml': template('BadDestination', { Handler: 'index.handler', EventInvokeConfig: { DestinationConfig: config } }),
      'index.js': 'exports.handler = async () => 1;\n',
    });
    const cases: Array<[unknown, string]> = [
      [{ OnSuccess: { Type: 'SQS', Destination: 'arn:aws:sqs:us-east-1:1:q' } }, 'Resources.BadDestination.Properties.EventInvokeConfig.DestinationConfig.OnSuccess.Type: expected Type Lambda or MQTT'],
      [{ OnFailure: { Type: 'MQTT', Destination: 'records/+' } }, 'DestinationConfig.OnFailure.Destination: expected an MQTT topic name (no + or # wildcards)'],
      [{ OnFailure: { Type: 'Lambda', Destination: 'not a name' } }, 'DestinationConfig.OnFailure.Destination: expected a function name or ARN'],
      [{ OnSuccess: { Type: 'Lambda', Destination: 'BadDestination' } }, 'DestinationConfig.OnSuccess.Destination: a function cannot be its own destination'],
      [{ OnFailure: { Type: 'Lambda', Destination: '000000000000:function:BadDestination:live' } }, 'DestinationConfig.OnFailure.Destination: a function cannot be its own destination'],
    ];
    for (const [config, message] of cases) {
      const pkg = bad(config);
      try {
        const run = await cli('deploy', pkg.dir);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain(message);
      } finally {
        pkg.remove();
      }
    }
    expect((await cli('functions', 'info', 'BadDestination')).code).toBe(1);
  });

  it('stops a destination loop (Ping → Pong → Ping …) at the 17th invocation: its event goes to the DLQ with RecursiveInvocationException', async () => {
    const ran = join(out.dir, 'loop.jsonl');
    const fn = (name: string, next: string) => ({
      Type: 'AWS::Serverless::Function',
      Properties: {
        Runtime: 'nodejs20.x', Handler: 'loop.handler', Environment: { Variables: { OUT_FILE: ran } },
        EventInvokeConfig: { DestinationConfig: { OnSuccess: { Type: 'Lambda', Destination: next }, OnFailure: { Type: 'MQTT', Destination: `records/${name}` } } },
      },
    });
    await deploy({
      'template.yaml': JSON.stringify({ Resources: { Ping: fn('Ping', 'Pong'), Pong: fn('Pong', 'Ping') } }),
      'loop.js': 'const fs = require("node:fs");\nexports.handler = async () => { fs.appendFileSync(process.env.OUT_FILE, JSON.stringify(process.env.AWS_LAMBDA_FUNCTION_NAME) + "\\n"); return "ok"; };\n',
    });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'loop-watcher' });
    try {
      const records: any[] = [];
      watcher.on('message', (_topic, payload) => records.push(JSON.parse(payload.toString())));
      await watcher.subscribeAsync('records/#', { qos: 1 });
      expect((await cli('invoke', 'Ping', '--async', '--payload', '{"round":1}')).code).toBe(0);
      const [dead] = await eventually(async () => {
        const letters = JSON.parse((await cli('--json', 'dlq', 'ls', 'Ping')).stdout).deadLetters;
        return letters.length > 0 ? letters : undefined;
      }, 20_000, 100);
      expect(dead).toMatchObject({
        function: 'Ping', source: 'destination', reason: 'RecursiveLoop', attempts: 0, errorType: 'RecursiveInvocationException',
        errorMessage: 'Lambda has detected your function being invoked in a recursive loop with other AWS resources and stopped your function\'s invocation.',
      });
      const [record] = await eventually(() => (records.length > 0 ? records : undefined));
      expect(record).toMatchObject({
        requestContext: { functionArn: 'arn:aws:lambda:local:000000000000:function:Ping:$LATEST', condition: 'RecursiveLoop', approximateInvokeCount: 0 },
        responsePayload: { errorType: 'RecursiveInvocationException' },
      });
      // Sixteen invocations ran, alternating; nothing runs or is dead-lettered after the stop.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(lines(ran)).toEqual(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 'Ping' : 'Pong')));
      expect(JSON.parse((await cli('--json', 'dlq', 'ls')).stdout).deadLetters.filter((letter: any) => letter.reason === 'RecursiveLoop')).toHaveLength(1);
      expect(records).toHaveLength(1);
    } finally {
      watcher.end(true);
    }
  }, 60_000);
});

describe('functions: invocation records of events that never ran', () => {
  let daemon: TestDaemon;
  const pkg = writePackage({
    'template.yaml': template('Throttled', {
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 0,
      EventInvokeConfig: { DestinationConfig: { OnFailure: { Type: 'MQTT', Destination: 'records/throttled' } } },
    }),
    'index.js': 'exports.handler = async () => 1;\n',
  });

  beforeAll(async () => {
    // A short maximum event age, so a throttled event expires within the test.
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, functions: { maxEventAgeSeconds: 1 } } });
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('sends an EventAgeExceeded record without a response context for an event throttled until its maximum age', async () => {
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'throttled-watcher' });
    try {
      const records: any[] = [];
      watcher.on('message', (_topic, payload) => records.push(JSON.parse(payload.toString())));
      await watcher.subscribeAsync('records/#', { qos: 1 });
      expect((await outpost(daemon.socket, ['invoke', 'Throttled', '--async', '--payload', '{"n":1}'])).code).toBe(0);
      const [record] = await eventually(() => (records.length > 0 ? records : undefined), 15_000);
      expect(record).toEqual({
        version: '1.0',
        timestamp: expect.any(String),
        requestContext: {
          requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          functionArn: 'arn:aws:lambda:local:000000000000:function:Throttled:$LATEST',
          condition: 'EventAgeExceeded',
          approximateInvokeCount: 0,
        },
        requestPayload: { n: 1 },
        responsePayload: { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' },
      });
    } finally {
      watcher.end(true);
    }
  });
});
