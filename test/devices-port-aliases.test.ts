import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { PtyPair, listDevices } from './helpers/serial.js';

// One tty named two ways, as /dev/serial/by-id/… and the /dev/ttyUSB0 it leads to: a socat link and its pty.

describe('two devices naming one tty through different paths', () => {
  let dir: string;
  let daemon: TestDaemon;
  let pair: PtyPair;
  let tty: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-port-aliases-'));
    const profilesDir = join(dir, 'profiles');
    mkdirSync(profilesDir);
    writeFileSync(join(profilesDir, 'sensor.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' } }));
    pair = await PtyPair.create(dir, 'sensor');
    tty = realpathSync(pair.dev);
    daemon = await TestDaemon.start({
      config: {
        devices: {
          profilesDir, retryInitialMs: 100, retryMaxMs: 400,
          instances: [
            { name: 'by-link', profile: 'sensor', port: pair.dev },
            { name: 'by-tty', profile: 'sensor', port: tty },
          ],
        },
      },
    });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await pair?.unplug();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens it for one, and tells the other which device holds it under which name', async () => {
    const devices = await eventually(async () => {
      const listed = await listDevices(daemon.socket);
      const [open, other] = [listed['by-link'], listed['by-tty']].sort((a, b) => Number(b.connected) - Number(a.connected));
      return open.connected && !other.connected && /is open as/.test(other.lastError ?? '') && { open, other };
    }, 10_000, 100);
    expect(devices.open.portDevice).toBe(tty);
    expect(devices.other.lastError).toBe(`${tty} is open as ${devices.open.port} for device ${devices.open.name}: devices on one port must name it the same way (this one: ${devices.other.port})`);
  });
});
