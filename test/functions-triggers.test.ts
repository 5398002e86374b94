import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost, publishUntilCut } from './helpers/mqtt.js';
import { template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';

const CONFIG = { mqtt: { allowAnonymous: true }, functions: { maxInstances: 2, queueLength: 100_000 } };
const WINDOW = 20;

describe('functions: MQTT triggers are durable', () => {
  const out = writePackage({});
  const seen = () => {
    const file = join(out.dir, 'seen.txt');
    return new Set(existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : []);
  };
  const pkg = writePackage({
    'template.yaml': template('OnReading', {
      Handler: 'index.handler',
      Environment: { Variables: { OUT_FILE: join(out.dir, 'seen.txt') } },
      Events: { Reading: { Type: 'MQTT', Properties: { Topic: 'readings/+' } } },
    }),
    'index.js': 'const fs = require("node:fs");\nexports.handler = async (event) => { fs.appendFileSync(process.env.OUT_FILE, event.seq + "\\n"); };\n',
  });
  let daemon: TestDaemon | undefined;

  afterAll(async () => {
    if (daemon) {
      expect(await daemon.stop()).toBe(0);
      await daemon.cleanup();
    }
    out.remove();
    pkg.remove();
  });

  it('runs every event whose PUBACK the device got, even when the daemon is killed right after', { timeout: 90_000 }, async () => {
    const first = await TestDaemon.start({ config: CONFIG });
    daemon = first;
    expect(await outpost(first.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    const acked = await publishUntilCut(first.mqttUrl, {
      client: { clientId: 'trigger-pub' }, window: WINDOW,
      message: (seq) => ({ topic: `readings/${seq}`, payload: JSON.stringify({ seq }) }),
      killAfterMs: 700, kill: () => void first.kill(),
    });
    await first.kill();
    expect(acked.length).toBeGreaterThan(WINDOW);
    daemon = await TestDaemon.start({ config: CONFIG, dataDir: first.dataDir });
    // At least once: each acknowledged event runs after the restart if it had not run before.
    const missing = await eventually(() => {
      const got = seen();
      const lost = acked.filter((seq) => !got.has(seq));
      return lost.length === 0 ? lost : undefined;
    }, 60_000);
    expect(missing).toEqual([]);
  });

  it('runs every event whose PUBACK the device got while the function is deployed again and again', { timeout: 60_000 }, async () => {
    const running = daemon ?? (daemon = await TestDaemon.start({ config: CONFIG }));
    expect(await outpost(running.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
    // the same trigger, another handler file each time: a new version
    const again = (round: number) => writePackage({
      'template.yaml': template('OnReading', {
        Handler: 'index.handler',
        Environment: { Variables: { OUT_FILE: join(out.dir, 'seen.txt') } },
        Events: { Reading: { Type: 'MQTT', Properties: { Topic: 'readings/+' } } },
      }),
      'index.js': `// round ${round}\nconst fs = require("node:fs");\nexports.handler = async (event) => { fs.appendFileSync(process.env.OUT_FILE, event.seq + "\\n"); };\n`,
    });
    const client = await connectClient(running.mqttUrl, { clientId: 'redeploy-pub' });
    const acked: number[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let seq = 1_000_000; publishing && seq < 1_010_000; seq++) {
        await client.publishAsync(`readings/${seq}`, JSON.stringify({ seq }), { qos: 1 });
        acked.push(seq);
      }
    })();
    try {
      for (let round = 0; round < 4; round++) {
        const pkgAgain = again(round);
        try {
          expect(await outpost(running.socket, ['deploy', pkgAgain.dir])).toMatchObject({ code: 0 });
        } finally {
          pkgAgain.remove();
        }
      }
    } finally {
      publishing = false;
      await publisher;
      client.end(true);
    }
    expect(acked.length).toBeGreaterThan(100);
    const missing = await eventually(() => {
      const got = seen();
      const lost = acked.filter((seq) => !got.has(seq));
      return lost.length === 0 ? lost : undefined;
    }, 30_000).catch(() => acked.filter((seq) => !seen().has(seq)));
    expect(missing).toEqual([]);
  });
});

describe('functions: Outputs of MQTT triggers', () => {
  let daemon: TestDaemon;
  const pkg = writePackage({
    'template.yaml': template('Thermostat', {
      Handler: 'index.handler',
      Events: {
        Temp: { Type: 'MQTT', Properties: { Topic: 'temps/+', OutputTopic: 'alerts/temp' } },
        // No OutputTopic: results of these events go nowhere.
        Humidity: { Type: 'MQTT', Properties: { Topic: 'humidity/+' } },
      },
    }),
    'index.js': 'exports.handler = async (event, context) => (event.c > 25 ? { alert: "hot", celsius: event.c, from: context.clientContext.Custom.subject } : null);\n',
  });

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: CONFIG });
    expect(await outpost(daemon.socket, ['deploy', pkg.dir])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    pkg.remove();
  });

  it('publishes what the handler returns on the trigger\'s OutputTopic; a null result publishes nothing', async () => {
    const device = await connectClient(daemon.mqttUrl, { clientId: 'thermo-device' });
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'thermo-watcher' });
    try {
      const got: Array<{ topic: string; payload: string }> = [];
      watcher.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
      await watcher.subscribeAsync('alerts/#', { qos: 1 });
      await device.publishAsync('temps/kitchen', JSON.stringify({ c: 20 }), { qos: 1 });
      await device.publishAsync('humidity/kitchen', JSON.stringify({ c: 99 }), { qos: 1 });
      await device.publishAsync('temps/attic', JSON.stringify({ c: 31 }), { qos: 1 });
      await eventually(() => got.length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(got).toEqual([{ topic: 'alerts/temp', payload: JSON.stringify({ alert: 'hot', celsius: 31, from: 'temps/attic' }) }]);
    } finally {
      device.end(true);
      watcher.end(true);
    }
  });

  it('refuses an OutputTopic with wildcards, naming the key', async () => {
    const bad = writePackage({
      'template.yaml': template('BadOutput', { Handler: 'index.handler', Events: { T: { Type: 'MQTT', Properties: { Topic: 't/+', OutputTopic: 'out/+' } } } }),
      'index.js': 'exports.handler = async () => 1;\n',
    });
    try {
      expect((await outpost(daemon.socket, ['deploy', bad.dir])).stderr)
        .toContain('Resources.BadOutput.Properties.Events.T.Properties.OutputTopic: expected an MQTT topic name (no + or # wildcards)');
    } finally {
      bad.remove();
    }
  });
});
