import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUTPOSTD, TestDaemon } from './helpers/daemon.js';
import { adminRequest, outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { prng } from './helpers/fuzz.js';
import { eventually } from './helpers/eventually.js';
import { makeTestPki } from './helpers/certs.js';

/** The answer to one admin call, its body parsed: every refusal is JSON with a one-line `error`. */
async function call(daemon: TestDaemon, method: string, path: string, body?: string): Promise<{ status: number; body: any }> {
  const answer = await adminRequest(daemon.socket, method, path, body);
  if (!answer) throw new Error(`no answer to ${method} ${path}`);
  return { status: answer.status, body: JSON.parse(answer.body) };
}

/** A request with a body of any bytes (adminRequest sends text): status and body text. */
function sendBytes(socketPath: string, method: string, path: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('admin API: refused requests', () => {
  let daemon: TestDaemon;
  const versions = ['one', 'two'].map((tag) => writePackage({
    'template.yaml': template('Tagged', { Handler: 'index.handler', Timeout: 3 }),
    'index.js': `exports.handler = async () => ${JSON.stringify(tag)};\n`,
  }));
  beforeAll(async () => {
    // unsigned Lambda Invoke requests on the HTTP port: their FunctionName is checked after the caller
    daemon = await TestDaemon.start({ config: { http: { auth: 'none' } } });
    for (const version of versions) expect(await outpost(daemon.socket, ['deploy', version.dir])).toMatchObject({ code: 0 });
  }, 60_000);
  afterAll(async () => {
    await daemon.cleanup();
    for (const version of versions) version.remove();
  });

  it('serves requests pipelined on one connection in order, on the HTTP port and the admin socket', async () => {
    const statuses = (where: { port: number } | { path: string }, requests: Array<[string, string, string?]>) => new Promise<number[]>((resolve) => {
      const socket = connect('port' in where ? { port: where.port, host: '127.0.0.1' } : where);
      let received = '';
      socket.on('data', (chunk) => { received += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve([...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]))));
      socket.write(requests.map(([method, path, body = ''], index) => `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n`
        + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: ${index === requests.length - 1 ? 'close' : 'keep-alive'}\r\n\r\n${body}`).join(''));
    });
    const update = '{"state":{"reported":{"on":true}}}';
    expect(await statuses({ port: daemon.port('http') }, [['POST', '/things/piped/shadow', update], ['DELETE', '/things/piped/shadow'], ['GET', '/things/piped/shadow']]))
      .toEqual([200, 200, 404]);
    expect(await statuses({ path: daemon.socket }, [['POST', '/v1/shadows/piped-admin', update], ['DELETE', '/v1/shadows/piped-admin'], ['GET', '/v1/shadows/piped-admin']]))
      .toEqual([200, 200, 404]);
  });

  it('refuses an integer beyond 2^53 in a shadow update, as MQTT does, and stores nothing', async () => {
    const refused = await call(daemon, 'POST', '/v1/shadows/meter-1', '{"state":{"reported":{"count":9007199254740993}}}');
    expect(refused).toEqual({ status: 400, body: { error: 'Integer 9007199254740993 is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string' } });
    expect((await call(daemon, 'GET', '/v1/shadows/meter-1')).status).toBe(404);
    // the largest exact one is taken as it is
    const stored = await call(daemon, 'POST', '/v1/shadows/meter-1', '{"state":{"reported":{"count":9007199254740991}}}');
    expect(stored.status).toBe(200);
    expect((await adminRequest(daemon.socket, 'GET', '/v1/shadows/meter-1'))!.body).toContain('"count":9007199254740991');
  });

  it('refuses a rollback or an invocation whose body is no JSON object, rather than reading it as one without fields', async () => {
    for (const body of ['"x"', '[]', '5', 'null']) {
      expect(await call(daemon, 'POST', '/v1/functions/Tagged/rollback', body)).toEqual({ status: 400, body: { error: 'expected a JSON object body' } });
      expect(await call(daemon, 'POST', '/v1/functions/Tagged/invocations', body)).toEqual({ status: 400, body: { error: 'expected a JSON object body' } });
    }
    expect((await call(daemon, 'GET', '/v1/functions/Tagged')).body.version).toBe(2);
    // no invocation ran (the deploy's check of the handler logs INIT_START, not START)
    expect((await call(daemon, 'GET', '/v1/functions/Tagged/logs')).body.text).not.toMatch(/^START RequestId/m);
    // no body at all: every field is optional
    expect(await call(daemon, 'POST', '/v1/functions/Tagged/invocations')).toMatchObject({ status: 200, body: { payload: 'two' } });
    expect(await call(daemon, 'POST', '/v1/functions/Tagged/rollback')).toMatchObject({ status: 200, body: { from: 2, to: 1 } });
  });

  it('refuses an empty shadow name (?name=, --name \'\') as the HTTP API does, rather than taking the classic shadow', async () => {
    expect((await call(daemon, 'POST', '/v1/shadows/lamp-1', '{"state":{"reported":{"on":true}}}')).status).toBe(200);
    for (const method of ['GET', 'POST', 'DELETE']) {
      const body = method === 'POST' ? '{"state":{"reported":{"on":false}}}' : undefined;
      expect(await call(daemon, method, '/v1/shadows/lamp-1?name=', body)).toEqual({ status: 400, body: { error: 'Invalid shadow name' } });
    }
    expect((await call(daemon, 'GET', '/v1/shadows/lamp-1')).body).toMatchObject({ state: { reported: { on: true } }, version: 1 });
    // the CLI refuses it before asking: a usage error (exit 2), as every empty name is
    expect(await outpost(daemon.socket, ['shadow', 'get', 'lamp-1', '--name', ''])).toEqual({
      code: 2, stdout: '', stderr: "error: option '--name <shadow>' argument '' is invalid. it cannot be empty\n(add --help for usage)\n",
    });
  });

  it('refuses a body that is not UTF-8, rather than taking a stray byte as U+FFFD', async () => {
    const body = Buffer.concat([Buffer.from('{"name":"utf8-thing","password":"pass'), Buffer.from([0xff]), Buffer.from('word"}')]);
    const refused = await sendBytes(daemon.socket, 'POST', '/v1/things', body);
    expect({ status: refused.status, body: JSON.parse(refused.body) }).toEqual({ status: 400, body: { error: 'request body is not valid UTF-8' } });
    expect((await call(daemon, 'GET', '/v1/things/utf8-thing')).status).toBe(404);
  });

  it('refuses random bad bodies on every route that takes one, and unknown routes and methods, each with a JSON reason, changing nothing', { timeout: 60_000 }, async () => {
    expect((await call(daemon, 'POST', '/v1/things', '{"name":"fuzz-thing","password":"pw-123456"}')).status).toBe(201);
    expect((await call(daemon, 'POST', '/v1/buckets', '{"name":"fuzz-bucket"}')).status).toBe(200);
    // a valid body for each route: the bad ones are made from it
    const routes: Array<[method: string, path: string, valid: string]> = [
      ['POST', '/v1/things', '{"name":"fuzz-new","password":"pw-123456"}'],
      ['PUT', '/v1/things/fuzz-thing/password', '{"password":"another-password"}'],
      ['PUT', '/v1/things/fuzz-thing/policy', '{"policy":{"publish":["fuzz/#"]}}'],
      ['POST', '/v1/shadows/fuzz-thing', '{"state":{"reported":{"n":1}}}'],
      ['POST', '/v1/functions', '{"path":"/nonexistent"}'],
      ['PUT', '/v1/functions/Tagged/aliases/live', '{"version":1}'],
      ['POST', '/v1/functions/Tagged/rollback', '{"to":1}'],
      ['POST', '/v1/functions/Tagged/invocations', '{"payload":{"n":1}}'],
      ['POST', '/v1/dlq/replay', '{"all":true}'],
      ['POST', '/v1/buckets', '{"name":"fuzz-new-bucket"}'],
      ['POST', '/v1/buckets/fuzz-bucket/notification', '{"function":"Tagged","events":["s3:ObjectCreated:*"]}'],
      ['POST', '/v1/s3/keys', '{"grants":[{"bucket":"*","permission":"read"}]}'],
      ['POST', '/v1/sync/dlq/retry', '{"all":true}'],
    ];
    const state = async () => Promise.all(['/v1/things', '/v1/shadows', '/v1/functions', '/v1/functions/Tagged', '/v1/buckets', '/v1/s3/keys', '/v1/sync', '/v1/dlq']
      .map(async (path) => (await call(daemon, 'GET', path)).body));
    const before = await state();

    // a fixed seed: the same bodies every run
    const random = prng(20261205);
    const below = (n: number) => Math.floor(random() * n);
    const bytes = (length: number) => Buffer.from(Array.from({ length }, () => below(256)));
    const badBodies: Array<(valid: string) => Buffer> = [
      (valid) => Buffer.from(valid.slice(0, 1 + below(valid.length - 1))), // cut short: never JSON
      () => bytes(1 + below(40)),
      () => Buffer.from(JSON.stringify([5, 'x', [], null, true, -0.5, [{ name: 'x' }]][below(7)])),
      // an integer a double would round, as a field of its own
      (valid) => Buffer.from(`${valid.slice(0, -1)},"n":9${Array.from({ length: 16 + below(8) }, () => below(10)).join('')}}`),
      // a byte that is no UTF-8 (a lone high byte before ASCII) inside the first string
      (valid) => { const at = valid.indexOf('"') + 1; return Buffer.concat([Buffer.from(valid.slice(0, at)), Buffer.from([0x80 + below(128)]), Buffer.from(valid.slice(at))]); },
    ];
    const wrong: string[] = [];
    for (const [method, path, valid] of routes) {
      for (let round = 0; round < 20; round++) {
        const body = badBodies[below(badBodies.length)](valid);
        const answer = await sendBytes(daemon.socket, method, path, body);
        let error: unknown;
        try { error = JSON.parse(answer.body).error; } catch { error = undefined; }
        if (answer.status !== 400 || typeof error !== 'string' || error === '' || error.includes('\n')) {
          wrong.push(`${method} ${path} ${JSON.stringify(body.toString('latin1'))}: ${answer.status} ${answer.body.slice(0, 200)}`);
        }
      }
    }
    for (let round = 0; round < 40; round++) {
      const known = routes[below(routes.length)][1];
      const [method, path] = [
        [['PATCH', 'OPTIONS'][below(2)], known],
        [['GET', 'POST', 'PUT', 'DELETE'][below(4)], `/v1/${bytes(1 + below(12)).toString('hex')}`],
        [['GET', 'POST'][below(2)], `${known}/${below(1000)}/extra`],
      ][below(3)];
      const answer = await call(daemon, method, path);
      const expected = answer.status === 405 ? `${method} is not allowed on ${path}` : `no such admin endpoint: ${method} ${path}`;
      if (![404, 405].includes(answer.status) || answer.body.error !== expected) wrong.push(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    expect(wrong).toEqual([]);
    expect(await state()).toEqual(before);
    expect(daemon.process.exitCode).toBeNull();
  });

  it('refuses a password longer than an MQTT CONNECT can carry (65535 bytes), which no device could log in with', async () => {
    const refusal = { status: 400, body: { error: 'the password is over 65535 bytes, more than an MQTT CONNECT can carry' } };
    // 'é' is two bytes: 32768 of them are 65536
    expect(await call(daemon, 'POST', '/v1/things', JSON.stringify({ name: 'long-pass', password: 'é'.repeat(32_768) }))).toEqual(refusal);
    expect((await call(daemon, 'GET', '/v1/things/long-pass')).status).toBe(404);
    expect((await call(daemon, 'POST', '/v1/things', JSON.stringify({ name: 'long-pass', password: 'p'.repeat(65_535) }))).status).toBe(201);
    expect(await call(daemon, 'PUT', '/v1/things/long-pass/password', JSON.stringify({ password: 'p'.repeat(65_536) }))).toEqual(refusal);
  });

  it('refuses a path that is not valid percent-encoding with 400, not as an endpoint it does not have', async () => {
    for (const path of ['/v1/things/%zz', '/v1/things/a%', '/v1/shadows/%C3%28']) {
      expect(await call(daemon, 'GET', path)).toEqual({ status: 400, body: { error: `the request path is not valid percent-encoding (UTF-8): ${path}` } });
    }
    // decoded, it reaches the route, which names it
    expect(await call(daemon, 'GET', '/v1/things/caf%C3%A9')).toEqual({ status: 400, body: { error: 'invalid thing name "café": expected 1-128 characters of [a-zA-Z0-9:_-]' } });
  });

  it('says why a bucket name is refused (S3\'s naming rules), not only that it is', async () => {
    for (const name of ['A-bucket', 'ab', 'b..c', '192.168.1.2', 'xn--bucket']) {
      expect(await outpost(daemon.socket, ['buckets', 'create', name])).toEqual({ code: 1, stdout: '',
        stderr: `outpost: invalid bucket name "${name}": expected 3-63 characters of a-z 0-9 . - that begin and end with a letter or digit, without "..", not shaped like an IP address, without a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, …)\n` });
    }
    expect((await call(daemon, 'GET', '/v1/buckets')).body.buckets.map((bucket: { name: string }) => bucket.name)).not.toContain('ab');
  });

  it('refuses a thing given both a certificate and a fingerprint, which it would have taken the certificate\'s for', async () => {
    const pki = makeTestPki('two-certs');
    const fingerprint = 'ab'.repeat(32);
    const refused = await call(daemon, 'POST', '/v1/things', JSON.stringify({ name: 'two-certs', certificatePem: readFileSync(pki.selfSignedCert, 'utf8'), fingerprint }));
    rmSync(pki.dir, { recursive: true, force: true });
    expect(refused).toEqual({ status: 400, body: { error: 'give a certificate or its fingerprint, not both' } });
    expect((await call(daemon, 'GET', '/v1/things/two-certs')).status).toBe(404);
    const cli = await outpost(daemon.socket, ['things', 'add', 'two-certs', '--cert', '/nonexistent.pem', '--fingerprint', fingerprint]);
    expect(cli).toMatchObject({ code: 2, stderr: expect.stringContaining("error: option '--fingerprint <sha256>' cannot be used with option '--cert <file>'") });
  });

  it('refuses a malformed function name with Lambda\'s 400 ValidationException, on the admin API and on Lambda\'s Invoke API, rather than 404 Function not found', async () => {
    const pattern = '(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?';
    const refusal = (name: string, constraint: string) => `1 validation error detected: Value '${name}' at 'functionName' failed to satisfy constraint: ${constraint}`;
    const malformed = refusal('Tagged x', `Member must satisfy regular expression pattern: ${pattern}`);
    const long = 'a'.repeat(171);
    for (const [name, message] of [['Tagged%20x', malformed], [long, refusal(long, 'Member must have length less than or equal to 170')]]) {
      const invoked = await fetch(`http://127.0.0.1:${daemon.port('http')}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: '{}' });
      expect(invoked.status).toBe(400);
      expect(invoked.headers.get('x-amzn-errortype')).toBe('ValidationException');
      expect(await invoked.json()).toEqual({ message });
    }
    const routes: Array<[string, string, string?]> = [
      ['GET', '/v1/functions/Tagged%20x'], ['DELETE', '/v1/functions/Tagged%20x'], ['GET', '/v1/functions/Tagged%20x/logs'],
      ['POST', '/v1/functions/Tagged%20x/invocations'], ['POST', '/v1/functions/Tagged%20x/rollback'],
      ['PUT', '/v1/functions/Tagged%20x/aliases/live', '{"version":1}'], ['DELETE', '/v1/functions/Tagged%20x/aliases/live'],
      ['GET', '/v1/dlq?function=Tagged%20x'], ['DELETE', '/v1/dlq?function=Tagged%20x'], ['POST', '/v1/dlq/replay', '{"all":true,"function":"Tagged x"}'],
    ];
    for (const [method, path, body] of routes) {
      expect(await call(daemon, method, path, body), `${method} ${path}`).toEqual({ status: 400, body: { error: `ValidationException: ${malformed}` } });
    }
    // `?function=` named a function "" and found none, where it reads as "every function"
    expect(await call(daemon, 'DELETE', '/v1/dlq?function=')).toEqual({ status: 400, body: { error: `ValidationException: ${refusal('', 'Member must have length greater than or equal to 1')}` } });
    expect(await outpost(daemon.socket, ['functions', 'info', 'Tagged x'])).toEqual({ code: 1, stdout: '', stderr: `outpost: ValidationException: ${malformed}\n` });
    // a whole-function operation takes the function's ARN too, and refuses a version rather than dropping it: `rm Tagged:1` removed every version
    expect(await call(daemon, 'GET', '/v1/functions/arn:aws:lambda:local:000000000000:function:Tagged')).toMatchObject({ status: 200, body: { name: 'Tagged' } });
    expect(await call(daemon, 'DELETE', '/v1/functions/Tagged:1')).toEqual({ status: 400, body: {
      error: 'InvalidParameterValueException: Tagged:1: expected a function name without a version or alias (this applies to the whole function)',
    } });
    expect(await call(daemon, 'GET', '/v1/functions/Tagged')).toMatchObject({ status: 200, body: { versions: [{ version: 1 }, { version: 2 }] } });
  });

  it('refuses a shadow listing\'s ?thing= that names no thing, rather than listing every shadow', async () => {
    expect((await call(daemon, 'POST', '/v1/shadows/lister', '{"state":{"reported":{"on":true}}}')).status).toBe(200);
    for (const query of ['?thing=', '?thing=bad%20thing']) expect(await call(daemon, 'GET', `/v1/shadows${query}`)).toEqual({ status: 400, body: { error: 'Invalid thing name' } });
    expect(await call(daemon, 'GET', '/v1/shadows?thing=lister')).toMatchObject({ status: 200, body: { shadows: [{ thing: 'lister', name: null, version: 1 }] } });
  });

  it('refuses a malformed thing name as `things add` refuses it, rather than as a thing not found', async () => {
    const refusal = { status: 400, body: { error: 'invalid thing name "pump 7": expected 1-128 characters of [a-zA-Z0-9:_-]' } };
    for (const [method, path, body] of [['GET', '/v1/things/pump%207'], ['DELETE', '/v1/things/pump%207'],
      ['PUT', '/v1/things/pump%207/password', '{"password":"pw"}'], ['PUT', '/v1/things/pump%207/policy', '{"policy":null}']]) {
      expect(await call(daemon, method, path, body), `${method} ${path}`).toEqual(refusal);
    }
    expect(await outpost(daemon.socket, ['things', 'rm', 'pump 7'])).toEqual({ code: 1, stdout: '', stderr: `outpost: ${refusal.body.error}\n` });
    expect(await call(daemon, 'GET', '/v1/things/pump-7')).toEqual({ status: 404, body: { error: 'no such thing: pump-7' } });
  });

  it('refuses an empty client id pattern, which matches no client (the broker names one that sends none), rather than locking the thing out', async () => {
    expect((await call(daemon, 'POST', '/v1/things', JSON.stringify({ name: 'locked', password: 'pw' }))).status).toBe(201);
    expect(await call(daemon, 'PUT', '/v1/things/locked/policy', JSON.stringify({ policy: { clientIds: [''] } }))).toEqual({ status: 400, body: {
      error: 'invalid policy: clientIds.0: a client id pattern cannot be empty: it would match no client id, got ""',
    } });
    expect((await call(daemon, 'GET', '/v1/things/locked')).body.policy).toBeNull();
  });

  it('refuses a path with an empty segment (a name given empty), which named another route: `things show ""` listed every thing', async () => {
    for (const path of ['/v1/things/', '/v1/functions//logs', '//v1/status']) {
      expect(await call(daemon, 'GET', path)).toEqual({ status: 400, body: { error: `the request path ${path} has an empty segment: a name cannot be empty` } });
    }
  });
});


describe('admin socket', () => {
  it('names admin.socket and the missing directory when it cannot listen there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-admin-socket-'));
    try {
      const socket = join(dir, 'no-such-dir', 'admin.sock');
      writeFileSync(join(dir, 'outpost.yaml'), `admin: { socket: ${JSON.stringify(socket)} }\nmqtt: { host: 127.0.0.1, port: 0 }\nhttp: { port: 0 }\ns3: { host: 127.0.0.1, port: 0 }\n`);
      const run = spawnSync(process.execPath, [OUTPOSTD, '--config', join(dir, 'outpost.yaml'), '--data-dir', join(dir, 'data')], { encoding: 'utf8', timeout: 30_000 });
      expect(run.status).toBe(1);
      expect(run.stdout + run.stderr).toContain(`failed to start: cannot listen on the admin socket ${socket} (admin.socket): its directory ${join(dir, 'no-such-dir')} does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the admin socket', () => {
  it('holds at most 64 connections at once: one beyond is closed as it is accepted (logged), and the CLI works again once they go', async () => {
    const daemon = await TestDaemon.start({ config: {} });
    const open = () => new Promise<Socket & { gone: Promise<void> }>((resolve, reject) => {
      const socket = connect(daemon.socket);
      const gone = new Promise<void>((done) => socket.once('close', () => done()));
      socket.on('error', () => undefined);
      socket.once('connect', () => resolve(Object.assign(socket, { gone })));
      socket.once('error', reject);
    });
    const held: Array<Awaited<ReturnType<typeof open>>> = [];
    try {
      for (let i = 0; i < 64; i++) held.push(await open());
      const beyond = await open();
      await beyond.gone;
      expect(await eventually(() => daemon.logs.find((line) => line.msg === 'connections refused: maxConnections reached'))).toMatchObject({ maxConnections: 64 });
      for (const socket of held) socket.destroy();
      await eventually(async () => (await outpost(daemon.socket, ['status'])).code === 0);
    } finally {
      for (const socket of held) socket.destroy();
      await daemon.cleanup();
    }
  });
});
