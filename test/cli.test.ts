import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { OUTPOST, ROOT, TestDaemon } from './helpers/daemon.js';
import { SYSTEMD_SOCKET } from '../src/cli/admin-client.js';
import { addKey, s3Client } from './helpers/objects.js';
import { template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { adminRequest, connectClient, outpost, runOutpost } from './helpers/mqtt.js';

const TOKEN = 'cli-test-token-0123456789';

describe('outpost admin CLI', () => {
  let daemon: TestDaemon;
  let scratch: string;
  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { admin: { tcp: { enabled: true, host: '127.0.0.1', port: 0, token: TOKEN } } } });
    scratch = mkdtempSync(join(tmpdir(), 'outpost-cli-'));
  });
  afterAll(async () => {
    await daemon.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('shows status with services, listeners and their chosen ports', async () => {
    const table = await outpost(daemon.socket, ['status']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/outpostd \d+\.\d+\.\d+ \(pid \d+\) running/);
    expect(table.stdout).toContain(`127.0.0.1:${daemon.port('mqtt')}`);
    expect(table.stdout).toMatch(/broker\s+ok/);
    // each service's figures, as --json has them (the counters README and docs/functions.md point to)
    expect(table.stdout).toMatch(/functions\s+ok\s+functions \d+; droppedEvents 0; throttledEvents 0; deadLetters 0/);
    // a group of counts is shown whole once one of them is not zero: no environment warm yet reads `warm 0`
    expect(table.stdout).toMatch(/environments: warm 0, max \d+, unreserved \d+/);
    expect(table.stdout).toMatch(/sync\s+ok\s+online (true|false); outboxItems 0/);
    const json = JSON.parse((await outpost(daemon.socket, ['status', '--json'])).stdout);
    expect(json.listeners.find((l: any) => l.name === 'http').port).toBe(daemon.port('http'));
    expect(json.rssBytes).toBeGreaterThan(0);
    expect(json.dbSizeBytes).toBeGreaterThan(0);
    // the space left where the store is: what an unattended gateway runs out of
    expect(json.dataDirFreeBytes).toBeGreaterThan(0);
    expect(table.stdout).toMatch(/^database: +[\d.]+ \S+ in \S+ \([\d.]+ \S+ free\)$/m);
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
    const notUtf8 = await outpost(daemon.socket, ['things', 'add', 'binary', '--password-stdin'], Buffer.from([0x70, 0xff, 0x77]));
    expect(notUtf8).toMatchObject({ code: 1, stderr: 'outpost: the password on standard input is not valid UTF-8\n' });
    expect((await outpost(daemon.socket, ['things', 'show', 'binary'])).stderr).toBe('outpost: no such thing: binary\n');

    const policy = await outpost(daemon.socket, ['things', 'policy', 'pump-7', '--publish', 'pumps/${thing}/#']);
    expect(policy.code).toBe(0);
    expect(policy.stdout).toContain('publish:    pumps/${thing}/#');
    expect(policy.stdout).toContain('subscribe:  things/${thing}/#');
    const invalid = await outpost(daemon.socket, ['things', 'policy', 'pump-7', '--publish', 'a/#/b']);
    expect(invalid.stderr).toBe('outpost: invalid policy: publish.0: expected an MQTT topic filter: not empty, + and # only as whole levels, # only last, got "a/#/b"\n');
    // a * that does not end its pattern would match only itself: refused, the policy unchanged
    const innerStar = await outpost(daemon.socket, ['things', 'policy', 'pump-7', '--client-id', 'pump-*-east']);
    expect(innerStar).toMatchObject({ code: 1, stderr: expect.stringContaining('client id pattern "pump-*-east" has a * before its end') });
    expect((await outpost(daemon.socket, ['things', 'show', 'pump-7'])).stdout).toContain('pumps/${thing}/#');
    expect((await outpost(daemon.socket, ['things', 'show', 'pump-7'])).stdout).not.toContain('pump-*-east');
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
  }, 60_000); // thirteen CLI processes, each a Node start: 9-18 s alone, near 30 s on a loaded machine

  it('keeps the admin socket to its owner and group (mode 0660)', () => {
    expect(statSync(daemon.socket).mode & 0o777).toBe(0o660);
  });

  it('takes an empty $OUTPOST_SOCKET as unset, and refuses --socket ""', { skip: existsSync(SYSTEMD_SOCKET) }, async () => {
    // ./data/admin.sock, the socket of `npm start` in a checkout, is where the CLI looks without one
    const checkout = mkdtempSync(join(scratch, 'checkout-'));
    mkdirSync(join(checkout, 'data'));
    symlinkSync(daemon.socket, join(checkout, 'data', 'admin.sock'));
    const run = spawnSync(process.execPath, [OUTPOST, 'status'], { cwd: checkout, env: { ...process.env, OUTPOST_SOCKET: '', OUTPOST_URL: '' }, encoding: 'utf8', timeout: 30_000 });
    expect({ code: run.status, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/outpostd \d+\.\d+\.\d+ \(pid \d+\) running/);
    const empty = await outpost(daemon.socket, ['--socket', '', 'status']);
    expect(empty).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining("error: option '--socket <path>' argument '' is invalid. it cannot be empty") });
  });

  it('says clearly when the daemon is unreachable', async () => {
    const result = await outpost('/tmp/outpost-nonexistent.sock', ['status']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('outpost: cannot reach outpostd at /tmp/outpost-nonexistent.sock: is outpostd running?\n');
  });

  it('says where to look when the socket it took by default has no daemon', { skip: existsSync(SYSTEMD_SOCKET) }, () => {
    const cwd = mkdtempSync(join(scratch, 'no-daemon-'));
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [OUTPOST, 'status'], { cwd, env: { ...process.env, OUTPOST_URL: '', ...env }, encoding: 'utf8', timeout: 30_000 });
    expect(run({ OUTPOST_SOCKET: SYSTEMD_SOCKET }).stderr).toBe(`outpost: cannot reach outpostd at ${SYSTEMD_SOCKET}: is outpostd running? (systemctl status outpost)\n`);
    // no socket given, on a machine without the service: ./data/admin.sock, which `npm start` makes
    expect(run({ OUTPOST_SOCKET: '' }).stderr).toBe('outpost: cannot reach outpostd at data/admin.sock: is outpostd running? '
      + "(no socket given, so npm start's in this directory; --socket PATH or $OUTPOST_SOCKET names another)\n");
  });

  const joinAdvice = (group: string) => group === 'root'
    // root's group is no group to join: admin.group names the operators'
    ? "the admin socket is only for its owner and group root; run outpost with sudo, or give the daemon an operators' group (admin.group)"
    : `the admin socket is only for its owner and group ${group}; add yourself to the group (sudo usermod -aG ${group} "$USER", then log in again), or run outpost with sudo`;

  // root can open any socket: the refusal is seen as another user (nobody), which setpriv becomes
  it('says which group the admin socket is for, and how to join it, when it refuses the user', { skip: process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0 }, () => {
    // the daemon's data directory (0700 here, as /run/outpost is 0750) hides the socket: its group is the one to join
    // (here `daemon`'s, gid 1, as the installer makes it outpost's rather than root's)
    chownSync(dirname(daemon.socket), 0, 1);
    const gid = statSync(dirname(daemon.socket)).gid;
    const group = spawnSync('getent', ['group', String(gid)], { encoding: 'utf8' }).stdout.split(':')[0] || String(gid);
    expect(group).not.toBe('root');
    const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, OUTPOST, '--socket', daemon.socket, 'status'], { encoding: 'utf8', timeout: 30_000 });
    expect({ code: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 1, stdout: '', stderr: `outpost: cannot reach outpostd at ${daemon.socket}: permission denied: `
      + `${joinAdvice(group)}\n` });
  });

  // /run/outpost made in a mount namespace of the test's own (a tmpfs on /run), as systemd makes it: nothing outside sees it
  it('takes the systemd socket its directory hides from the user, and says which group it is for', {
    skip: process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0 || spawnSync('unshare', ['--version']).status !== 0,
  }, () => {
    const cwd = mkdtempSync(join(scratch, 'hidden-'));
    chmodSync(cwd, 0o755);
    const group = spawnSync('getent', ['group', '0'], { encoding: 'utf8' }).stdout.split(':')[0] || '0';
    const script = 'mount -t tmpfs tmpfs /run && mkdir -m 0750 /run/outpost && touch /run/outpost/admin.sock'
      + ' && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"';
    const run = spawnSync('unshare', ['--mount', 'sh', '-c', script, 'sh', process.execPath, OUTPOST, 'status'],
      { cwd, env: { ...process.env, OUTPOST_SOCKET: '', OUTPOST_URL: '' }, encoding: 'utf8', timeout: 30_000 });
    // not seen, the socket was taken for absent, and ./data/admin.sock tried instead: "is outpostd running?"
    expect({ code: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 1, stdout: '', stderr: `outpost: cannot reach outpostd at ${SYSTEMD_SOCKET}: permission denied: `
      + `${joinAdvice(group)}\n` });
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
    // a deleted shadow's version is kept 48 hours (shadows-purge), not for good
    const shadowDelete = spawnSync(process.execPath, [OUTPOST, 'shadow', 'delete', '--help'], { encoding: 'utf8' }).stdout;
    expect(shadowDelete.replace(/\s+/g, ' ')).toContain('delete a shadow (re-created within 48 hours, it continues its version; later it starts again at 1)');
  });

  it('has every command and option of the README\'s "Admin CLI" summary', { timeout: 60_000 }, async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /## Admin CLI\n+```\n([\s\S]*?)```/.exec(readme)![1].split('\n').slice(1).filter(Boolean);
    // `things add NAME [--cert FILE]`, `shadow get|update|delete|ls`, `dlq ls [FN] | replay ID|--all [FN]`: each command of a line, and its options
    const lines = block.map((line) => line.trim().split(/\s{2,}/)[0]);
    const commands = lines.flatMap((line) => {
      const [group, ...rest] = line.split(' ');
      const nested = group === 's3' ? `s3 ${rest.shift()}` : group;
      const named = rest.join(' ').split(/\s*\|\s*/).map((part) => part.split(' ')[0]).flatMap((word) => word.split('|')).filter((word) => /^[a-z]+$/.test(word));
      return named.length ? named.map((word) => `${nested} ${word}`) : [nested];
    });
    const helps = await Promise.all([...new Set(commands)].map(async (command) => ({ command, ...(await runOutpost([...command.split(' '), '--help'])) })));
    // `outpost nosuch --help` prints the top-level help: a command is there when its own help is
    expect(helps.filter((help) => help.code !== 0 || !help.stdout.startsWith(`Usage: outpost ${help.command} `)).map((help) => help.command)).toEqual([]);
    const options = [...new Set(block.join(' ').match(/--[a-z-]+|(?<=\[)-[a-z]\b/g))];
    const everyHelp = helps.map((help) => help.stdout).join('\n');
    expect(options.filter((option) => !new RegExp(`(^|[ ,])${option}[ ,\\n]`).test(everyHelp))).toEqual([]);
  });

  it('uploads standard input of any size, spooled to a file it removes ($TMPDIR)', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'piped'])).code).toBe(0);
    const spool = mkdtempSync(join(scratch, 'tmpdir-'));
    const hello = await runOutpost(['--socket', daemon.socket, 'objects', 'put', '-', 'piped/hello'], { stdin: 'hello\n', env: { TMPDIR: spool } });
    expect(hello.stderr).toBe('');
    expect(hello.code).toBe(0);
    expect((await outpost(daemon.socket, ['objects', 'get', 'piped/hello', '-'])).stdout).toBe('hello\n');
    const large = randomBytes(3 * 1024 * 1024);
    const put = await runOutpost(['--socket', daemon.socket, 'objects', 'put', '-', 's3://piped/large.bin'], { stdin: large, env: { TMPDIR: spool } });
    expect(put.code).toBe(0);
    expect(readdirSync(spool)).toEqual([]);
    const file = join(scratch, 'large.bin');
    expect((await outpost(daemon.socket, ['objects', 'get', 'piped/large.bin', file])).code).toBe(0);
    expect(readFileSync(file).equals(large)).toBe(true);
    // stdin has no file name for a key ending in "/" to take: refused, nothing stored
    const folder = await runOutpost(['--socket', daemon.socket, 'objects', 'put', '-', 's3://piped/dir/'], { stdin: 'hello\n', env: { TMPDIR: spool } });
    expect(folder).toMatchObject({ code: 2, stderr: 'outpost: give a KEY (not ending in "/") when reading stdin\n(add --help for usage)\n' });
    const listed = await outpost(daemon.socket, ['--json', 'objects', 'ls', 'piped']);
    expect(JSON.parse(listed.stdout).objects.map((object: { key: string }) => object.key)).toEqual(['hello', 'large.bin']);
  });

  it('downloads into directories it makes, as aws s3 cp does', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'nested'])).code).toBe(0);
    const source = join(scratch, 'photo.jpg');
    writeFileSync(source, 'jpeg\n');
    expect((await outpost(daemon.socket, ['objects', 'put', source, 's3://nested/2026/'])).code).toBe(0);
    const dir = mkdtempSync(join(scratch, 'downloads-'));
    const intoNew = await outpost(daemon.socket, ['objects', 'get', 's3://nested/2026/photo.jpg', join(dir, 'new') + '/']);
    expect({ code: intoNew.code, stderr: intoNew.stderr }).toEqual({ code: 0, stderr: '' });
    expect(readFileSync(join(dir, 'new', 'photo.jpg'), 'utf8')).toBe('jpeg\n');
    expect((await outpost(daemon.socket, ['objects', 'get', 'nested', '2026/photo.jpg', join(dir, 'a', 'b', 'named.jpg')])).code).toBe(0);
    expect(readFileSync(join(dir, 'a', 'b', 'named.jpg'), 'utf8')).toBe('jpeg\n');
    // a file where a directory would go: the system's error, nothing made
    writeFileSync(join(dir, 'file'), 'x');
    const blocked = await outpost(daemon.socket, ['objects', 'get', 'nested/2026/photo.jpg', join(dir, 'file', 'photo.jpg')]);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/^outpost: ENOTDIR: not a directory/);
  });

  it('uploads with the Content-Type given, else the one the key\'s extension names (as aws s3 cp)', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'typed'])).code).toBe(0);
    const source = join(scratch, 'reading.json');
    writeFileSync(source, '{"t":21.5}\n');
    expect((await outpost(daemon.socket, ['objects', 'put', source, 'typed/'])).code).toBe(0);
    expect((await outpost(daemon.socket, ['objects', 'put', '--content-type', 'text/x-reading', source, 'typed/custom'])).code).toBe(0);
    expect((await outpost(daemon.socket, ['objects', 'put', source, 'typed/no-extension'])).code).toBe(0);
    const s3 = s3Client(daemon, await addKey(daemon));
    const typeOf = async (Key: string) => (await s3.send(new HeadObjectCommand({ Bucket: 'typed', Key }))).ContentType;
    expect(await typeOf('reading.json')).toBe('application/json');
    expect(await typeOf('custom')).toBe('text/x-reading');
    expect(await typeOf('no-extension')).toBe('application/octet-stream');
    s3.destroy();
  });

  it('lists every key for an empty prefix, as a script\'s unset "$PREFIX" gives it', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'prefixed'])).code).toBe(0);
    const source = join(scratch, 'prefixed.txt');
    writeFileSync(source, 'hello\n');
    expect((await outpost(daemon.socket, ['objects', 'put', source, 'prefixed/2026/a.txt'])).code).toBe(0);
    const listed = await outpost(daemon.socket, ['--json', 'objects', 'ls', 'prefixed', '']);
    expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(listed.stdout).objects.map((object: { key: string }) => object.key)).toEqual(['2026/a.txt']);
  });

  it('gives a refused upload one line of reason, as every other refusal', async () => {
    const source = join(scratch, 'refused.txt');
    writeFileSync(source, 'hello\n');
    const fromFile = await outpost(daemon.socket, ['objects', 'put', source, 'no-such-bucket/refused.txt']);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toBe('outpost: NoSuchBucket: The specified bucket does not exist\n');
    const fromStdin = await outpost(daemon.socket, ['objects', 'put', '-', 'no-such-bucket/refused.txt'], 'hello\n');
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stderr).toBe('outpost: NoSuchBucket: The specified bucket does not exist\n');
  });

  it('replaces a local file only once a download is complete', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'replace'])).code).toBe(0);
    const content = randomBytes(1024 * 1024);
    const source = join(scratch, 'source.bin');
    writeFileSync(source, content);
    expect((await outpost(daemon.socket, ['objects', 'put', source, 'replace/blob'])).code).toBe(0);
    const dir = mkdtempSync(join(scratch, 'target-'));
    const target = join(dir, 'precious.txt');
    writeFileSync(target, 'the only copy\n');
    // a file size limit (as a full disk) makes the download fail after it started writing
    const limited = spawnSync('sh', ['-c', 'ulimit -f 128 && exec "$@"', 'sh', process.execPath, OUTPOST, '--socket', daemon.socket, 'objects', 'get', 'replace/blob', target],
      { encoding: 'utf8', timeout: 20_000 });
    expect(limited.status).toBe(1);
    expect(limited.stderr).toBe('outpost: EFBIG: file too large, write\n');
    expect(readFileSync(target, 'utf8')).toBe('the only copy\n');
    expect(readdirSync(dir)).toEqual(['precious.txt']);
    expect((await outpost(daemon.socket, ['objects', 'get', 'replace/blob', target])).code).toBe(0);
    expect(readFileSync(target).equals(content)).toBe(true);
    expect(readdirSync(dir)).toEqual(['precious.txt']);
    // a target that is no regular file is written through, not replaced: /dev/null, a symlink
    expect((await outpost(daemon.socket, ['objects', 'get', 'replace/blob', '/dev/null'])).code).toBe(0);
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true);
    const link = join(dir, 'link.bin');
    symlinkSync(target, link);
    writeFileSync(target, 'before\n');
    expect((await outpost(daemon.socket, ['objects', 'get', 'replace/blob', link])).code).toBe(0);
    expect([lstatSync(link).isSymbolicLink(), readFileSync(target).equals(content)]).toEqual([true, true]);
  });

  it('downloads into a directory given as the file, under the key\'s last segment (as aws s3 cp and cp)', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'into-dir'])).code).toBe(0);
    const source = join(scratch, 'reading.csv');
    writeFileSync(source, 't,21.5\n');
    expect((await outpost(daemon.socket, ['objects', 'put', source, 's3://into-dir/2026/reading.csv'])).code).toBe(0);
    const dir = mkdtempSync(join(scratch, 'downloads-'));
    for (const given of [dir, `${dir}/`]) {
      const got = await outpost(daemon.socket, ['objects', 'get', 's3://into-dir/2026/reading.csv', given]);
      expect({ code: got.code, stderr: got.stderr }).toEqual({ code: 0, stderr: '' });
      expect(readFileSync(join(dir, 'reading.csv'), 'utf8')).toBe('t,21.5\n');
      rmSync(join(dir, 'reading.csv'));
    }
  });

  it('ends quietly when the reader of its output goes away (| head)', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'headed'])).code).toBe(0);
    const source = join(scratch, 'headed.bin');
    writeFileSync(source, randomBytes(4 * 1024 * 1024));
    expect((await outpost(daemon.socket, ['objects', 'put', source, 'headed/big'])).code).toBe(0);
    const child = spawn(process.execPath, [OUTPOST, '--socket', daemon.socket, 'objects', 'get', 'headed/big', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    // as `head -c 10` does: read once, then close the pipe
    child.stdout.once('data', () => child.stdout.destroy());
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });

  it('prints a function\'s log as JSON with --json: a line of {"text", "offset"} per read, JSON Lines when followed', { timeout: 60_000 }, async () => {
    const pkg = writePackage({
      'template.yaml': template('Logger', { Handler: 'index.handler', Timeout: 3 }),
      'index.js': 'exports.handler = async (event) => { console.log("said", event.word); return "ok"; };\n',
    });
    let child: ReturnType<typeof spawn> | undefined;
    try {
      expect((await outpost(daemon.socket, ['deploy', pkg.dir])).code).toBe(0);
      expect((await outpost(daemon.socket, ['invoke', 'Logger', '--payload', '{"word":"first"}'])).code).toBe(0);
      const read = await outpost(daemon.socket, ['--json', 'logs', 'Logger']);
      expect(read).toMatchObject({ code: 0, stderr: '' });
      const [chunk, ...more] = read.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
      expect(more).toEqual([]);
      expect(chunk).toEqual({ text: expect.stringContaining('said first'), offset: expect.any(Number) });
      // followed: what the next invocation writes comes as lines of their own
      child = spawn(process.execPath, [OUTPOST, '--socket', daemon.socket, '--json', 'logs', 'Logger', '-f'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let followed = '';
      child.stdout!.on('data', (data) => { followed += data; });
      await eventually(() => followed.includes('said first'), 20_000);
      expect((await outpost(daemon.socket, ['invoke', 'Logger', '--payload', '{"word":"second"}'])).code).toBe(0);
      await eventually(() => followed.includes('said second'), 20_000);
      const chunks = followed.trimEnd().split('\n').map((line) => JSON.parse(line));
      expect(chunks.every((each) => typeof each.text === 'string' && typeof each.offset === 'number')).toBe(true);
      expect(chunks.map((each) => each.text).join('')).toContain('said second');
    } finally {
      child?.kill('SIGKILL');
      pkg.remove();
    }
  });

  it('takes --url http://HOST:PORT only, and says so', async () => {
    const url = `http://127.0.0.1:${daemon.port('admin-tcp')}`;
    const status = await runOutpost(['--url', url, '--token', TOKEN, 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/outpostd \d+\.\d+\.\d+ \(pid \d+\) running/);
    // https would be taken as plain HTTP, with the token in the clear; no scheme is no URL at all
    const refused = [`https://127.0.0.1:${daemon.port('admin-tcp')}`, 'ftp://127.0.0.1:21', `127.0.0.1:${daemon.port('admin-tcp')}`, 'localhost:8081'];
    const runs = await Promise.all(refused.map((given) => runOutpost(['--url', given, '--token', TOKEN, 'status'])));
    expect(runs.map((run) => ({ code: run.code, stdout: run.stdout, stderr: run.stderr }))).toEqual(refused.map((given) => ({
      code: 2, stdout: '', stderr: expect.stringContaining(`error: option '--url <url>' argument '${given}' is invalid. expected http://HOST:PORT`),
    })));
    // the HTTP or S3 port given for admin.tcp's: their answers are no admin API's, whatever their status
    for (const port of [daemon.port('http'), daemon.port('s3')]) {
      const other = await runOutpost(['--url', `http://127.0.0.1:${port}`, '--token', TOKEN, 'things', 'ls']);
      expect(other).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(new RegExp(`^outpost: http://127\\.0\\.0\\.1:${port} answered HTTP 4\\d\\d, `
        + "not as outpostd's admin API: --url takes its admin\\.tcp listener's address \\(admin-tcp in outpost status\\)\n$")) });
    }
    // a token missing or wrong: which one the daemon wants, and how to give it
    for (const token of [[], ['--token', 'wrong']]) {
      expect(await runOutpost(['--url', url, ...token, 'status'], { env: { OUTPOST_TOKEN: '' } })).toEqual({ code: 1, stdout: '',
        stderr: `outpost: missing or wrong bearer token for ${url}: give the daemon's admin.tcp.token with --token or $OUTPOST_TOKEN\n` });
    }
    const fromEnvironment = await runOutpost(['status'], { env: { OUTPOST_URL: 'localhost:8081', OUTPOST_TOKEN: TOKEN } });
    expect(fromEnvironment.code).toBe(1);
    expect(fromEnvironment.stderr).toBe('outpost: $OUTPOST_URL=localhost:8081: expected http://HOST:PORT (outpostd\'s admin.tcp listener speaks plain HTTP)\n');
  });

  it('takes --socket over $OUTPOST_URL', async () => {
    const run = await runOutpost(['--socket', daemon.socket, 'status'], { env: { OUTPOST_URL: 'http://127.0.0.1:1', OUTPOST_TOKEN: TOKEN } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const both = await runOutpost(['--socket', daemon.socket, '--url', 'http://127.0.0.1:1', 'status']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("error: option '--url <url>' cannot be used with option '--socket <path>'");
  });

  it('refuses a notification rule for --function "" rather than listing the rules', async () => {
    expect((await outpost(daemon.socket, ['buckets', 'create', 'notified'])).code).toBe(0);
    const refused = await outpost(daemon.socket, ['buckets', 'notify', 'notified', '--function', '']);
    // a usage error, as an empty argument is (README: exit status 2)
    expect(refused).toEqual({ code: 2, stdout: '', stderr: "error: option '--function <name>' argument '' is invalid. it cannot be empty\n(add --help for usage)\n" });
    expect((await outpost(daemon.socket, ['buckets', 'notify', 'notified'])).stdout).toBe('no notification rules on notified\n');
  });

  it('exits 1 when a dead letter asked for is not retried', async () => {
    const retry = await outpost(daemon.socket, ['sync', 'dlq', 'retry', '5']);
    expect(retry.stdout).toBe('retried 0\n');
    expect(retry.stderr).toBe('outpost: skipped 5: no such dead letter\n');
    expect(retry.code).toBe(1);
  });

  it('exits 2 on a wrong command line, naming the flag of a bad value', async () => {
    const cases: Array<[string[], string]> = [
      [['status', '--bogus'], "error: unknown option '--bogus'"],
      [['things', 'add'], "error: missing required argument 'name'"],
      [['sync'], 'Usage: outpost sync [options] [command]'],
      [['logs', 'fn', '-n', 'abc'], "error: option '-n, --lines <count>' argument 'abc' is invalid. expected an integer 1-10000"],
      [['sync', 'dlq', 'ls', '-n', '0'], "error: option '-n, --limit <count>' argument '0' is invalid. expected an integer 1-10000"],
      [['shadow', 'update', 'pump', '--desired', '{}', '--if-version', 'x'], "error: option '--if-version <n>' argument 'x' is invalid. expected an integer of at least 0"],
      [['sync', 'dlq', 'retry', 'x'], 'outpost: expected a dead-letter ID, or --all'],
      // options that exclude each other: either one alone would be done, the other dropped
      [['things', 'policy', 'pump', '--default', '--publish', 'a/#'], "error: option '--default' cannot be used with option '--publish <filter>'"],
      [['buckets', 'notify', 'logs', '--function', 'F', '--clear'], "error: option '--clear' cannot be used with option '--function <name>'"],
      // a rule's option given empty is still given: it listed the rules instead
      [['buckets', 'notify', 'logs', '--prefix', ''], 'outpost: give --function NAME to add a rule (or --clear)'],
      [['sync', 'dlq', 'retry', '5', '--all'], 'outpost: give a dead-letter ID or --all, not both'],
      [['functions', 'alias', 'F', 'live', '3', '--rm'], 'outpost: --rm removes the alias: give no version or --weight with it'],
      // an empty argument names nothing: sent on, `shadow ls ""` listed every shadow and `deploy ""` deployed the working directory
      [['shadow', 'ls', ''], "error: command-argument value '' is invalid for argument 'thing'. it cannot be empty"],
      [['dlq', 'ls', ''], "error: command-argument value '' is invalid for argument 'function'. it cannot be empty"],
      [['dlq', 'purge', ''], "error: command-argument value '' is invalid for argument 'function'. it cannot be empty"],
      [['dlq', 'replay', '--all', ''], "error: command-argument value '' is invalid for argument 'id-or-function'. it cannot be empty"],
      [['deploy', ''], "error: command-argument value '' is invalid for argument 'path'. it cannot be empty"],
      [['things', 'show', ''], "error: command-argument value '' is invalid for argument 'name'. it cannot be empty"],
      [['things', 'policy', 'pump-7', '--client-id', ''], "error: option '--client-id <pattern>' argument '' is invalid. it cannot be empty"],
      [['shadow', 'get', 'lamp', '--name', ''], "error: option '--name <shadow>' argument '' is invalid. it cannot be empty"],
      [['invoke', 'F', '--payload', '{bad'], 'outpost: --payload is not valid JSON: {bad'],
      [['objects', 'rm', 'logs', 'a.log', ''], "error: command-argument value '' is invalid for argument 'keys'. it cannot be empty"],
      // the S3 SDK refused these with "No value provided for input HTTP label: Bucket."
      [['objects', 'ls', 's3://'], 'outpost: no bucket in s3://: give BUCKET, BUCKET/KEY or s3://BUCKET/KEY'],
      [['objects', 'get', '/a.log'], 'outpost: no bucket in /a.log: give BUCKET, BUCKET/KEY or s3://BUCKET/KEY'],
    ];
    const runs = await Promise.all(cases.map(([args]) => outpost(daemon.socket, args)));
    expect(runs.map((run, i) => ({ args: cases[i][0], code: run.code, stderr: run.stderr })))
      .toEqual(cases.map(([args, message]) => ({ args, code: 2, stderr: expect.stringContaining(message) })));
    // the reason and a hint, not the whole help after it
    expect(runs.filter((run) => run.stderr.startsWith('outpost: ')).map((run) => run.stderr.split('\n').slice(1)))
      .toEqual(runs.filter((run) => run.stderr.startsWith('outpost: ')).map(() => ['(add --help for usage)', '']));
    const wrong = spawnSync(process.execPath, [OUTPOST, 'bogus'], { encoding: 'utf8' });
    expect([wrong.status, wrong.stderr]).toEqual([2, "error: unknown command 'bogus'\n(Did you mean logs?)\n(add --help for usage)\n"]);
    const help = spawnSync(process.execPath, [OUTPOST, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Exit status:\n {2}0 +done\n {2}1 +refused by the daemon.*\n +dead letters not retried or replayed, profiles invalid \(devices check\)\n {2}2 +wrong command line/);
  });
});
