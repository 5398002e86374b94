import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { canMountTmpfs, fillLeaving, mountTmpfs, unmountTmpfs } from './helpers/tmpfs.js';

const MiB = 1024 * 1024;

describe.skipIf(!canMountTmpfs())('sync with a full disk (tmpfs data directory)', () => {
  let daemon: TestDaemon;
  let mountPoint: string | undefined;

  beforeAll(async () => {
    mountPoint = mountTmpfs(24);
    mkdirSync(join(mountPoint!, 'data'));
    daemon = await TestDaemon.start({
      dataDir: join(mountPoint!, 'data'),
      config: { mqtt: { allowAnonymous: true }, sync: { maxBytes: 1024 * MiB, outbound: [{ name: 'fill', from: 'fill/#' }] } },
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    if (mountPoint) unmountTmpfs(mountPoint);
  });

  it('stays up, counts what it could not store, and stores again once space returns', async () => {
    // Leave ~3 MiB free, then fill it with 4 KiB messages.
    const filler = fillLeaving(mountPoint!, 3 * MiB);
    const device = await connectClient(daemon.mqttUrl, { clientId: 'filler' });
    const payload = Buffer.alloc(4096, 7);
    let sent = 0;
    let status: any;
    for (; sent < 2000; sent++) {
      await Promise.race([device.publishAsync('fill/1', payload, { qos: 1 }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (sent % 50 === 49) {
        status = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
        if (status.rules[0].rejected > 0) break;
      }
    }
    device.end(true);
    // 2000 × 4 KiB do not fit in 3 MiB: the writes failed, were counted, and the daemon is still answering.
    expect(status.rules[0].rejected).toBeGreaterThan(0);
    expect(status.rules[0].lastFailure.reason).toMatch(/could not store/);
    const storedWhenFull = status.rules[0].backlog;
    expect(storedWhenFull).toBeGreaterThan(0);
    expect(daemon.process.exitCode).toBeNull();

    rmSync(filler);
    const again = await connectClient(daemon.mqttUrl, { clientId: 'after' });
    for (let i = 0; i < 20; i++) await again.publishAsync('fill/1', payload, { qos: 1 });
    again.end(true);
    const after = JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
    expect(after.rules[0].backlog).toBeGreaterThanOrEqual(storedWhenFull + 20);
  }, 120_000);
});
