import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { CloudBroker } from './helpers/cloud.js';

const bootIds = (dataDir: string) => {
  const db = new Database(join(dataDir, 'outpost.db'), { readonly: true });
  try {
    return (db.prepare('SELECT boot_id FROM sync_boots ORDER BY rowid').pluck().all() as string[]);
  } finally {
    db.close();
  }
};

describe('the boots the outbox keeps for comparing ages', () => {
  let cloud: CloudBroker | undefined;
  let dataDir: string | undefined;

  afterAll(async () => {
    await cloud?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('are only those its items come from, not one more row for every reboot of the board', async () => {
    cloud = await CloudBroker.create();
    const config = {
      mqtt: { allowAnonymous: true },
      cloud: { mqtt: { url: cloud.url, clientId: 'gw-boots', reconnectMinMs: 100, reconnectMaxMs: 300 } },
      sync: { outbound: [{ name: 'telemetry', from: 'sensors/#' }] },
    };
    const boot = async (bootId: string) => {
      const daemon = await TestDaemon.start({ config, dataDir, env: { OUTPOST_TEST_BOOT_ID: bootId } });
      dataDir = daemon.dataDir;
      return daemon;
    };

    // An idle gateway rebooted every night: no item, so no boot to keep but this one.
    for (const bootId of ['night-1', 'night-2', 'night-3']) await (await boot(bootId)).stop();
    expect(bootIds(dataDir!)).toEqual(['night-3']);

    // An item buffered offline keeps its boot across the next reboots, until it is delivered.
    let daemon = await boot('night-4');
    const device = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
    await device.publishAsync('sensors/a', '1', { qos: 1 });
    device.end(true);
    await daemon.stop();
    daemon = await boot('night-5');
    await daemon.stop();
    expect(bootIds(dataDir!)).toEqual(expect.arrayContaining(['night-4', 'night-5']));
    daemon = await boot('night-6');
    await cloud.start();
    await eventually(async () => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout).outbox.items === 0, 10_000);
    await daemon.stop();
    expect(bootIds(dataDir!)).toEqual(['night-6']);
  }, 60_000);
});
