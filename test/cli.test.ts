import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { OUTPOST, ROOT, TestDaemon } from './helpers/daemon.js';
import { adminRequest, connectClient, outpost } from './helpers/mqtt.js';

describe('outpost admin CLI', () => {
  let daemon: TestDaemon;
  beforeAll(async () => { daemon = await TestDaemon.start({ config: {} }); });
  afterAll(async () => { await daemon.cleanup(); });

  it('shows status with services, listeners and their chosen ports', async () => {
    const table = await outpost(daemon.socket, ['status']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/outpostd \d+\.\d+\.\d+ \(pid \d+\) running/);
    expect(table.stdout).toContain(`127.0.0.1:${daemon.port('mqtt')}`);
    expect(table.stdout).toMatch(/broker\s+ok/);
    const json = JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout);
    expect(json.listeners.find((l: any) => l.name === 'http').port).toBe(daemon.port('http'));
    expect(json.rssBytes).toBeGreaterThan(0);
    expect(json.dbSizeBytes).toBeGreaterThan(0);
  });

  it('manages things and policies', async () => {
    expect((await outpost(daemon.socket, ['things', 'add', 'pump-7', '--password-stdin'], 'pw\n')).code).toBe(0);
    const duplicate = await outpost(daemon.socket, ['things', 'add', 'pump-7', '--password-stdin'], 'pw');
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toBe('outpost: thing pump-7 already exists\n');
    // two adds of one name at once (each hashes its password meanwhile): one is added, the other refused the same way
    const racing = await Promise.all([1, 2].map(() => outpost(daemon.socket, ['things', 'add', 'racer', '--password-stdin'], 'pw')));
    expect(racing.map((run) => run.code).sort()).toEqual([0, 1]);
    expect(racing.find((run) => run.code === 1)!.stderr).toBe('outpost: thing racer already exists\n');
    expect((await outpost(daemon.socket, ['things', 'rm', 'racer'])).code).toBe(0);
    const bad = await outpost(daemon.socket, ['things', 'add', 'bad/name', '--password-stdin'], 'pw');
    expect(bad.stderr).toContain('invalid thing name');

    const policy = await outpost(daemon.socket, ['things', 'policy', 'pump-7', '--publish', 'pumps/${thing}/#']);
    expect(policy.code).toBe(0);
    expect(policy.stdout).toContain('publish:    pumps/${thing}/#');
    expect(policy.stdout).toContain('subscribe:  things/${thing}/#');
    const invalid = await outpost(daemon.socket, ['things', 'policy', 'pump-7', '--publish', 'a/#/b']);
    expect(invalid.stderr).toContain('invalid topic filter "a/#/b"');
    // two changes of different lists at the same time: both are kept
    for (let round = 1; round <= 10; round++) {
      const changes = await Promise.all([
        { subscribe: ['things/${thing}/#', `alarms/${round}/#`] },
        { clientIds: ['pump-7', `pump-7-${round}`] },
      ].map((policy) => adminRequest(daemon.socket, 'PUT', '/v1/things/pump-7/policy', JSON.stringify({ policy }))));
      expect(changes.map((answer) => answer?.status)).toEqual([200, 200]);
      expect(JSON.parse((await outpost(daemon.socket, ['things', 'ls', '--json'])).stdout).things[0].policy).toEqual({
        publish: ['pumps/${thing}/#'], subscribe: ['things/${thing}/#', `alarms/${round}/#`], clientIds: ['pump-7', `pump-7-${round}`],
      });
    }

    const listed = JSON.parse((await outpost(daemon.socket, ['things', 'ls', '--json'])).stdout);
    expect(listed.things).toMatchObject([{ name: 'pump-7', hasPassword: true, policy: { publish: ['pumps/${thing}/#'] } }]);
    expect((await outpost(daemon.socket, ['things', 'ls'])).stdout).toMatch(/pump-7\s+password\s+own/);

    const client = await connectClient(daemon.mqttUrl, { clientId: 'pump-7', username: 'pump-7', password: 'pw' });
    await client.subscribeAsync('things/pump-7/cmd');
    const clients = await outpost(daemon.socket, ['clients']);
    expect(clients.stdout).toMatch(/pump-7\s+pump-7\s+password\s+127\.0\.0\.1:\d+\s+\S+\s+clean\s+0\s+things\/pump-7\/cmd/);
    client.end(true);

    expect((await outpost(daemon.socket, ['things', 'rm', 'pump-7'])).code).toBe(0);
    const gone = await outpost(daemon.socket, ['things', 'rm', 'pump-7']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('outpost: no such thing: pump-7\n');
  });

  it('keeps the admin socket to its owner and group (mode 0660)', () => {
    expect(statSync(daemon.socket).mode & 0o777).toBe(0o660);
  });

  it('says clearly when the daemon is unreachable', async () => {
    const result = await outpost('/tmp/outpost-nonexistent.sock', ['status']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('outpost: cannot reach outpostd at /tmp/outpost-nonexistent.sock: is outpostd running?\n');
  });

  it('runs as the README runs it: `npx outpost` from the project root', () => {
    // npx executes the package's own bin file: it must be executable after `npm run build`
    const result = spawnSync('npx', ['--no-install', 'outpost', '--socket', daemon.socket, 'status'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/outpostd \d+\.\d+\.\d+ \(pid \d+\) running/);
  });

  it('documents every command in --help', () => {
    const help = spawnSync(process.execPath, [OUTPOST, '--help'], { encoding: 'utf8' }).stdout;
    for (const command of ['status', 'things', 'clients']) expect(help).toContain(command);
    const things = spawnSync(process.execPath, [OUTPOST, 'things', '--help'], { encoding: 'utf8' }).stdout;
    for (const command of ['ls', 'show', 'add', 'passwd', 'rm', 'policy']) expect(things).toContain(command);
  });
});
