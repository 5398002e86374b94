import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'js-yaml';
import { validateConfig } from '../src/config/load.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const BOARDS = ['rpi-zero-2w', 'rpi-3', 'rpi-4', 'rpi-5', 'x86_64-generic', 'minimal-128mb'];
// The installer runs synchronously (spawnSync): without a turn of the event loop between tests the
// worker would not read vitest's answers for the whole file (~2 min) and vitest's 60 s RPC timeout
// would fail a green run ("Timeout calling onTaskUpdate").
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => existsSync(path));
const SHELLCHECK = ['/usr/bin/shellcheck', '/usr/local/bin/shellcheck', '/bin/shellcheck'].find((path) => existsSync(path));
const SYSUSERS = ['/usr/bin/systemd-sysusers', '/bin/systemd-sysusers'].find((path) => existsSync(path));
const TMPFILES = ['/usr/bin/systemd-tmpfiles', '/bin/systemd-tmpfiles'].find((path) => existsSync(path));
const DAEMON = join(repo, 'dist', 'bin', 'outpostd.js');
/** Each install spawns bash and node a few times; on a loaded 2-core runner that adds up. */
const SLOW = { timeout: 120_000 };

let work: string;
/** A checkout-like copy of the repo with a stub dist/, so the test never builds or touches the real tree. */
let source: string;
let rootCount = 0;

interface Run { status: number | null; out: string }

function install(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync('bash', [join(source, 'systemd', 'install.sh'), ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  if (result.error) throw result.error;
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** Installs into a fresh root (no network: --skip-deps; the test's own Node.js as the unit's node). */
function freshRoot(): string {
  rootCount += 1;
  const root = join(work, `root-${rootCount}`);
  mkdirSync(root);
  return root;
}

function installInto(root: string, ...args: string[]): Run {
  const run = install(['--root', root, '--skip-deps', '--node', process.execPath, ...args]);
  expect(run.status, run.out).toBe(0);
  return run;
}

/** Every path under dir with type, mode, mtime and content hash: equal snapshots mean nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const stack = [''];
  let guard = 0;
  while (stack.length > 0) {
    guard += 1;
    if (guard > 100_000) throw new Error('snapshot: too many entries');
    const rel = stack.pop()!;
    for (const name of readdirSync(join(dir, rel))) {
      const relPath = join(rel, name);
      const path = join(dir, relPath);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) {
        entries[relPath] = `link ${readlinkSync(path)}`;
      } else if (stat.isDirectory()) {
        entries[relPath] = `dir ${(stat.mode & 0o7777).toString(8)} ${stat.mtimeMs}`;
        stack.push(relPath);
      } else {
        const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
        entries[relPath] = `file ${(stat.mode & 0o7777).toString(8)} ${stat.mtimeMs} ${hash}`;
      }
    }
  }
  return entries;
}

function readConfig(root: string): Record<string, any> {
  return YAML.load(readFileSync(join(root, 'etc/outpost/outpost.yaml'), 'utf8'));
}

function nodeOptionsOf(dropin: string): string {
  const match = /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(dropin);
  expect(match, dropin).not.toBeNull();
  return match![1];
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'outpost-install-'));
  source = join(work, 'checkout');
  mkdirSync(join(source, 'dist', 'bin'), { recursive: true });
  for (const entry of ['package.json', 'package-lock.json', 'systemd', 'firmware-configs', 'docs']) {
    if (existsSync(join(repo, entry))) cpSync(join(repo, entry), join(source, entry), { recursive: true });
  }
  writeFileSync(join(source, 'dist/bin/outpostd.js'), '// stub daemon for the installer test\n');
  writeFileSync(join(source, 'dist/bin/outpost.js'), '// stub CLI for the installer test\n');
  // The installer reads the board profiles with the checkout's `js-yaml` package.
  symlinkSync(join(repo, 'node_modules'), join(source, 'node_modules'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('board profiles', SLOW, () => {
  it.each(BOARDS)('%s is sized for its RAM and only uses daemon config keys', (board) => {
    const profile = YAML.load(readFileSync(join(repo, 'firmware-configs/boards', `${board}.yaml`), 'utf8'));
    expect(profile.name).toBe(board);
    const config = validateConfig({ board, ...profile.config }, `${board}.yaml`);
    expect(config.mqtt.allowAnonymous).toBe(false);
    expect(config.admin.socket).toBe('/run/outpost/admin.sock');
    // site-specific (firmware-configs/boards/README.md); a profile may size functions' limits to its RAM
    for (const reserved of ['cloud', 'sync', 'devices']) expect(profile.config[reserved]).toBeUndefined();
    if (board === 'minimal-128mb') expect(config.functions).toMatchObject({ maxConcurrency: 4, maxSpareThreads: 0 });
    const heap = Number(/--max-old-space-size=(\d+)/.exec(profile.nodeOptions.join(' '))?.[1]);
    expect(heap).toBeGreaterThan(0);
    // The heap cap stays well under the board's RAM; the 128 MB board must stay ≤ 110 MB RSS under load.
    expect(heap).toBeLessThanOrEqual(profile.memoryMb / 2);
    if (board === 'minimal-128mb') expect(heap).toBeLessThanOrEqual(64);
    expect(Array.isArray(profile.serialPorts) && profile.serialPorts.length).toBeGreaterThan(0);
  });

  it('each profile\'s V8 flags are accepted by this Node.js (nodeOptions in NODE_OPTIONS, nodeArgs on the command line)', () => {
    for (const board of BOARDS) {
      const profile = YAML.load(readFileSync(join(repo, 'firmware-configs/boards', `${board}.yaml`), 'utf8'));
      const result = spawnSync(process.execPath, [...(profile.nodeArgs ?? []), '-e', 'process.exit(0)'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, NODE_OPTIONS: profile.nodeOptions.join(' ') },
      });
      expect(result.status, `${board}: ${result.stderr}`).toBe(0);
    }
  });
});

describe('install.sh --root', SLOW, () => {
  it.skipIf(!SHELLCHECK)('is shellcheck-clean', () => {
    const result = spawnSync(SHELLCHECK!, [join(repo, 'systemd/install.sh')], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  it.each(BOARDS)('installs the %s profile: app, unit, drop-in, config', (board) => {
    const root = freshRoot();
    const run = installInto(root, '--board', board);
    expect(run.out).toContain(`board: ${board} (--board)`);

    // The application.
    for (const file of ['package.json', 'dist/bin/outpostd.js', 'dist/bin/outpost.js', `firmware-configs/boards/${board}.yaml`,
      'systemd/outpost.service', 'systemd/board-profile.mjs', '.outpost-install']) {
      expect(existsSync(join(root, 'opt/outpost', file)), file).toBe(true);
    }
    expect(statSync(join(root, 'opt/outpost/systemd/install.sh')).mode & 0o111).not.toBe(0);

    // The unit runs this Node.js from the prefix.
    const unit = readFileSync(join(root, 'etc/systemd/system/outpost.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} $OUTPOST_NODE_ARGS /opt/outpost/dist/bin/outpostd.js --config /etc/outpost/outpost.yaml`);
    expect(unit).toContain('Type=notify');
    expect(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/outpost.service')))
      .toBe('/etc/systemd/system/outpost.service');

    // The drop-in carries the board's V8 flags.
    const dropin = readFileSync(join(root, 'etc/systemd/system/outpost.service.d/board.conf'), 'utf8');
    const profile = YAML.load(readFileSync(join(repo, 'firmware-configs/boards', `${board}.yaml`), 'utf8'));
    expect(nodeOptionsOf(dropin)).toBe(profile.nodeOptions.join(' '));
    expect(nodeOptionsOf(dropin)).toMatch(/--max-old-space-size=\d+/);
    if (profile.nodeArgs?.length) expect(dropin).toContain(`Environment="OUTPOST_NODE_ARGS=${profile.nodeArgs.join(' ')}"`);
    else expect(dropin).not.toContain('OUTPOST_NODE_ARGS');

    // The config: from the profile, valid, anonymous off, readable by group outpost only.
    const configFile = join(root, 'etc/outpost/outpost.yaml');
    expect(statSync(configFile).mode & 0o777).toBe(0o640);
    expect(statSync(join(root, 'etc/outpost')).mode & 0o777).toBe(0o750);
    const config = readConfig(root);
    expect(config.board).toBe(board);
    const valid = validateConfig(config, configFile);
    expect(valid.mqtt.allowAnonymous).toBe(false);
    expect(valid.admin).toMatchObject({ socket: '/run/outpost/admin.sock', group: 'outpost' });
    expect(valid.mqtt.maxConnections).toBe(profile.config.mqtt.maxConnections);

    // Boot-time helpers for images: the user and the config's ownership.
    expect(readFileSync(join(root, 'etc/sysusers.d/outpost.conf'), 'utf8')).toMatch(/^u outpost .*\/usr\/sbin\/nologin$/m);
    expect(readFileSync(join(root, 'etc/sysusers.d/outpost.conf'), 'utf8')).toMatch(/^m outpost dialout$/m);
    // share writers get their own group, not outpost (which owns the admin socket); the daemon is in it
    expect(readFileSync(join(root, 'etc/sysusers.d/outpost.conf'), 'utf8')).toMatch(/^g outpost-share -$/m);
    expect(readFileSync(join(root, 'etc/sysusers.d/outpost.conf'), 'utf8')).toMatch(/^m outpost outpost-share$/m);
    expect(readFileSync(join(root, 'etc/tmpfiles.d/outpost.conf'), 'utf8')).toContain('z /etc/outpost/outpost.yaml 0640 root outpost');
    expect(readFileSync(join(root, 'usr/local/bin/outpost'), 'utf8')).toContain('/opt/outpost/dist/bin/outpost.js');

    // Nothing that needs the live system was run.
    expect(run.out).toContain('skipped (--root): useradd');
    expect(run.out).toContain('skipped (--root): systemctl daemon-reload');
  });

  it.skipIf(!SYSTEMD_ANALYZE)('the installed unit and its drop-in pass systemd-analyze verify', () => {
    const root = freshRoot();
    installInto(root, '--board', 'minimal-128mb');
    const dir = join(work, 'verify');
    mkdirSync(join(dir, 'outpost.service.d'), { recursive: true });
    cpSync(join(root, 'etc/systemd/system/outpost.service'), join(dir, 'outpost.service'));
    cpSync(join(root, 'etc/systemd/system/outpost.service.d/board.conf'), join(dir, 'outpost.service.d/board.conf'));
    // verify reads drop-ins from the directory next to the unit file.
    const result = spawnSync(SYSTEMD_ANALYZE!, ['verify', '--man=no', join(dir, 'outpost.service')], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0' },
    });
    const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => line.includes('outpost'));
    expect(lines).toEqual([]);
    expect(result.status).toBe(0);
  });

  it.skipIf(!SYSUSERS || !TMPFILES)('at first boot of an image, sysusers creates the user and tmpfiles the config ownership', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-zero-2w');
    // A scratch root standing in for the image's first boot: a minimal passwd/group.
    const boot = join(work, `boot-${rootCount}`);
    mkdirSync(join(boot, 'etc/outpost'), { recursive: true });
    writeFileSync(join(boot, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(boot, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
    cpSync(join(root, 'etc/outpost/outpost.yaml'), join(boot, 'etc/outpost/outpost.yaml'));
    chmodSync(join(boot, 'etc/outpost'), 0o755);
    chmodSync(join(boot, 'etc/outpost/outpost.yaml'), 0o644);

    const sysusers = spawnSync(SYSUSERS!, [`--root=${boot}`, join(root, 'etc/sysusers.d/outpost.conf')], { encoding: 'utf8', timeout: 60_000 });
    expect(sysusers.status, sysusers.stderr).toBe(0);
    const passwd = readFileSync(join(boot, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^outpost:x:\d+:\d+:[^:]*:\/var\/lib\/outpost:\/usr\/sbin\/nologin$/m);
    const group = readFileSync(join(boot, 'etc/group'), 'utf8');
    expect(group).toMatch(/^dialout:x:20:outpost$/m);
    expect(group).toMatch(/^outpost-share:x:\d+:outpost$/m);
    const gid = Number(/^outpost:x:(\d+):/m.exec(group)?.[1]);

    const tmpfiles = spawnSync(TMPFILES!, [`--root=${boot}`, '--create', join(root, 'etc/tmpfiles.d/outpost.conf')], { encoding: 'utf8', timeout: 60_000 });
    expect(tmpfiles.status, tmpfiles.stderr).toBe(0);
    const config = statSync(join(boot, 'etc/outpost/outpost.yaml'));
    expect(config.mode & 0o777).toBe(0o640);
    expect(statSync(join(boot, 'etc/outpost')).mode & 0o777).toBe(0o750);
    if (process.getuid?.() === 0) expect(config.gid).toBe(gid);
  });

  it.skipIf(!existsSync(DAEMON))('outpostd --print-config accepts every installed config', () => {
    for (const board of BOARDS) {
      const root = freshRoot();
      installInto(root, '--board', board);
      const result = spawnSync(process.execPath, [DAEMON, '--config', join(root, 'etc/outpost/outpost.yaml'), '--print-config'], {
        encoding: 'utf8',
        timeout: 30_000,
        cwd: work,
      });
      expect(result.status, `${board}: ${result.stdout}${result.stderr}`).toBe(0);
    }
  });

  it('honours --prefix in the unit, the CLI wrapper and the file tree', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-4', '--prefix', '/srv/outpost-app');
    expect(existsSync(join(root, 'srv/outpost-app/dist/bin/outpostd.js'))).toBe(true);
    expect(existsSync(join(root, 'opt/outpost'))).toBe(false);
    const unit = readFileSync(join(root, 'etc/systemd/system/outpost.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} $OUTPOST_NODE_ARGS /srv/outpost-app/dist/bin/outpostd.js`);
    expect(unit).toContain('Documentation=file:/srv/outpost-app/docs/install.md');
    expect(unit).not.toContain('/opt/outpost');
    expect(readFileSync(join(root, 'usr/local/bin/outpost'), 'utf8')).toContain('/srv/outpost-app/dist/bin/outpost.js');
  });

  it('is idempotent and never overwrites an edited config', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-3');
    const before = snapshot(root);
    const second = installInto(root, '--board', 'rpi-3');
    expect(second.out).toContain('(0 changes)');
    expect(second.out).not.toContain('was written for board');
    // --skip-deps: no dependencies to run the check with, and it says so
    expect(second.out).toContain('not checked /etc/outpost/outpost.yaml (no dependencies in /opt/outpost yet)');
    expect(snapshot(root)).toEqual(before);

    // The admin's edit survives a re-install, even one for another board; the drop-in follows the board.
    const configFile = join(root, 'etc/outpost/outpost.yaml');
    const edited = `${readFileSync(configFile, 'utf8')}# edited by hand\n`.replace('maxConnections: 500', 'maxConnections: 42');
    writeFileSync(configFile, edited);
    const third = installInto(root, '--board', 'rpi-4');
    expect(third.out).toContain('kept /etc/outpost/outpost.yaml');
    // its sizes were the other board's: said, not changed
    expect(third.out).toContain('warning: /etc/outpost/outpost.yaml was written for board rpi-3, this install is for rpi-4');
    expect(readFileSync(configFile, 'utf8')).toBe(edited);
    expect(readConfig(root).mqtt.maxConnections).toBe(42);
    const dropin = readFileSync(join(root, 'etc/systemd/system/outpost.service.d/board.conf'), 'utf8');
    expect(dropin).toContain('"rpi-4"');
  });

  it('brings an upgraded app over and removes files the new version no longer has', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-5');
    mkdirSync(join(root, 'opt/outpost/dist/old'), { recursive: true });
    writeFileSync(join(root, 'opt/outpost/dist/old/gone.js'), '// from an older version\n');
    writeFileSync(join(root, 'opt/outpost/dist/bin/outpostd.js'), '// locally modified\n');
    const run = installInto(root, '--board', 'rpi-5');
    expect(run.out).toContain('remove /opt/outpost/dist/old');
    expect(existsSync(join(root, 'opt/outpost/dist/old'))).toBe(false);
    expect(readFileSync(join(root, 'opt/outpost/dist/bin/outpostd.js'), 'utf8'))
      .toBe(readFileSync(join(source, 'dist/bin/outpostd.js'), 'utf8'));
  });

  it('--no-start leaves the service disabled', () => {
    const root = freshRoot();
    const run = installInto(root, '--board', 'rpi-4', '--no-start');
    expect(run.out).toContain('not enabled (--no-start): the service does not start at the target\'s boot until enabled there');
    expect(run.out).not.toContain('starts on the target\'s next boot');
    expect(existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/outpost.service'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/outpost.service'))).toBe(true);
  });
});

describe('install.sh board detection', SLOW, () => {
  const cases: Array<{ model?: string; arch: string; board: string }> = [
    { model: 'Raspberry Pi Zero 2 W Rev 1.0', arch: 'aarch64', board: 'rpi-zero-2w' },
    { model: 'Raspberry Pi 3 Model B Rev 1.2', arch: 'aarch64', board: 'rpi-3' },
    { model: 'Raspberry Pi 3 Model B Plus Rev 1.3', arch: 'armv7l', board: 'rpi-3' },
    { model: 'Raspberry Pi 3 Model A Plus Rev 1.0', arch: 'aarch64', board: 'rpi-zero-2w' },
    { model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'aarch64', board: 'rpi-4' },
    { model: 'Raspberry Pi Compute Module 4 Rev 1.0', arch: 'aarch64', board: 'rpi-4' },
    { model: 'Raspberry Pi 5 Model B Rev 1.0', arch: 'aarch64', board: 'rpi-5' },
    { model: 'Some Unknown Board v2', arch: 'aarch64', board: 'minimal-128mb' },
    { arch: 'x86_64', board: 'x86_64-generic' },
    { arch: 'amd64', board: 'x86_64-generic' },
    { arch: 'armv7l', board: 'minimal-128mb' },
  ];

  it.each(cases)('model $model on $arch → $board', ({ model, arch, board }) => {
    const root = freshRoot();
    if (model !== undefined) {
      mkdirSync(join(root, 'proc/device-tree'), { recursive: true });
      // The kernel's string ends in a NUL byte.
      writeFileSync(join(root, 'proc/device-tree/model'), `${model}\0`);
    }
    const run = installInto(root, '--arch', arch, '--no-start');
    expect(run.out).toContain(`board: ${board} (`);
    expect(readConfig(root).board).toBe(board);
    const profile = YAML.load(readFileSync(join(repo, 'firmware-configs/boards', `${board}.yaml`), 'utf8'));
    expect(nodeOptionsOf(readFileSync(join(root, 'etc/systemd/system/outpost.service.d/board.conf'), 'utf8')))
      .toBe(profile.nodeOptions.join(' '));
  });

  it('--board wins over the device-tree model', () => {
    const root = freshRoot();
    mkdirSync(join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(join(root, 'proc/device-tree/model'), 'Raspberry Pi 5 Model B Rev 1.0\0');
    installInto(root, '--board', 'minimal-128mb', '--arch', 'aarch64');
    expect(readConfig(root).board).toBe('minimal-128mb');
  });

  it('warns that a Node.js newer than 20 is past a 128 MB board\'s idle budget, and installs all the same', () => {
    // this Node.js but for the version it reports
    const reporting = (version: string) => {
      const node = join(work, `node-${version}`);
      writeFileSync(node, `#!/bin/sh\nif [ "$1 $2" = "-p process.versions.node" ]; then echo ${version}; else exec "${process.execPath}" "$@"; fi\n`);
      chmodSync(node, 0o755);
      return node;
    };
    const installWith = (node: string, board: string) => install(['--root', freshRoot(), '--skip-deps', '--node', node, '--board', board, '--no-start']);
    const small = installWith(reporting('24.22.3'), 'minimal-128mb');
    expect(small.status, small.out).toBe(0);
    expect(small.out).toContain('warning: Node.js 24.22.3 takes about 11-17 MB more at rest than Node.js 20, past the 64 MB idle budget of minimal-128mb');
    for (const run of [installWith(reporting('24.22.3'), 'rpi-4'), installWith(reporting('20.19.2'), 'minimal-128mb')]) {
      expect(run.status, run.out).toBe(0);
      expect(run.out).not.toContain('more at rest');
    }
  });
});

describe('install.sh --uninstall', SLOW, () => {
  it('removes the service and app but keeps the config and data; --purge removes those', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-4');
    writeFileSync(join(root, 'var/lib/outpost/outpost.db'), 'precious data');

    const run = installInto(root, '--uninstall');
    expect(run.out).toContain('kept /etc/outpost and /var/lib/outpost');
    for (const gone of ['etc/systemd/system/outpost.service', 'etc/systemd/system/outpost.service.d',
      'etc/systemd/system/multi-user.target.wants/outpost.service', 'opt/outpost', 'usr/local/bin/outpost',
      'etc/sysusers.d/outpost.conf', 'etc/tmpfiles.d/outpost.conf']) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    expect(readFileSync(join(root, 'var/lib/outpost/outpost.db'), 'utf8')).toBe('precious data');
    expect(readConfig(root).board).toBe('rpi-4');

    // Uninstalling twice is harmless.
    expect(installInto(root, '--uninstall').out).toContain('uninstalled (0 change(s))');

    installInto(root, '--uninstall', '--purge');
    expect(existsSync(join(root, 'var/lib/outpost'))).toBe(false);
    expect(existsSync(join(root, 'etc/outpost'))).toBe(false);
  });

  it('keeps the admin\'s own drop-ins and a prefix it did not create', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-4');
    writeFileSync(join(root, 'etc/systemd/system/outpost.service.d/override.conf'), '[Service]\nReadWritePaths=/mnt/share\n');
    mkdirSync(join(root, 'srv/not-ours'), { recursive: true });
    writeFileSync(join(root, 'srv/not-ours/file'), 'x');
    const run = installInto(root, '--uninstall');
    expect(existsSync(join(root, 'etc/systemd/system/outpost.service.d/board.conf'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/outpost.service.d/override.conf'))).toBe(true);
    expect(run.out).toContain('holds your own drop-ins');
    const other = install(['--root', root, '--uninstall', '--prefix', '/srv/not-ours']);
    expect(other.status, other.out).toBe(0);
    expect(other.out).toContain('kept /srv/not-ours');
    expect(readFileSync(join(root, 'srv/not-ours/file'), 'utf8')).toBe('x');
  });
});

describe('install.sh --dry-run', SLOW, () => {
  it('changes nothing on a fresh root and says what it would do', () => {
    const root = freshRoot();
    const run = installInto(root, '--board', 'rpi-zero-2w', '--dry-run');
    expect(run.out).toContain('would write /etc/outpost/outpost.yaml');
    expect(run.out).toContain('would write /etc/systemd/system/outpost.service');
    expect(run.out).toMatch(/dry run: \d+ change\(s\) would be made, none were/);
    expect(readdirSync(root)).toEqual([]);
  });

  it('runs from an unpacked npm tarball, which holds no node_modules but the packages the installer reads', () => {
    // npm pack of the repo (dist/ as built): the tarball of docs/install.md, for boards too small to build on
    const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    expect(packed.status, packed.stderr).toBe(0);
    const unpacked = join(work, 'tarball');
    mkdirSync(unpacked);
    const untar = spawnSync('tar', ['xzf', join(work, packed.stdout.trim().split('\n').pop()!), '-C', unpacked], { encoding: 'utf8' });
    expect(untar.status, untar.stderr).toBe(0);
    const root = freshRoot();
    // from where the tarball was unpacked, as docs/install.md runs it (the installer also looks in the working directory)
    const run = spawnSync('bash', ['package/systemd/install.sh', '--root', root, '--skip-deps', '--node', process.execPath, '--dry-run'], {
      cwd: unpacked, encoding: 'utf8', timeout: 120_000,
    });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('would write /etc/outpost/outpost.yaml');
    expect(readdirSync(root)).toEqual([]);
  });

  it('changes nothing on an installed root, for install and uninstall', () => {
    const root = freshRoot();
    installInto(root, '--board', 'rpi-3');
    const before = snapshot(root);
    const reinstall = installInto(root, '--board', 'rpi-5', '--dry-run');
    expect(reinstall.out).toContain('would update /etc/systemd/system/outpost.service.d/board.conf');
    const uninstall = installInto(root, '--uninstall', '--purge', '--dry-run');
    expect(uninstall.out).toContain('would remove /var/lib/outpost');
    expect(snapshot(root)).toEqual(before);
  });
});

describe('install.sh refuses', SLOW, () => {
  it('an unknown board, listing the known ones, before it changes anything', () => {
    const root = freshRoot();
    const run = install(['--root', root, '--skip-deps', '--node', process.execPath, '--board', 'rpi-9']);
    expect(run.status).not.toBe(0);
    expect(run.out).toContain('unknown board "rpi-9"');
    expect(run.out).toContain('rpi-zero-2w');
    // no user, no application copied (nor, without --skip-deps, its dependencies installed)
    expect(readdirSync(root)).toEqual([]);
  });

  it('a Node.js older than 20, saying how to get a newer one', () => {
    const fake = join(work, 'old-node');
    writeFileSync(fake, '#!/bin/sh\necho 18.19.0\n');
    chmodSync(fake, 0o755);
    const run = install(['--root', freshRoot(), '--skip-deps', '--node', fake]);
    expect(run.status).not.toBe(0);
    expect(run.out).toContain('Node.js 18.19.0');
    expect(run.out).toMatch(/needs 20 or newer/);
    expect(run.out).toContain('NodeSource');
  });

  it('a missing node', () => {
    const run = install(['--root', freshRoot(), '--skip-deps', '--node', join(work, 'no-such-node')]);
    expect(run.status).not.toBe(0);
    expect(run.out).toContain('Node.js 20 or newer is required');
  });

  it('an unsupported architecture, bad flags and --purge alone', () => {
    const arch = install(['--root', freshRoot(), '--skip-deps', '--node', process.execPath, '--arch', 'mips']);
    expect(arch.status).not.toBe(0);
    expect(arch.out).toContain('unsupported architecture mips');
    const flag = install(['--frobnicate']);
    expect(flag.status).not.toBe(0);
    expect(flag.out).toContain('unknown option --frobnicate');
    const purge = install(['--purge', '--dry-run']);
    expect(purge.status).not.toBe(0);
    expect(purge.out).toContain('--purge only goes with --uninstall');
    const prefix = install(['--root', freshRoot(), '--prefix', '/usr', '--dry-run']);
    expect(prefix.status).not.toBe(0);
    expect(prefix.out).toContain('system directory');
  });

  it('--help documents every flag', () => {
    const run = install(['--help']);
    expect(run.status).toBe(0);
    for (const flag of ['--board', '--root', '--prefix', '--dry-run', '--uninstall', '--purge', '--no-start', '--skip-deps',
      '--arch', '--node', '--build']) {
      expect(run.out).toContain(flag);
    }
  });
});
