import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';

// Invoke payloads a fuzzing campaign found answered wrongly.
describe('Lambda Invoke payloads found by fuzzing', () => {
  const pkg = writePackage({ 'template.yaml': template('Echo', { Handler: 'index.handler', Timeout: 3 }), 'index.js': 'exports.handler = async (event) => event;' });
  let daemon: TestDaemon;
  let url: string;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { http: { port: 0, auth: 'none' } } });
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    url = `http://127.0.0.1:${daemon.port('http')}/2015-03-31/functions/Echo/invocations`;
  });
  afterAll(async () => {
    await daemon?.cleanup();
    pkg.remove();
  });

  // {"a":"<FF FE>"}: Lambda answers "Could not parse request body into json: Invalid UTF-8 start byte 0xff"
  const notUtf8 = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);

  it('refuses a body that is not UTF-8 with InvalidRequestContentException, synchronously or queued, rather than running it mended', async () => {
    for (const type of ['RequestResponse', 'Event']) {
      const response = await fetch(url, { method: 'POST', body: notUtf8, headers: { 'x-amz-invocation-type': type } });
      expect(response.status, type).toBe(400);
      expect(response.headers.get('x-amzn-errortype'), type).toBe('InvalidRequestContentException');
    }
  });

  it('still takes JSON whose escapes name a lone surrogate, which is UTF-8 text', async () => {
    const response = await fetch(url, { method: 'POST', body: '{"a":"\\ud800"}' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('{"a":"\\ud800"}');
  });
});
