import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// Results published for MQTT clients (OutputTopic, an MQTT destination's record) are bounded by what a
// client may take: eight 5 MiB results at once, parsed and copied into records, ended the daemon.
describe('results too large for MQTT', () => {
  const MAX_PACKET = 8192;
  let daemon: TestDaemon;
  let remove: () => void;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true, maxPacketSize: MAX_PACKET } } });
    const pkg = writePackage({
      'template.yaml': template('Sizer', {
        Handler: 'index.handler',
        Events: { Sizes: { Type: 'MQTT', Properties: { Topic: 'sizes/+', OutputTopic: 'sized/out' } } },
        EventInvokeConfig: { DestinationConfig: { OnSuccess: { Type: 'MQTT', Destination: 'sized/records' } } },
      }),
      'index.js': 'exports.handler = async (event) => ({ n: event.n, big: "y".repeat(event.n) });\n',
    });
    remove = pkg.remove;
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    remove?.();
    await daemon?.cleanup();
  });

  it('publishes no output an MQTT packet cannot hold, and sends the record without its payloads', async () => {
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'sized-watcher' });
    const device = await connectClient(daemon.mqttUrl, { clientId: 'sized-device' });
    try {
      const got: Array<{ topic: string; payload: any }> = [];
      watcher.on('message', (topic, payload) => got.push({ topic, payload: JSON.parse(payload.toString()) }));
      await watcher.subscribeAsync('sized/#', { qos: 1 });
      await device.publishAsync('sizes/small', JSON.stringify({ n: 10 }), { qos: 1 });
      await device.publishAsync('sizes/large', JSON.stringify({ n: 2 * MAX_PACKET }), { qos: 1 });
      await eventually(() => got.filter((message) => message.topic === 'sized/records').length === 2, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // the small one: its output, and its record with both payloads
      expect(got.filter((message) => message.topic === 'sized/out').map((message) => message.payload.n)).toEqual([10]);
      const records = got.filter((message) => message.topic === 'sized/records').map((message) => message.payload);
      expect(records.find((record) => record.responsePayload?.n === 10)).toMatchObject({ requestPayload: { n: 10 }, requestContext: { condition: 'Success' } });
      // the large one: no output; its record as Lambda sends one too large for its destination, without the payloads
      const large = records.find((record) => record.responsePayload?.n !== 10);
      expect(large).toMatchObject({ requestContext: { condition: 'Success' }, responseContext: { statusCode: 200 } });
      expect(large).not.toHaveProperty('requestPayload');
      expect(large).not.toHaveProperty('responsePayload');
      expect(daemon.logs.some((entry) => entry.msg?.startsWith('a function\'s output is larger than an MQTT packet may be') && entry.topic === 'sized/out')).toBe(true);
    } finally {
      watcher.end(true);
      device.end(true);
    }
  });
});
