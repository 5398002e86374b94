import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { TestDaemon } from './helpers/daemon.js';
import { addThing, connectAndCollect, connectClient, outpost } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

// A PUBLISH outside the publisher's policy is acknowledged and dropped (MQTT-3.3.5-2): it must reach
// nobody, neither the daemon's own subscribers nor the queues of offline sessions.
describe('a publish outside the policy', () => {
  const out = writePackage({});
  const events = () => {
    const file = join(out.dir, 'events.txt');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  };
  const pkg = writePackage({
    'template.yaml': template('OnAnything', {
      Handler: 'index.handler',
      Environment: { Variables: { OUT_FILE: join(out.dir, 'events.txt') } },
      Events: { Anything: { Type: 'MQTT', Properties: { Topic: '#' } } },
    }),
    'index.js': 'const fs = require("node:fs");\nexports.handler = async (event) => { fs.appendFileSync(process.env.OUT_FILE, JSON.stringify(event) + "\\n"); };\n',
  });
  let daemon: TestDaemon;
  let device: MqttClient;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { mqtt: { maxQueuedMessages: 3 } } });
    await addThing(daemon.socket, 'valve-1', 'pw');
    await addThing(daemon.socket, 'observer', 'watch', { publish: ['ops/#'], subscribe: ['#'], clientIds: ['observer*'] });
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    device = await connectClient(daemon.mqttUrl, { clientId: 'valve-1', username: 'valve-1', password: 'pw' });
  });

  afterAll(async () => {
    device.end(true);
    await daemon.cleanup();
    out.remove();
    pkg.remove();
  });

  it('does not trigger a function subscribed to #', async () => {
    await device.publishAsync('ops/open-all-valves', JSON.stringify({ forged: true }), { qos: 1 });
    await device.publishAsync('things/valve-1/state', JSON.stringify({ open: false }), { qos: 1 });
    await eventually(() => events().some((line) => line.includes('"open":false')));
    // both were committed to the function's queue before their PUBACK: a refused one would have run by now, or soon
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(events().filter((line) => line.includes('forged'))).toEqual([]);
  });

  it('does not trigger a function subscribed to # with the daemon\'s $ topics, as a client\'s # would not match them (MQTT-4.7.2-1)', async () => {
    await device.subscribeAsync('$aws/things/valve-1/shadow/update/accepted', { qos: 1 });
    const accepted = new Promise((resolve) => device.once('message', resolve));
    await device.publishAsync('$aws/things/valve-1/shadow/update', JSON.stringify({ state: { reported: { marker: 'shadow-marker' } } }), { qos: 1 });
    await accepted;
    await device.publishAsync('things/valve-1/state', JSON.stringify({ after: 'shadow' }), { qos: 1 });
    await eventually(() => events().some((line) => line.includes('"after":"shadow"')));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // the update itself, /update/accepted and /update/documents all went by on $aws/…
    expect(events().filter((line) => line.includes('shadow-marker'))).toEqual([]);
  });

  it('takes no room in an offline session\'s queue', async () => {
    const observer = await connectClient(daemon.mqttUrl, { clientId: 'observer-1', username: 'observer', password: 'watch', clean: false });
    await observer.subscribeAsync('#', { qos: 1 });
    observer.end(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await device.publishAsync('things/valve-1/alarm', 'pressure', { qos: 1 });
    // maxQueuedMessages is 3: refused ones kept in the queue would push the alarm out
    for (let i = 0; i < 3; i++) await device.publishAsync(`ops/forged/${i}`, 'x', { qos: 1 });
    const { client, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'observer-1', username: 'observer', password: 'watch', clean: false }, 1);
    try {
      expect((await messages).map((message) => message.topic)).toEqual(['things/valve-1/alarm']);
    } finally {
      client.end(true);
    }
  });
});
