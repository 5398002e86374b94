import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, lambdaInvoke, template, thingKey, writePackage, type AccessKey, type LambdaRequest } from './helpers/functions.js';

/** A package whose handler answers its version tag, the version Lambda says it runs, and the invoked ARN. */
const versionPackage = (tag: string, handlerSource?: string) => writePackage({
  'template.yaml': template('Versions', { Handler: 'index.handler' }),
  'index.js': handlerSource ?? `exports.handler = async (event, context) => ({ tag: ${JSON.stringify(tag)}, version: context.functionVersion, arn: context.invokedFunctionArn, env: process.env.AWS_LAMBDA_FUNCTION_VERSION, clientContext: context.clientContext });\n`,
});

describe('functions: versions, aliases, rollback and the Lambda Invoke API', () => {
  let daemon: TestDaemon;
  const packages = [versionPackage('one'), versionPackage('two'), versionPackage('three'), versionPackage('broken', 'exports.handler = async () => {\n')];
  const cli = (...args: string[]) => outpost(daemon.socket, args);
  let key: AccessKey;
  const lambda = (name: string, request?: LambdaRequest) => lambdaInvoke(daemon.port('http'), key, name, request);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { functions: { idleTimeoutSeconds: 60 } } });
    key = await thingKey(daemon.socket, 'invoker');
    for (const pkg of packages.slice(0, 3)) expect((await cli('deploy', pkg.dir)).code).toBe(0);
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    for (const pkg of packages) pkg.remove();
  });

  it('invokes $LATEST, a version by number and an alias, each with Lambda\'s version and ARN', async () => {
    expect((await invoke(daemon.socket, 'Versions')).result).toMatchObject({ executedVersion: '$LATEST', payload: { tag: 'three', version: '$LATEST', env: '$LATEST' } });
    expect((await invoke(daemon.socket, 'Versions:1')).result).toMatchObject({
      executedVersion: '1',
      payload: { tag: 'one', version: '1', env: '1', arn: 'arn:aws:lambda:local:000000000000:function:Versions:1' },
    });
    expect(await cli('functions', 'alias', 'Versions', 'live', '2')).toMatchObject({ code: 0, stdout: 'Versions:live -> version 2\n' });
    expect((await invoke(daemon.socket, 'Versions:live')).result).toMatchObject({
      executedVersion: '2',
      payload: { tag: 'two', version: '2', arn: 'arn:aws:lambda:local:000000000000:function:Versions:live' },
    });
    // Moving the alias moves its traffic.
    await cli('functions', 'alias', 'Versions', 'live', '1');
    expect((await invoke(daemon.socket, 'Versions:live')).result.payload.tag).toBe('one');
    const info = JSON.parse((await cli('--json', 'functions', 'info', 'Versions')).stdout);
    expect(info.aliases).toEqual([{ alias: 'live', version: 1, updatedAt: expect.any(Number) }]);
    expect((await cli('functions', 'info', 'Versions')).stdout).toMatch(/\n1\s+[0-9a-f]{12}\s+\S+\s+live\n/);
  });

  it('takes the output of many environments of a function into its one log without a listener warning', async () => {
    // four versions, two environments each (functions.maxInstances): 8 at once, each piping its stdout and stderr in
    const versions = [1, 2, 3, 4].map((version) => writePackage({
      'template.yaml': template('FanIn', { Handler: 'index.handler', Timeout: 10 }),
      'index.js': `exports.handler = async (event) => { console.log("event", event.n); await new Promise((resolve) => setTimeout(resolve, 1500)); return ${version} * 10 + event.n; };\n`,
    }));
    try {
      for (const pkg of versions) expect((await cli('deploy', pkg.dir)).code).toBe(0);
      const answers = await Promise.all([1, 2, 3, 4].flatMap((version) => [0, 1].map((n) => invoke(daemon.socket, `FanIn:${version}`, { n }))));
      expect(answers.map((answer) => answer.result.payload)).toEqual([10, 11, 20, 21, 30, 31, 40, 41]);
      expect(daemon.stderr).not.toContain('MaxListenersExceededWarning');
    } finally {
      for (const pkg of versions) pkg.remove();
    }
  });

  it('refuses unknown versions and aliases and bad alias names, clearly', async () => {
    expect((await cli('invoke', 'Versions:9')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Versions:9\n');
    expect((await cli('invoke', 'Versions:nope')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Versions:nope\n');
    expect((await cli('functions', 'alias', 'Versions', 'beta', '9')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Versions:9\n');
    expect((await cli('functions', 'alias', 'Versions', '42', '1')).stderr).toContain('InvalidParameterValueException: 42: expected an alias name');
    expect((await cli('invoke', 'Versions:nope', '--async')).stderr).toBe('outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:Versions:nope\n');
    expect(await cli('functions', 'alias', 'Versions', 'old', '1')).toMatchObject({ code: 0 });
    expect(await cli('functions', 'alias', 'Versions', 'old', '--rm')).toMatchObject({ code: 0, stdout: 'removed alias Versions:old\n' });
    expect((await cli('invoke', 'Versions:old')).code).toBe(1);
  });

  it('rolls $LATEST back to the previous version or a given one; a version that does not load is refused', async () => {
    expect(await cli('functions', 'rollback', 'Versions')).toMatchObject({ code: 0, stdout: 'Versions: $LATEST is version 2 (was 3)\n' });
    expect((await invoke(daemon.socket, 'Versions')).result.payload).toMatchObject({ tag: 'two', version: '$LATEST' });
    expect(await cli('functions', 'rollback', 'Versions', '--to', '3')).toMatchObject({ code: 0, stdout: 'Versions: $LATEST is version 3 (was 2)\n' });
    expect((await invoke(daemon.socket, 'Versions')).result.payload.tag).toBe('three');
    expect((await cli('functions', 'rollback', 'Versions', '--to', '3')).stderr).toContain('$LATEST is already version 3');
    expect((await cli('functions', 'rollback', 'Versions', '--to', '7')).stderr).toContain('Versions: no version 7');
    // A broken deploy makes no version, so there is nothing broken to roll to; the running one stays.
    expect((await cli('deploy', packages[3].dir)).stderr).toContain('the handler does not load (version 3 keeps running)');
    expect(JSON.parse((await cli('--json', 'functions', 'info', 'Versions')).stdout)).toMatchObject({ version: 3, versions: [{ version: 1 }, { version: 2 }, { version: 3 }] });
  });

  it('serves Lambda Invoke over HTTP: payload, executed version, function errors, Event, DryRun and errors', async () => {
    const ok = await lambda('Versions', { body: '{"a":1}', query: '?Qualifier=live' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-amz-executed-version')).toBe('1');
    expect(ok.headers.get('x-amz-function-error')).toBeNull();
    expect(await ok.json()).toMatchObject({ tag: 'one', version: '1' });

    const byArn = await lambda('arn:aws:lambda:local:000000000000:function:Versions:2', {
      headers: { 'X-Amz-Client-Context': Buffer.from(JSON.stringify({ custom: { from: 'http' } })).toString('base64') },
    });
    expect(byArn.headers.get('x-amz-executed-version')).toBe('2');
    expect(await byArn.json()).toMatchObject({ tag: 'two', clientContext: { custom: { from: 'http' } } });
    // The partial ARN, ACCOUNT:function:NAME[:QUALIFIER], is one of Lambda's FunctionName forms too.
    const byPartialArn = await lambda('000000000000:function:Versions:2');
    expect(byPartialArn.status).toBe(200);
    expect(byPartialArn.headers.get('x-amz-executed-version')).toBe('2');

    const queued = await lambda('Versions', { headers: { 'X-Amz-Invocation-Type': 'Event' } });
    expect(queued.status).toBe(202);
    const dryRun = await lambda('Versions', { headers: { 'X-Amz-Invocation-Type': 'DryRun' } });
    expect(dryRun.status).toBe(204);
    expect(dryRun.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    // the API's own validation: ValidationException, without Lambda's Type
    const badType = await lambda('Versions', { headers: { 'X-Amz-Invocation-Type': 'Foo' } });
    expect([badType.status, badType.headers.get('x-amzn-errortype'), await badType.json()]).toEqual([400, 'ValidationException',
      { message: "1 validation error detected: Value 'Foo' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]" }]);

    const missing = await lambda('Nope');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');
    expect(missing.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await missing.json()).toEqual({ Type: 'User', message: 'Function not found: arn:aws:lambda:local:000000000000:function:Nope' });
    // Lambda names what it did not find by its ARN, qualified as asked.
    const missingVersion = await lambda('Versions', { query: '?Qualifier=9' });
    expect(missingVersion.status).toBe(404);
    expect(await missingVersion.json()).toEqual({ Type: 'User', message: 'Function not found: arn:aws:lambda:local:000000000000:function:Versions:9' });
    // A Qualifier Lambda cannot name (empty, other characters) is a validation error, not a missing version.
    const badQualifiers: Array<[string, string]> = [
      ['?Qualifier=', "1 validation error detected: Value '' at 'qualifier' failed to satisfy constraint: Member must have length greater than or equal to 1"],
      ['?Qualifier=a%20b', "1 validation error detected: Value 'a b' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"],
    ];
    for (const [query, message] of badQualifiers) {
      const refused = await lambda('Versions', { query });
      expect(refused.status, query).toBe(400);
      expect(refused.headers.get('x-amzn-errortype')).toBe('ValidationException');
      expect(await refused.json()).toEqual({ message });
    }
    const badJson = await lambda('Versions', { body: 'not json' });
    expect(badJson.status).toBe(400);
    expect(badJson.headers.get('x-amzn-errortype')).toBe('InvalidRequestContentException');
    const mismatch = await lambda('Versions:2', { query: '?Qualifier=live' });
    expect(await mismatch.json()).toMatchObject({ message: 'The derived qualifier from the function name does not match the specified qualifier.' });
    expect((await lambda('Versions', { headers: { 'X-Amz-Invocation-Type': 'Sometimes' } })).status).toBe(400);

    // A handler's failure is a 200 with X-Amz-Function-Error and the error document.
    const failing = writePackage({ 'template.yaml': template('Failing', { Handler: 'index.handler' }), 'index.js': 'exports.handler = async () => { throw new TypeError("no"); };\n' });
    try {
      expect((await cli('deploy', failing.dir)).code).toBe(0);
      const failed = await lambda('Failing');
      expect(failed.status).toBe(200);
      expect(failed.headers.get('x-amz-function-error')).toBe('Unhandled');
      expect(await failed.json()).toMatchObject({ errorType: 'TypeError', errorMessage: 'no' });
    } finally {
      failing.remove();
    }
  });
  it('answers every invocation of $LATEST while versions are deployed and rolled back, switching each caller over once per change', async () => {
    const four = versionPackage('four');
    packages.push(four);
    let changing = true;
    const failures: string[] = [];
    const caller = async () => {
      const tags: string[] = [];
      for (let call = 0; call < 1000 && changing; call++) {
        const answer = await lambda('Versions');
        const text = await answer.text();
        if (answer.status !== 200 || answer.headers.get('x-amz-function-error')) failures.push(`${answer.status} ${text}`);
        else tags.push(JSON.parse(text).tag);
      }
      return tags;
    };
    const changes = ['deploy', 'rollback', 'rollback --to new', 'rollback', 'rollback --to new'];
    const change = async () => {
      try {
        expect((await cli('deploy', four.dir)).code).toBe(0);
        const { version } = JSON.parse((await cli('--json', 'functions', 'info', 'Versions')).stdout);
        for (const args of [[], ['--to', String(version)], [], ['--to', String(version)]]) {
          expect((await cli('functions', 'rollback', 'Versions', ...args)).code).toBe(0);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        changing = false;
      }
    };
    // as many callers as the instances a function may run (functions.maxInstances): none is throttled
    const [first, second] = await Promise.all([caller(), caller(), change()]);
    expect(failures).toEqual([]);
    for (const tags of [first, second]) {
      // once $LATEST moved, the version it left answers no more: a caller's answers change at most once per change
      const switches = tags.filter((tag, index) => index > 0 && tag !== tags[index - 1]).length;
      expect(switches, tags.join(' ')).toBeLessThanOrEqual(changes.length);
      expect(new Set(tags)).toContain('four');
      expect(new Set(tags).size).toBe(2);
    }
  });
});
