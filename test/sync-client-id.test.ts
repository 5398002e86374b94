import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';
import { CloudBroker } from './helpers/cloud.js';

const status = async (daemon: TestDaemon) => JSON.parse((await outpost(daemon.socket, ['sync', 'status', '--json'])).stdout);
const linkDowns = (daemon: TestDaemon) => daemon.logs.filter((entry) => entry.msg === 'cloud link down').length;

describe('the cloud client id of gateways from one image (same host name)', () => {
  let cloud: CloudBroker;
  const daemons: TestDaemon[] = [];
  const dataDirs: string[] = [];

  beforeAll(async () => {
    cloud = await CloudBroker.create();
    await cloud.start();
  });

  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.stop();
  });

  afterAll(async () => {
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    await cloud?.destroy();
  });

  const start = async (options: { dataDir?: string; machineId: string; clientId?: string }) => {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'outpost-clone-'));
    if (!options.dataDir) dataDirs.push(dataDir);
    const daemon = await TestDaemon.start({
      dataDir,
      env: { OUTPOST_TEST_MACHINE_ID: options.machineId },
      config: { cloud: { mqtt: { url: cloud.url, reconnectMinMs: 100, reconnectMaxMs: 400, ...(options.clientId ? { clientId: options.clientId } : {}) } } },
    });
    daemons.push(daemon);
    return daemon;
  };

  it('gives each installation its own, kept across restarts, so that neither takes the other\'s session', async () => {
    // flashed before their first start: both share the image's machine id too
    const first = await start({ machineId: 'image' });
    const second = await start({ machineId: 'image' });
    await eventually(async () => (await status(first)).online && (await status(second)).online, 10_000);
    const [a, b] = [(await status(first)).clientId, (await status(second)).clientId];
    expect(a).toMatch(/^outpost[0-9a-f]{16}$/);
    expect(b).toMatch(/^outpost[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
    expect(first.logs.filter((entry) => entry.msg.startsWith('made the cloud client id')).map((entry) => entry.clientId)).toEqual([a]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(linkDowns(first) + linkDowns(second)).toBe(0);

    await first.stop();
    const again = await start({ dataDir: first.dataDir, machineId: 'image' });
    expect((await status(again)).clientId).toBe(a);
  });

  it('makes a new one when the data directory turns up on a machine of another machine id', async () => {
    const original = await start({ machineId: 'machine-a' });
    const made = (await status(original)).clientId;
    await original.stop();
    const clone = await start({ dataDir: original.dataDir, machineId: 'machine-b' });
    const remade = (await status(clone)).clientId;
    expect(remade).toMatch(/^outpost[0-9a-f]{16}$/);
    expect(remade).not.toBe(made);
    expect(clone.logs.some((entry) => /made on another machine/.test(entry.msg))).toBe(true);
  });

  it('keeps the default of earlier versions (outpost-<host name>) for an installation upgraded to this one', async () => {
    const earlier = await start({ machineId: 'machine-a' });
    await earlier.stop();
    // what an earlier version left: the sync tables, no client id of its own
    const db = new Database(join(earlier.dataDir, 'outpost.db'));
    db.prepare("DELETE FROM sync_state WHERE key LIKE 'client_id%'").run();
    db.close();
    const upgraded = await start({ dataDir: earlier.dataDir, machineId: 'machine-a' });
    expect((await status(upgraded)).clientId).toBe(`outpost-${hostname()}`);
  });

  it('makes its own for an installation that started with a configured client id, once that is removed', async () => {
    const configured = await start({ machineId: 'machine-a', clientId: 'gw-set' });
    expect((await status(configured)).clientId).toBe('gw-set');
    // made, but not announced: the link does not use it
    expect(configured.logs.some((entry) => entry.msg.startsWith('made the cloud client id'))).toBe(false);
    await configured.stop();
    const unset = await start({ dataDir: configured.dataDir, machineId: 'machine-a' });
    expect((await status(unset)).clientId).toMatch(/^outpost[0-9a-f]{16}$/);
  });

  it('says so when two gateways are configured with one client id and keep taking over each other\'s session', async () => {
    const first = await start({ machineId: 'a', clientId: 'gw-twin' });
    const second = await start({ machineId: 'b', clientId: 'gw-twin' });
    const warned = await eventually(async () => {
      for (const daemon of [first, second]) {
        const current = await status(daemon);
        if (/another gateway connected with client id "gw-twin"/.test(current.lastError ?? '')) return { daemon, current };
      }
      return false;
    }, 20_000);
    expect(warned.current.clientId).toBe('gw-twin');
    // the status keeps saying it while they go on (not only until the next close, a reconnect later),
    // and the log once
    const closesBefore = linkDowns(warned.daemon);
    await eventually(() => linkDowns(warned.daemon) >= closesBefore + 2, 10_000);
    expect((await status(warned.daemon)).lastError).toMatch(/another gateway connected with client id "gw-twin"/);
    expect(warned.daemon.logs.filter((entry) => /another gateway connected/.test(entry.msg))).toHaveLength(1);
  });
});
