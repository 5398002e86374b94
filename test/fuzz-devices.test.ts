import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { PtyPair, listDevices } from './helpers/serial.js';

// Device lines a fuzzing campaign found reported wrongly, over a socat pseudo-terminal.
describe('serial device lines found by fuzzing', () => {
  let dir: string;
  let pair: PtyPair;
  let daemon: TestDaemon;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-fuzz-devices-'));
    const profilesDir = join(dir, 'profiles');
    mkdirSync(profilesDir);
    writeFileSync(join(profilesDir, 'jsonl.yaml'), yaml.dump({ framing: { type: 'lines' }, parser: { type: 'json' }, shadow: { minIntervalMs: 0 } }));
    pair = await PtyPair.create(dir, 'jsonl');
    daemon = await TestDaemon.start({
      config: { http: { port: 0, auth: 'none' }, devices: { profilesDir, instances: [{ name: 'probe1', profile: 'jsonl', port: pair.dev, thing: 'probe' }] } },
    });
    await eventually(async () => (await listDevices(daemon.socket)).probe1?.connected, 8000);
  }, 30_000);

  afterAll(async () => {
    await daemon?.cleanup();
    await pair?.unplug().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const reported = async () => {
    const answer = await fetch(`http://127.0.0.1:${daemon.port('http')}/things/probe/shadow`);
    return answer.status === 200 ? (await answer.json()).state.reported : undefined;
  };

  it('reports a JSON line\'s "__proto__" and "constructor" fields to the shadow as fields, as it reports any other', async () => {
    await pair.send('{"__proto__":5,"constructor":"c","t":1}\n');
    const state = await eventually(async () => {
      const current = await reported();
      return current?.t === 1 && current;
    }, 6000);
    expect(Object.entries(state).sort()).toEqual([['__proto__', 5], ['constructor', 'c'], ['t', 1]]);
  });
});
