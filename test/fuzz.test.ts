import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest, collectMessages, connectClient, outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { fuzzSeed, prng } from './helpers/fuzz.js';

const ITERATIONS = 3000;
const CONCURRENCY = 16;
const TIME_BUDGET_MS = 90_000;

const validConnect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'fuzz', keepalive: 10 } as any);
const templates: Buffer[] = [
  validConnect,
  mqttPacket.generate({ cmd: 'publish', topic: 'fuzz/a', payload: Buffer.from('hello'), qos: 1, messageId: 7, retain: false, dup: false } as any),
  mqttPacket.generate({ cmd: 'publish', topic: 'fuzz/r', payload: Buffer.from('retained'), qos: 2, messageId: 9, retain: true, dup: false } as any),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'fuzz/#', qos: 1 }] } as any),
  mqttPacket.generate({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['fuzz/#'] } as any),
  mqttPacket.generate({ cmd: 'pubrel', messageId: 9 } as any),
  mqttPacket.generate({ cmd: 'pingreq' } as any),
];

function mutate(random: () => number): Buffer {
  const pick = () => templates[Math.floor(random() * templates.length)];
  const kind = Math.floor(random() * 6);
  switch (kind) {
    case 0: // pure noise
      return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
    case 1: { // truncated packet after a valid CONNECT
      const packet = pick();
      return Buffer.concat([validConnect, packet.subarray(0, Math.floor(random() * packet.length))]);
    }
    case 2: { // bit flips in a valid sequence
      const bytes = Buffer.concat([validConnect, pick(), pick()]);
      for (let i = 0; i < 1 + random() * 4; i++) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      return bytes;
    }
    case 3: { // absurd remaining length
      const header = Buffer.from([0x30 | Math.floor(random() * 16), 0xff, 0xff, 0xff, 0x7f]);
      return Buffer.concat([validConnect, header, Buffer.alloc(Math.floor(random() * 32))]);
    }
    case 4: // packets before CONNECT
      return Buffer.concat([pick(), pick()]);
    default: { // valid CONNECT then garbage
      return Buffer.concat([validConnect, Buffer.from(Array.from({ length: Math.floor(random() * 128) }, () => Math.floor(random() * 256)))]);
    }
  }
}

function throwBytes(port: number, bytes: Buffer, random: () => number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = () => { socket.destroy(); resolve(); };
    const timer = setTimeout(done, 100 + random() * 200);
    socket.on('error', () => { clearTimeout(timer); done(); });
    socket.on('close', () => { clearTimeout(timer); resolve(); });
    socket.on('connect', () => {
      // Sometimes split the bytes across writes to exercise partial reads.
      const cut = Math.floor(random() * bytes.length);
      socket.write(bytes.subarray(0, cut));
      setImmediate(() => { if (!socket.destroyed) socket.end(bytes.subarray(cut)); });
    });
  });
}

describe('fuzzing the MQTT listener', () => {
  it(`survives ${ITERATIONS} random and truncated packets and keeps serving`, { timeout: TIME_BUDGET_MS + 30_000 }, async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    try {
      const seed = fuzzSeed();
      const random = prng(seed);
      const port = daemon.port('mqtt');
      const started = Date.now();
      let sent = 0;
      const worker = async () => {
        while (sent < ITERATIONS && Date.now() - started < TIME_BUDGET_MS) {
          sent++;
          await throwBytes(port, mutate(random), random);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      expect(daemon.process.exitCode, `daemon died (seed ${seed})`).toBeNull();
      expect(sent).toBeGreaterThanOrEqual(Math.min(ITERATIONS, 500));

      const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'after-fuzz-sub' });
      await subscriber.subscribeAsync('check/#', { qos: 1 });
      const arriving = collectMessages(subscriber, 1);
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'after-fuzz-pub' });
      await publisher.publishAsync('check/alive', 'yes', { qos: 1 });
      expect((await arriving)[0].payload).toBe('yes');
      const health = await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`);
      expect(health.status, `seed ${seed}`).toBe(200);
      subscriber.end(true);
      publisher.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});

/** One HTTP exchange over its own connection: the status of the first final answer, or undefined when none came (the connection closed, or 3 s passed). */
function exchange(port: number, head: string, body: Buffer, sendBody: 'now' | 'after 100'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let settled = false;
    const settle = (status: number | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => settle(undefined), 3000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (sendBody === 'after 100' && received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        received = received.slice('HTTP/1.1 100 Continue\r\n\r\n'.length);
        sendBody = 'now';
        socket.write(body);
      }
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(received);
      if (status && status[1] !== '100' && received.includes('\r\n\r\n')) settle(Number(status[1]));
    });
    socket.on('error', () => settle(undefined));
    socket.on('close', () => settle(undefined));
    socket.on('connect', () => {
      socket.write(head);
      if (sendBody === 'now') socket.write(body);
    });
  });
}

describe('fuzzing the HTTP port (shadow REST API, IoT Data Plane Publish, Lambda Invoke)', () => {
  it('answers 300 fuzzed requests without a server error, changes no other thing\'s shadow and keeps serving', { timeout: 120_000 }, async () => {
    const pkg = writePackage({ 'template.yaml': template('Echo', { Handler: 'index.handler', Timeout: 3 }), 'index.js': 'exports.handler = async (event, context) => ({ event, clientContext: context.clientContext ?? null });' });
    const daemon = await TestDaemon.start({ config: { http: { port: 0, auth: 'none' } } });
    try {
      expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
      const port = daemon.port('http');
      const sentinel = await fetch(`http://127.0.0.1:${port}/things/sentinel/shadow`, { method: 'POST', body: JSON.stringify({ state: { reported: { untouched: true } } }) });
      expect(sentinel.status).toBe(200);
      // the document without its `timestamp`, the time of the answer
      const sentinelShadow = async () => {
        const { state, metadata, version } = await (await fetch(`http://127.0.0.1:${port}/things/sentinel/shadow`)).json();
        return { state, metadata, version };
      };
      const before = await sentinelShadow();

      const seed = fuzzSeed();
      const random = prng(seed);
      const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
      const things = ['fuzz', 'fuzz-2', 'x'.repeat(200), '%00', '..', 'a%2Fb', '$aws', '%E2%82', 'caf%C3%A9', ''];
      const paths = () => pick([
        () => `/things/${pick(things)}/shadow${pick(['', '?name=a', '?name=bad.name', `?name=${'n'.repeat(80)}`, '?name=%zz', '?name='])}`,
        () => `/topics/${pick(['a', 'a/b', 'a%2F%2B', '%23', '', '$aws/things/fuzz/shadow/update', 'x'.repeat(300)])}${pick(['', '?qos=1', '?qos=2', '?qos=-1', '?retain=true', '?retain=maybe', '?qos=1&retain=false'])}`,
        () => `/2015-03-31/functions/${pick(['Echo', 'Nope', 'Echo:1', 'Echo%3A%24LATEST', '', '%zz'])}/invocations${pick(['', '?Qualifier=$LATEST', '?Qualifier=99', '?Qualifier=', '?Qualifier=%zz'])}`,
        () => `/api/things/shadow/ListNamedShadowsForThing/${pick(things)}${pick(['', '?pageSize=0', '?pageSize=3', '?pageSize=abc', '?nextToken=garbage', '?pageSize=1&nextToken=%zz'])}`,
        () => pick(['/healthz', '/metrics', '/', '/things', '/things//shadow', '/%', `/${'z'.repeat(9000)}`, '/2015-03-31/functions']),
      ])();
      const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      const bodies = () => pick([
        () => JSON.stringify({ state: { reported: { n: Math.floor(random() * 1000) }, desired: pick([null, { on: true }, { deep: JSON.parse(nested(3)) }]) } }),
        () => JSON.stringify({ state: { desired: null }, version: pick([1, 0, -1, 2 ** 53, 'one']) }),
        () => JSON.stringify({ state: null, clientToken: 'x'.repeat(pick([10, 65])) }),
        () => nested(pick([5, 50, 5000])),
        () => '{"state":{"reported":' + '['.repeat(3000) + ']'.repeat(3000) + '}}',
        () => pick(['', '{', 'null', '[]', '"string"', '{"state":{}}', '\u0000', '{"a":1}{"b":2}']),
        () => Buffer.from(Array.from({ length: Math.floor(random() * 2000) }, () => Math.floor(random() * 256))).toString('latin1'),
        () => JSON.stringify({ blob: 'x'.repeat(pick([9000, 140_000, 300_000])) }),
      ])();
      const method = () => pick(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']);
      const extraHeaders = () => [
        pick(['', 'content-type: application/json\r\n', 'content-type: text/plain; charset=utf-16\r\n']),
        pick(['', 'x-amz-invocation-type: Event\r\n', 'x-amz-invocation-type: DryRun\r\n', 'x-amz-invocation-type: Bogus\r\n']),
        pick(['', 'x-amz-log-type: Tail\r\n', 'x-amz-log-type: All\r\n']),
        pick(['', `x-amz-client-context: ${Buffer.from('{"custom":{"k":1}}').toString('base64')}\r\n`, 'x-amz-client-context: !!notbase64\r\n', `x-amz-client-context: ${Buffer.from('[1').toString('base64')}\r\n`]),
        pick(['', '', 'authorization: AWS4-HMAC-SHA256 Credential=garbage\r\n', 'x-amz-date: yesterday\r\n']),
      ].join('');

      /** Requests the port serves: each fuzzed request is one of them, half the time with one part replaced by a random one. */
      const validRequests = () => pick([
        () => ({ verb: 'POST', path: `/things/${pick(['fuzz', 'fuzz-2'])}/shadow${pick(['', '?name=a'])}`, body: JSON.stringify({ state: { reported: { n: Math.floor(random() * 1000) } }, clientToken: 'c' }), headers: '' }),
        () => ({ verb: 'GET', path: `/things/fuzz/shadow${pick(['', '?name=a'])}`, body: '', headers: '' }),
        () => ({ verb: 'DELETE', path: `/things/fuzz-2/shadow${pick(['', '?name=a'])}`, body: '', headers: '' }),
        () => ({ verb: 'GET', path: '/api/things/shadow/ListNamedShadowsForThing/fuzz?pageSize=2', body: '', headers: '' }),
        () => ({ verb: 'POST', path: `/topics/fuzz/${pick(['a', 'b'])}${pick(['', '?qos=1', '?retain=true'])}`, body: Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256))).toString('latin1'), headers: '' }),
        () => ({ verb: 'POST', path: '/2015-03-31/functions/Echo/invocations', body: JSON.stringify({ n: random() }), headers: pick(['', 'x-amz-invocation-type: Event\r\n', 'x-amz-log-type: Tail\r\n']) }),
      ])();
      const mutations = [
        (request: { verb: string; path: string; body: string; headers: string }) => ({ ...request, verb: method() }),
        (request: { verb: string; path: string; body: string; headers: string }) => ({ ...request, path: paths() }),
        (request: { verb: string; path: string; body: string; headers: string }) => ({ ...request, body: bodies() }),
        (request: { verb: string; path: string; body: string; headers: string }) => ({ ...request, headers: extraHeaders() }),
      ];

      let sent = 0;
      const statuses = new Map<number | undefined, number>();
      const serverErrors: string[] = [];
      const worker = async () => {
        while (sent < 300) {
          sent++;
          const request = random() < 0.5 ? pick(mutations)(validRequests()) : validRequests();
          const body = Buffer.from(request.body, 'latin1');
          // a Content-Length that lies now and then (the request times out or ends early: no answer is fine, a 5xx is not)
          const length = random() < 0.85 ? body.length : pick([body.length + 10, Math.max(0, body.length - 1), 7 * 1024 * 1024]);
          const expectContinue = random() < 0.2;
          let head = `${request.verb} ${request.path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-length: ${length}\r\n${request.headers}${expectContinue ? 'expect: 100-continue\r\n' : ''}connection: close\r\n\r\n`;
          // now and then a head with a flipped bit: the parser's 400, never a crash
          if (random() < 0.05) {
            const bytes = Buffer.from(head, 'latin1');
            bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
            head = bytes.toString('latin1');
          }
          const status = await exchange(port, head, body, expectContinue ? 'after 100' : 'now');
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status !== undefined && status >= 500) serverErrors.push(`${status} ${request.verb} ${request.path.slice(0, 120)} (${length} bytes announced, ${body.length} sent${expectContinue ? ', after 100' : ''})`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      expect(serverErrors, `seed ${seed}`).toEqual([]);
      // most requests reached a route and were served, not only refused
      expect(statuses.get(200) ?? 0, `seed ${seed}: ${JSON.stringify([...statuses])}`).toBeGreaterThanOrEqual(50);
      expect(daemon.process.exitCode, `daemon died (seed ${seed})`).toBeNull();

      expect(await sentinelShadow(), `seed ${seed}`).toEqual(before);
      const updated = await fetch(`http://127.0.0.1:${port}/things/after-fuzz/shadow`, { method: 'POST', body: JSON.stringify({ state: { reported: { ok: true } } }) });
      expect(updated.status, `seed ${seed}`).toBe(200);
      const invoked = await fetch(`http://127.0.0.1:${port}/2015-03-31/functions/Echo/invocations`, { method: 'POST', body: '{"still":"serving"}' });
      expect(await invoked.json(), `seed ${seed}`).toMatchObject({ event: { still: 'serving' } });
    } finally {
      await daemon.cleanup();
      pkg.remove();
    }
  });
});

describe('fuzzing the admin API', () => {
  it('answers 400 calls the CLI makes, most with one part replaced by a random one, with no internal error, and keeps serving', { timeout: 120_000 }, async () => {
    const brokenPackage = mkdtempSync(join(tmpdir(), 'outpost-fuzz-fn-'));
    writeFileSync(join(brokenPackage, 'template.yaml'), 'Resources: [this is: not, a template');
    const echo = writePackage({ 'template.yaml': template('Echo', { Handler: 'index.handler', Timeout: 3 }), 'index.js': 'exports.handler = async (event) => event;' });
    const daemon = await TestDaemon.start({ config: {} });
    try {
      expect(await outpost(daemon.socket, ['deploy', echo.dir])).toMatchObject({ code: 0 });
      const seed = fuzzSeed();
      const random = prng(seed);
      const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
      const names = ['fuzz', 'fuzz-2', 'Echo', '%zz', '..', 'a%2Fb', 'x'.repeat(300), '%00', 'caf%C3%A9', '-', ''];
      const routes = [
        'GET /v1/status', 'GET /v1/things', 'GET /v1/things/:n', 'POST /v1/things', 'DELETE /v1/things/:n', 'PUT /v1/things/:n/password',
        'PUT /v1/things/:n/policy', 'GET /v1/clients', 'GET /v1/shadows', 'GET /v1/shadows/:n', 'POST /v1/shadows/:n', 'DELETE /v1/shadows/:n',
        'GET /v1/functions', 'POST /v1/functions', 'GET /v1/functions/:n', 'PUT /v1/functions/:n/aliases/:n', 'DELETE /v1/functions/:n/aliases/:n',
        'POST /v1/functions/:n/rollback', 'GET /v1/functions/:n/logs', 'DELETE /v1/functions/:n', 'GET /v1/dlq', 'POST /v1/dlq/replay', 'DELETE /v1/dlq',
        'GET /v1/buckets', 'POST /v1/buckets', 'DELETE /v1/buckets/:n', 'GET /v1/buckets/:n/notification', 'POST /v1/buckets/:n/notification',
        'GET /v1/s3/keys', 'POST /v1/s3/keys', 'DELETE /v1/s3/keys/:n', 'GET /v1/s3/endpoint', 'GET /v1/sync', 'POST /v1/sync/pause',
        'POST /v1/sync/resume', 'GET /v1/sync/dlq', 'POST /v1/sync/dlq/retry', 'GET /v1/devices', 'GET /v1/devices/:n', 'GET /v1/nowhere',
      ];
      const queries = ['', '?thing=fuzz', '?name=a', '?name=bad.name', '?function=Echo', '?limit=-1', '?limit=abc', '?tail=1e9', '?since=yesterday', '?%zz=1'];
      // the fields the routes read, so that random bodies get past "expected a JSON object" into the checks behind it
      const fields = ['name', 'password', 'policy', 'publish', 'subscribe', 'clientIds', 'path', 'version', 'to', 'description', 'grants', 'bucket',
        'access', 'thing', 'ids', 'id', 'state', 'desired', 'reported', 'clientToken', 'function', 'events', 'prefix', 'suffix', 'rules', 'payload', 'all'];
      const safePaths = ['/nonexistent/package', 'relative/dir', '', '/etc/hostname', brokenPackage, `${brokenPackage}/template.yaml`];
      const value = (depth: number): unknown => {
        switch (Math.floor(random() * (depth > 2 ? 6 : 8))) {
          case 0: return pick(['', 'fuzz', 'x'.repeat(5000), '*', 'a/+/#', '$aws/things/fuzz/#', '\u0000', '../..', 's3:ObjectCreated:*', 'read', 'write']);
          case 1: return pick([0, -1, 1.5, 2 ** 53, 1e308, Number.MAX_SAFE_INTEGER]);
          case 2: return random() < 0.5;
          case 3: return null;
          case 4: return pick(['fuzz', 'Echo', '1', '$LATEST']);
          case 5: return pick([[], ['*'], ['a/#', 7], [null]]);
          case 6: return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
          default: return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(fields), value(depth + 1)]));
        }
      };
      const body = (): string | undefined => pick([
        () => undefined,
        () => JSON.stringify(Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, () => {
          const field = pick(fields);
          return [field, field === 'path' ? pick(safePaths) : value(0)];
        }))),
        () => JSON.stringify(value(0)),
        () => pick(['{', 'null', '[]', '"s"', '{"a":1}{', '\u0000', '{"name":'.repeat(200)]),
      ])();

      type AdminCall = { method: string; path: string; body?: Record<string, unknown> | string };
      /** Calls the CLI makes, with valid arguments; each fuzzed call is one of them, most with one part replaced by a random one. */
      const validCalls = (name = pick(['fuzz', 'fuzz-2'])): AdminCall => pick<() => AdminCall>([
        () => ({ method: 'POST', path: '/v1/things', body: { name, password: 'pw-123456' } }),
        () => ({ method: 'PUT', path: `/v1/things/${name}/policy`, body: { policy: pick([null, { publish: ['fuzz/#'], subscribe: ['fuzz/+/x'], clientIds: [name] }]) } }),
        () => ({ method: 'PUT', path: `/v1/things/${name}/password`, body: { password: 'another-password' } }),
        () => ({ method: 'DELETE', path: `/v1/things/${name}` }),
        () => ({ method: 'POST', path: '/v1/buckets', body: { name: `${name}-bucket` } }),
        () => ({ method: 'POST', path: `/v1/buckets/${name}-bucket/notification`, body: pick([{ clear: true }, { function: 'Echo', events: ['s3:ObjectCreated:*'], prefix: 'in/', suffix: '.jpg', id: 'r1' }]) }),
        () => ({ method: 'DELETE', path: `/v1/buckets/${name}-bucket` }),
        () => ({ method: 'POST', path: '/v1/s3/keys', body: pick([{ grants: [{ bucket: '*', permission: pick(['read', 'read-write']) }], description: 'fuzz' }, { thing: name }]) }),
        () => ({ method: 'POST', path: `/v1/shadows/${name}${pick(['', '?name=a'])}`, body: { state: { reported: { n: Math.floor(random() * 100) } } } }),
        () => ({ method: 'DELETE', path: `/v1/shadows/${name}?name=a` }),
        () => ({ method: 'PUT', path: '/v1/functions/Echo/aliases/live', body: { version: 1 } }),
        () => ({ method: 'POST', path: '/v1/functions/Echo/rollback', body: {} }),
        () => ({ method: 'POST', path: '/v1/dlq/replay', body: { all: true } }),
        () => ({ method: 'GET', path: `/v1/functions/Echo/logs${pick(['', '?tail=5'])}` }),
      ])();
      const mutated = (call: AdminCall): AdminCall => {
        const fields = call.body && typeof call.body === 'object' ? Object.keys(call.body) : [];
        switch (Math.floor(random() * 5)) {
          case 0: return fields.length ? { ...call, body: { ...(call.body as object), [pick(fields)]: value(0) } } : call;
          case 1: return fields.length ? { ...call, body: Object.fromEntries(Object.entries(call.body as object).filter(([field]) => field !== pick(fields))) } : call;
          case 2: return { ...call, body: body() };
          case 3: return validCalls(pick(names));
          default: { const [method, template] = pick(routes).split(' '); return { method, path: template.replace(/:n/g, () => pick(names)) + pick(queries), body: body() }; }
        }
      };

      const internalErrors: string[] = [];
      let served = 0;
      let sent = 0;
      const worker = async () => {
        while (sent < 400) {
          sent++;
          const call = random() < 0.3 ? validCalls() : mutated(validCalls());
          const requestBody = call.body === undefined || typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
          const status = (await adminRequest(daemon.socket, call.method, call.path, requestBody))?.status;
          if (status !== undefined && status < 300) served++;
          if (status === undefined || status >= 500) internalErrors.push(`${status ?? 'no answer'} ${call.method} ${call.path.slice(0, 120)} ${requestBody?.slice(0, 200) ?? ''}`);
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      expect(internalErrors, `seed ${seed}`).toEqual([]);
      // a good share of them got past the checks and did what they asked
      expect(served, `seed ${seed}`).toBeGreaterThanOrEqual(60);
      expect(daemon.process.exitCode, `daemon died (seed ${seed})`).toBeNull();
      expect(await outpost(daemon.socket, ['status'])).toMatchObject({ code: 0 });
    } finally {
      await daemon.cleanup();
      echo.remove();
      rmSync(brokenPackage, { recursive: true, force: true });
    }
  });
});
