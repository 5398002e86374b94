import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest, outpost } from './helpers/mqtt.js';
import { writePackage } from './helpers/functions.js';

// The real interpreter behind `python3` (a pyenv shim needs more environment than a function gets).
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

// Lambda's Invoke hands the function its payload's bytes: what a handler sees is what its runtime's
// JSON parser makes of them, whichever way the invocation came.
describe('functions: an invocation\'s payload reaches the handler as it was sent', () => {
  const fn = (runtime: string, handler: string) => ({ Type: 'AWS::Serverless::Function', Properties: { Runtime: runtime, Handler: handler, Timeout: 3 } });
  const pkg = writePackage({
    'template.yaml': JSON.stringify({ Resources: { Seen: fn('nodejs20.x', 'index.handler'), PySeen: fn('python3.11', 'app.handler') } }),
    'index.js': 'exports.handler = async (event) => ({ a: String(event.a), b: String(event.b), keys: Object.keys(event) });',
    'app.py': 'def handler(event, context):\n    return {"a": repr(event["a"]), "b": repr(event["b"]), "keys": list(event)}\n',
  });
  // a number beyond a double, an integer beyond 2^53, keys in an order JavaScript's objects do not keep
  const payload = '{ "b": 12345678901234567890, "a": 1e400, "10": 1, "9": 2 }';
  const seen = {
    Seen: { a: 'Infinity', b: '12345678901234567000', keys: ['9', '10', 'b', 'a'] },
    PySeen: { a: 'inf', b: '12345678901234567890', keys: ['b', 'a', '10', '9'] },
  };
  let daemon: TestDaemon;
  const lambdaInvoke = (name: string, body: string) => fetch(`http://127.0.0.1:${daemon.port('http')}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body });

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { http: { port: 0, auth: 'none' }, functions: { pythonPath: PYTHON } } });
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    pkg.remove();
  });

  it('passes `outpost invoke --payload` on unchanged, as the Lambda Invoke API does', async () => {
    const file = join(daemon.dataDir, 'payload.json');
    writeFileSync(file, payload);
    for (const name of ['Seen', 'PySeen'] as const) {
      const response = await lambdaInvoke(name, payload);
      expect(await response.json(), name).toEqual(seen[name]);
      for (const option of [payload, `@${file}`]) {
        const run = await outpost(daemon.socket, ['--json', 'invoke', name, '--payload', option]);
        expect(run, run.stderr).toMatchObject({ code: 0 });
        expect(JSON.parse(run.stdout).payload, `${name} ${option}`).toEqual(seen[name]);
      }
    }
  });

  it('refuses a payload that is no JSON with Lambda\'s error (the CLI as a wrong command line), and a file that is not UTF-8', async () => {
    const response = await lambdaInvoke('Seen', '{"a":');
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('InvalidRequestContentException');
    // the CLI refuses it as a wrong command line, as `shadow update --desired` does, before sending it
    const run = await outpost(daemon.socket, ['invoke', 'Seen', '--payload', '{"a":']);
    expect(run).toMatchObject({ code: 2, stderr: 'outpost: --payload is not valid JSON: {"a":\n(add --help for usage)\n' });
    const notUtf8 = join(daemon.dataDir, 'latin1.json');
    writeFileSync(notUtf8, Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]));
    expect(await outpost(daemon.socket, ['invoke', 'Seen', '--payload', `@${notUtf8}`])).toMatchObject({ code: 2, stderr: expect.stringContaining('is not UTF-8 text') });
    // the admin API's payloadText is that text; payload, a JSON value, is still taken
    const both = await adminRequest(daemon.socket, 'POST', '/v1/functions/Seen/invocations', JSON.stringify({ payload: {}, payloadText: '{}' }));
    expect(both).toMatchObject({ status: 400, body: expect.stringContaining('give payload or payloadText, not both') });
    const value = await adminRequest(daemon.socket, 'POST', '/v1/functions/Seen/invocations', JSON.stringify({ payload: { a: 1, b: 2 } }));
    expect(JSON.parse(value!.body).payload).toEqual({ a: '1', b: '2', keys: ['a', 'b'] });
  });
});
