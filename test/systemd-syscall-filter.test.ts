import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestDaemon } from './helpers/daemon.js';
import { straceWorks } from './helpers/strace.js';
import { connectClient, outpost } from './helpers/mqtt.js';
import { FIXTURES, invoke } from './helpers/functions.js';
import { addKey, s3Client } from './helpers/objects.js';
import { http } from './helpers/shadow.js';
import { eventually } from './helpers/eventually.js';

const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => existsSync(path));

/**
 * The unit runs the daemon as outpost, never as root; run as root, SQLite would fchown its log files
 * to the database's owner (it does only for root), a call the filter refuses and no service makes.
 * So a root test run has strace start the daemon as nobody.
 */
const AS_ROOT = process.getuid!() === 0;
const RUN_AS: { name?: string; uid: number; gid: number; group: string } = AS_ROOT
  ? { name: 'nobody', uid: Number(id('-u', 'nobody')), gid: Number(id('-g', 'nobody')), group: id('-gn', 'nobody') }
  : { uid: process.getuid!(), gid: process.getgid!(), group: id('-gn') };

function id(...args: string[]): string {
  return execFileSync('id', args, { encoding: 'utf8' }).trim();
}

/** A Python 3 the daemon's user can run (a root's pyenv is out of nobody's reach; the system one is not). */
const PYTHON = [execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim(), '/usr/bin/python3'].find((python) => {
  try {
    execFileSync(python, ['-c', 'pass'], { uid: RUN_AS.uid, gid: RUN_AS.gid, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});


/** The system calls of a systemd group (`@file-system`), nested groups expanded; a plain name is itself. */
function expand(entry: string, seen = new Set<string>()): string[] {
  if (!entry.startsWith('@')) return [entry];
  if (seen.has(entry)) return [];
  seen.add(entry);
  const text = execFileSync(SYSTEMD_ANALYZE!, ['syscall-filter', '--no-pager', entry], { encoding: 'utf8' });
  const members = text.split('\n').slice(1).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  if (members.length === 0) throw new Error(`systemd-analyze knows no group ${entry}`);
  return members.flatMap((member) => expand(member, seen));
}

/**
 * The system calls the unit's SystemCallFilter= lines let through, as systemd.exec(5) reads them:
 * the first line is an allow list (it has no ~), later lines without ~ add to it, lines with ~ take
 * away from it, in their order.
 */
function allowedByUnit(unitText: string): Set<string> {
  const lines = unitText.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('SystemCallFilter='));
  const allowed = new Set<string>();
  lines.forEach((line, index) => {
    let value = line.slice('SystemCallFilter='.length);
    const deny = value.startsWith('~');
    if (deny) value = value.slice(1);
    if (index === 0 && deny) throw new Error('the test reads an allow-list filter; the unit starts with a deny list');
    for (const name of value.split(/\s+/).filter(Boolean).flatMap((entry) => expand(entry))) {
      if (deny) allowed.delete(name);
      else allowed.add(name);
    }
  });
  return allowed;
}

// The unit's filter answers EPERM (SystemCallErrorNumber=) to every call it does not allow. strace
// does the same here, without systemd: every call the filter refuses is traced and made to fail
// with EPERM, in the daemon and in its children (Python, sh, getent). The daemon runs the usual
// work of a gateway under it; any refused call it makes shows in the trace.
describe.skipIf(!straceWorks || !SYSTEMD_ANALYZE)('systemd/outpost.service SystemCallFilter= (emulated with strace)', () => {
  const work = mkdtempSync(join(tmpdir(), 'outpost-seccomp-'));
  const traceFile = join(work, 'trace');

  /** A data directory of the daemon's user. */
  function dataDir(name: string): string {
    const dir = join(work, name);
    mkdirSync(dir);
    chownSync(dir, RUN_AS.uid, RUN_AS.gid);
    return dir;
  }

  /** strace, as the unit's filter: every call it refuses fails with EPERM and is written to the trace. */
  function filtered(): string[] {
    // `?`: a name strace does not know on this architecture (chown32 on x86_64) is skipped
    const set = refused.map((name) => `?${name}`).join(',');
    return ['strace', ...(RUN_AS.name ? ['-u', RUN_AS.name] : []), '-f', '-qq', '-e', 'signal=none', '-e', `trace=${set}`, '-e', `inject=${set}:error=EPERM`, '-o', traceFile];
  }
  const unit = readFileSync(join(ROOT, 'systemd', 'outpost.service'), 'utf8');
  let refused: string[];
  let daemon: TestDaemon;

  beforeAll(() => {
    // mkdtemp makes it 0700: the daemon's user has to get through to its data directory
    chmodSync(work, 0o711);
    const allowed = allowedByUnit(unit);
    refused = expand('@known').filter((name) => !allowed.has(name));
  });

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('refuses what the unit means it to (the emulation is not vacuous)', () => {
    expect(refused).toEqual(expect.arrayContaining(['fchown', 'fchownat', 'setuid', 'settimeofday', 'init_module', 'reboot']));
    expect(refused).not.toContain('fchmod');
    expect(refused).not.toContain('prlimit64');
    expect(refused).not.toContain('setrlimit');
  });

  it('lets the daemon start, serve MQTT, S3, shadows and Node and Python functions, and stop', async () => {
    expect(PYTHON, 'a python3 the daemon\'s user can run').toBeDefined();
    daemon = await TestDaemon.start({
      dataDir: dataDir('gateway'),
      config: {
        mqtt: { allowAnonymous: true },
        http: { auth: 'none' },
        functions: { pythonPath: PYTHON },
        // the group the daemon already runs as, by name (looked up with getent, a child), as under
        // the unit: Group=outpost, admin.group: outpost
        admin: { group: RUN_AS.group },
      },
      startTimeoutMs: 60_000,
      wrapper: filtered(),
    });
    try {
      const client = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
      await client.publishAsync('sensors/temp', '21.5', { qos: 1 });
      client.end(true);

      const shadow = await http(daemon.port('http'), 'POST', '/things/lamp/shadow', JSON.stringify({ state: { reported: { on: true } } }));
      expect(shadow.status).toBe(200);

      const s3 = s3Client(daemon, await addKey(daemon));
      await s3.send(new CreateBucketCommand({ Bucket: 'cameras' }));
      // a small object is copied to the share by a worker thread and synced with `sync -f`, a child
      await s3.send(new PutObjectCommand({ Bucket: 'cameras', Key: 'small.txt', Body: 'motion\n' }));
      await s3.send(new PutObjectCommand({ Bucket: 'cameras', Key: 'large.bin', Body: Buffer.alloc(1 << 20, 1) }));
      await eventually(() => existsSync(join(daemon.dataDir, 'share', 'cameras', 'small.txt')), 10_000);

      for (const fixture of ['basic', 'python']) {
        const deployed = await outpost(daemon.socket, ['deploy', join(FIXTURES, fixture)]);
        expect(deployed.code, deployed.stderr).toBe(0);
      }
      const node = await invoke(daemon.socket, 'EchoCjs', { n: 1 });
      expect(node.result, node.stderr).toMatchObject({ statusCode: 200 });
      expect(node.result.functionError).toBeUndefined();
      // its bootstrap limits its address space with setrlimit(RLIMIT_AS) (prlimit64) first
      const python = await invoke(daemon.socket, 'PyEcho', { n: 1 });
      expect(python.result, python.stderr).toMatchObject({ statusCode: 200 });
      expect(python.result.functionError).toBeUndefined();
    } finally {
      // the daemon is strace's child; stopping strace would only detach it
      const pid = Number(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      const exited = new Promise<number | null>((resolve) => daemon.process.once('exit', (code) => resolve(code)));
      process.kill(pid, 'SIGTERM');
      expect(await exited).toBe(0);
      await daemon.cleanup();
    }
    const calls = readFileSync(traceFile, 'utf8').split('\n').filter((line) => line.includes('(INJECTED)'));
    expect(calls).toEqual([]);
  }, 120_000);

  it('fails the start with admin.group and the cause when the socket needs a chown the filter refuses', async () => {
    const other = RUN_AS.gid === 0 ? 'daemon' : 'root';
    const start = TestDaemon.start({ dataDir: dataDir('other-group'), config: { admin: { group: String(other) } }, wrapper: filtered() });
    await expect(start).rejects.toThrow(/exited with 1/);
    await expect(start).rejects.toThrow(new RegExp(`cannot give the admin socket \\S+ to group ${other} \\(admin.group\\): EPERM`));
  }, 60_000);
});
