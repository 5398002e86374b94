import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, messagesWithin } from './helpers/mqtt.js';

/** One request with exactly these headers (fetch would not send a Host of our choosing). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<number> {
  return exchange(port, method, path, headers, body).then((answer) => answer.status);
}

function exchange(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// With http.auth: none (the embedded defaults, on loopback) the data plane serves whoever reaches the
// port: the programs of the machine, but also any web page its browser shows, which may send a POST
// anywhere without asking (a "simple" cross-site request) or rebind its own name to 127.0.0.1.
describe('unsigned data plane requests from a web browser (http.auth: none)', () => {
  let daemon: TestDaemon;
  let watcher: MqttClient;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true }, http: { auth: 'none' } } });
    watcher = await connectClient(daemon.mqttUrl, { clientId: 'watcher' });
    await watcher.subscribeAsync(['cmd/#', '$aws/things/+/shadow/#'], { qos: 1 });
  });
  afterAll(async () => {
    watcher.end(true);
    await daemon.cleanup();
  });

  it('refuses a cross-site POST, a rebound page\'s requests, and changes nothing', async () => {
    const port = daemon.port('http');
    const arriving = messagesWithin(watcher, 1500);
    const crossSite = { origin: 'http://attacker.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' };
    expect(await send(port, 'POST', '/topics/cmd%2Fvalve?qos=1', crossSite, 'open')).toBe(403);
    expect(await send(port, 'POST', '/things/boiler/shadow', crossSite, '{"state":{"desired":{"on":true}}}')).toBe(403);
    // Lambda's exception, naming what was refused: there is no key to blame
    const invoked = await exchange(port, 'POST', '/2015-03-31/functions/any/invocations', crossSite, '{}');
    expect([invoked.status, JSON.parse(invoked.body).message]).toEqual([403, 'Unsigned requests from a web browser are refused.']);
    // a page whose name now points at 127.0.0.1 reads as its own origin: only Sec-Fetch-Site tells
    const rebound = { host: `attacker.example:${port}`, 'sec-fetch-site': 'same-origin' };
    expect(await send(port, 'GET', '/things/boiler/shadow', rebound)).toBe(403);
    expect(await arriving).toEqual([]);
  });

  it('serves the machine\'s programs as before', async () => {
    const port = daemon.port('http');
    const arriving = messagesWithin(watcher, 1000);
    expect(await send(port, 'POST', '/topics/cmd%2Fvalve?qos=1', {}, 'open')).toBe(200);
    expect(await arriving).toEqual(['cmd/valve']);
  });
});
