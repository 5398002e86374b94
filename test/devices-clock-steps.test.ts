import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { LIBFAKETIME } from './helpers/faketime.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { PtyPair } from './helpers/serial.js';

async function connected(socket: string): Promise<boolean> {
  const listed = await outpost(socket, ['devices', 'ls', '--json']);
  expect(listed.code, listed.stderr).toBe(0);
  return JSON.parse(listed.stdout).devices[0].connected;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The daemon runs under libfaketime, its wall clock read from a file the test rewrites; the
// monotonic clock and timers run true, as under a real NTP step on a board without an RTC.
describe.skipIf(!LIBFAKETIME)('serial devices across wall-clock steps (libfaketime)', () => {
  const work = mkdtempSync(join(tmpdir(), 'outpost-device-clock-'));
  const clockFile = join(work, 'clock');
  const pair = new PtyPair(join(work, 'sensor-dev'), join(work, 'sensor-sim'));
  let daemon: TestDaemon | undefined;

  afterAll(async () => {
    await daemon?.cleanup();
    await pair.unplug().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('reopens a port lost after a connection that held, at retryInitialMs, though the clock stepped back meanwhile', async () => {
    const profilesDir = join(work, 'profiles');
    mkdirSync(profilesDir);
    writeFileSync(join(profilesDir, 'sensor.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' } }));
    // '@': the clock starts there when the process starts, and runs
    writeFileSync(clockFile, '@2026-06-01 12:00:00\n');
    daemon = await TestDaemon.start({
      config: {
        devices: { profilesDir, retryInitialMs: 200, retryMaxMs: 60_000, instances: [{ name: 'sensor1', profile: 'sensor', port: pair.dev }] },
      },
      startTimeoutMs: 30_000,
      env: { TZ: 'UTC', LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    });
    // missing at first: attempts 200, 400, 800, 1600 and 3200 ms apart, the wait doubling to 6400 ms
    await sleep(3500);
    await pair.plug();
    await eventually(() => connected(daemon!.socket), 15_000);
    // NTP steps the clock back an hour while the connection holds
    writeFileSync(clockFile, '@2026-06-01 11:00:00\n');
    await sleep(6000);

    // unplugged after a connection that held: the wait starts over at 200 ms, not at 6400 ms
    await pair.unplug();
    await eventually(async () => !(await connected(daemon!.socket)), 5000);
    await pair.plug();
    await eventually(() => connected(daemon!.socket), 4000);
  }, 60_000);
});
