import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { OUTPOSTD } from './helpers/daemon.js';
import { validateConfig } from '../src/config/load.js';

function runWithConfig(yaml: string, ...extra: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-config-'));
  const file = join(dir, 'outpost.yaml');
  writeFileSync(file, yaml);
  try {
    return spawnSync(process.execPath, [OUTPOSTD, '--config', file, '--data-dir', dir, ...extra], { encoding: 'utf8', timeout: 10_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('configuration', () => {
  it('names the key, what was expected and what was given for a bad value', () => {
    const result = runWithConfig('mqtt:\n  port: abc\n', '--print-config');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('mqtt.port: expected integer 0-65535, got "abc"');
  });

  it('prints the paths in the data directory that are not set as the daemon takes them (--print-config)', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'outpost-config-'));
    try {
      const printed = spawnSync(process.execPath, [OUTPOSTD, '--data-dir', dataDir, '--print-config'], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, OUTPOST_CONFIG: '' } });
      expect(printed.status).toBe(0);
      expect(printed.stdout).toMatch(new RegExp(`^admin:\\n(?:  .*\\n)*  socket: ${join(dataDir, 'admin.sock')}\\n`, 'm'));
      expect(printed.stdout).toMatch(new RegExp(`^s3:\\n(?:  .*\\n)*  shareRoot: ${join(dataDir, 'share')}\\n`, 'm'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('prints the secrets of the configuration as <redacted> (--print-config output goes into tickets)', () => {
    const result = runWithConfig([
      'admin:', '  tcp: { enabled: true, port: 0, token: supersecrettoken12345 }',
      'cloud:', '  mqtt: { url: "mqtts://127.0.0.1:8883", username: gw, password: cloud-password-1 }',
      '  s3: { endpoint: "http://127.0.0.1:9", bucket: gateway-uploads, accessKeyId: AKIAEXAMPLE, secretAccessKey: cloud-secret-key-1 }',
    ].join('\n') + '\n', '--print-config');
    expect(result.status, result.stderr).toBe(0);
    for (const secret of ['supersecrettoken12345', 'cloud-password-1', 'cloud-secret-key-1']) expect(result.stdout).not.toContain(secret);
    expect(result.stdout.match(/<redacted>/g)).toHaveLength(3);
    expect(result.stdout).toContain('accessKeyId: AKIAEXAMPLE');
  });

  it('refuses unknown keys with their path', () => {
    const result = runWithConfig('mqtt:\n  prot: 1883\nbogus: 1\n', '--print-config');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('mqtt.prot: unknown key');
    expect(result.stderr).toContain('bogus: unknown key');
  });

  it('refuses out-of-range values and wrong types', () => {
    expect(() => validateConfig({ mqtt: { port: 70000 } }, 'test')).toThrow(/mqtt\.port: expected integer 0-65535, got 70000/);
    expect(() => validateConfig({ mqtt: { allowAnonymous: 'yes' } }, 'test')).toThrow(/mqtt\.allowAnonymous: expected true or false, got "yes"/);
    expect(() => validateConfig({ log: { level: 'loud' } }, 'test')).toThrow(/log\.level: expected one of/);
    expect(() => validateConfig({ mqtt: { tls: { enabled: true } } }, 'test')).toThrow(/mqtt\.tls: expected "cert" and "key"/);
    expect(() => validateConfig({ functions: { anything: 1 } }, 'test')).toThrow(/functions\.anything: unknown key/);
    // values the services could not run with: MQTT's 16-bit keep-alive and packet ids, an object rule without a cloud bucket
    expect(() => validateConfig({ cloud: { mqtt: { keepalive: 70000 } } }, 'test')).toThrow(/cloud\.mqtt\.keepalive: expected seconds 1-65535, got 70000/);
    // durations a timer waits: Node's timers fire after 1 ms, over and over, past 2^31-1 ms
    expect(() => validateConfig({ s3: { lifecycleIntervalSeconds: 2592000 } }, 'test')).toThrow(/s3\.lifecycleIntervalSeconds: expected seconds 1-2147483 \(about 24 days\), got 2592000/);
    expect(() => validateConfig({ mqtt: { connectTimeout: 2592000 } }, 'test')).toThrow(/mqtt\.connectTimeout: expected seconds 1-2147483/);
    expect(() => validateConfig({ functions: { retryDelaysSeconds: [60, 3000000] } }, 'test')).toThrow(/functions\.retryDelaysSeconds\.1: expected seconds 1-2147483/);
    expect(() => validateConfig({ s3: { share: { fullScanIntervalMs: 2 ** 31 } } }, 'test')).toThrow(/s3\.share\.fullScanIntervalMs: expected milliseconds 1-2147483647/);
    expect(() => validateConfig({ cloud: { mqtt: { maxInFlight: 70000 } } }, 'test')).toThrow(/cloud\.mqtt\.maxInFlight: expected a message count 1-60000, got 70000/);
    // a large body's write buffers are cut from 1 MiB slabs
    expect(() => validateConfig({ s3: { writeBufferBytes: 300000 } }, 'test')).toThrow(/s3\.writeBufferBytes: expected 65536, 131072, 262144, 524288 or 1048576 \(bytes\), got 300000/);
    expect(() => validateConfig({ s3: { writeBufferBytes: 2097152 } }, 'test')).toThrow(/s3\.writeBufferBytes: expected 65536/);
    expect(validateConfig({ s3: { writeBufferBytes: 1048576 } }, 'test').s3.writeBufferBytes).toBe(1048576);
    // relative paths are the working directory's, and shown so (--print-config, outpost status)
    expect(validateConfig({ s3: { shareRoot: 'share' }, admin: { socket: './run/admin.sock' } }, 'test')).toMatchObject({ s3: { shareRoot: join(process.cwd(), 'share') }, admin: { socket: join(process.cwd(), 'run', 'admin.sock') } });
    // two listeners on one port are refused before the start, which would blame "another program"
    expect(() => validateConfig({ http: { port: 1883 } }, 'test')).toThrow(/http\.port: expected a port no other listener has \(mqtt\.port has it\), got 1883/);
    expect(() => validateConfig({ mqtt: { host: '127.0.0.1', ws: { enabled: true, host: '0.0.0.0', port: 9000 } }, s3: { host: '127.0.0.1' } }, 'test')).toThrow(/s3\.port: expected a port no other listener has \(mqtt\.ws\.port has it\)$/m);
    expect(validateConfig({ mqtt: { host: '127.0.0.1' }, http: { host: '127.0.0.2', port: 1883 } }, 'test').http.port).toBe(1883);
    expect(validateConfig({ mqtt: { port: 0 }, http: { port: 0 }, s3: { port: 0 } }, 'test').s3.port).toBe(0);
    expect(() => validateConfig({ cloud: { s3: { concurrency: 0 } } }, 'test')).toThrow(/cloud\.s3\.concurrency: expected an upload count 1-32, got 0/);
    expect(() => validateConfig({ cloud: { s3: { concurrency: 2.5 } } }, 'test')).toThrow(/cloud\.s3\.concurrency: expected an upload count 1-32/);
    expect(() => validateConfig({ sync: { objects: [{ name: 'photos', from: 'camera' }] } }, 'test'))
      .toThrow(/sync\.objects\.0\.to: expected a cloud bucket\[\/prefix\] here or in cloud\.s3\.bucket/);
    expect(() => validateConfig({ cloud: { s3: { bucket: 'fleet' } }, sync: { objects: [{ name: 'photos', from: 'camera' }] } }, 'test')).not.toThrow();
    // filters as `outpost things policy` takes them
    expect(() => validateConfig({ mqtt: { defaultPolicy: { publish: ['things/${thing}/#', 'a/#/b', ''] }, anonymousPolicy: { subscribe: ['x+/y'] } } }, 'test'))
      .toThrow(/mqtt\.anonymousPolicy\.subscribe\.0: expected an MQTT topic filter[^\n]*\n  mqtt\.defaultPolicy\.publish\.1: expected an MQTT topic filter: not empty, \+ and # only as whole levels, # only last, got "a\/#\/b"\n  mqtt\.defaultPolicy\.publish\.2: expected an MQTT topic filter/);
    // a section given as something else, in the loader's words; a secret not repeated
    let refusal = '';
    try {
      validateConfig({ mqtt: [1, 2], http: null, admin: { tcp: { enabled: true, token: 'short-secret' } } }, 'test');
    } catch (error) {
      refusal = (error as Error).message;
    }
    expect(refusal).toContain('  mqtt: expected a mapping of keys, got a list\n  http: expected a mapping of keys, got nothing (null)\n  admin.tcp.token: expected a token of at least 16 characters');
    expect(refusal).not.toContain('short-secret');
  });

  it('refuses an empty --config or --data-dir (a script\'s unset variable) rather than take the defaults or the working directory', () => {
    const config = spawnSync(process.execPath, [OUTPOSTD, '--config', '', '--print-config'], { encoding: 'utf8', timeout: 10_000 });
    expect({ status: config.status, stderr: config.stderr }).toEqual({ status: 2, stderr: 'outpostd: --config: expected a file path, got an empty one\n' });
    const dataDir = spawnSync(process.execPath, [OUTPOSTD, '--data-dir', '', '--print-config'], { encoding: 'utf8', timeout: 10_000 });
    expect({ status: dataDir.status, stderr: dataDir.stderr }).toEqual({ status: 2, stderr: 'outpostd: --data-dir: expected a directory, got an empty one\n' });
    // a section given a scalar: what was given, said once
    expect(runWithConfig('log: debug\n', '--print-config').stderr).toContain('  log: expected a mapping of keys, got "debug"\n');
  });

  it('takes only bare origins (or "*") in mqtt.ws.allowedOrigins, kept as a browser writes them', () => {
    for (const entry of ['https://dashboard.example/app', 'dashboard.example', 'ftp://dashboard.example', 'https://user@dashboard.example']) {
      expect(() => validateConfig({ mqtt: { ws: { allowedOrigins: [entry] } } }, 'test'))
        .toThrow(/mqtt\.ws\.allowedOrigins\.0: expected "\*" or an origin such as "https:\/\/dashboard\.example:8443" \(scheme, host and port only\)/);
    }
    expect(validateConfig({ mqtt: { ws: { allowedOrigins: ['HTTPS://Dashboard.Example:443/', 'http://10.0.0.5:8080', '*'] } } }, 'test').mqtt.ws.allowedOrigins)
      .toEqual(['https://dashboard.example', 'http://10.0.0.5:8080', '*']);
    expect(() => validateConfig({ mqtt: { persistentSessionExpiry: -1 } }, 'test')).toThrow(/mqtt\.persistentSessionExpiry: expected seconds ≥ 0, got -1/);
  });

  it('reports invalid YAML, and a config file it cannot read as such', () => {
    const result = runWithConfig('mqtt: [\n', '--print-config');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/invalid YAML/);
    const directory = spawnSync(process.execPath, [OUTPOSTD, '--config', tmpdir(), '--print-config'], { encoding: 'utf8', timeout: 10_000 });
    expect({ status: directory.status, stderr: directory.stderr }).toEqual({ status: 2, stderr: `outpostd: ${tmpdir()}: cannot read the config file: it is a directory\n` });
  });

  it('names the setting a failed start comes from', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'outpost-start-'));
    const start = (sections: object, dataDir = join(dir, 'data')) => {
      const config = { admin: { socket: join(dir, 'admin.sock') }, mqtt: { host: '127.0.0.1', port: 0 }, http: { port: 0 }, s3: { host: '127.0.0.1', port: 0 }, ...sections };
      writeFileSync(join(dir, 'outpost.yaml'), JSON.stringify(config));
      const run = spawnSync(process.execPath, [OUTPOSTD, '--config', join(dir, 'outpost.yaml'), '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000 });
      expect(run.status).toBe(1);
      return JSON.parse(run.stdout.trim().split('\n').find((line) => line.includes('failed to start'))!).msg;
    };
    try {
      expect(start({ http: { host: '127.0.0.1', port } })).toBe(`failed to start: http.port: 127.0.0.1:${port} is in use by another program (a Mosquitto, another outpostd?): choose another port`);
      // the WebSocket server re-emits its HTTP server's errors: a port taken is not an uncaught exception
      expect(start({ mqtt: { host: '127.0.0.1', port: 0, ws: { enabled: true, host: '127.0.0.1', port } } }))
        .toBe(`failed to start: mqtt.ws.port: 127.0.0.1:${port} is in use by another program (a Mosquitto, another outpostd?): choose another port`);
      writeFileSync(join(dir, 'a-file'), '');
      expect(start({}, join(dir, 'a-file'))).toBe(`failed to start: dataDir: cannot use ${join(dir, 'a-file')} as the data directory: it (or a directory above it) is a file`);
      expect(start({ mqtt: { host: '127.0.0.1', port: 0, tls: { enabled: true, host: '127.0.0.1', port: 0, cert: join(dir, 'missing.pem'), key: join(dir, 'missing.key') } } }))
        .toBe(`failed to start: mqtt.tls.cert: cannot read ${join(dir, 'missing.pem')}: no such file`);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes an empty $STATE_DIRECTORY for unset, not for the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-cwd-'));
    try {
      const printed = spawnSync(process.execPath, [OUTPOSTD, '--config', '/dev/null', '--print-config'], { cwd: dir, encoding: 'utf8', timeout: 10_000, env: { ...process.env, STATE_DIRECTORY: '' } });
      expect(printed.stdout).toContain('dataDir: /var/lib/outpost\n');
      const systemd = spawnSync(process.execPath, [OUTPOSTD, '--config', '/dev/null', '--print-config'], { cwd: dir, encoding: 'utf8', timeout: 10_000, env: { ...process.env, STATE_DIRECTORY: '/var/lib/outpost-state:/other' } });
      expect(systemd.stdout).toContain('dataDir: /var/lib/outpost-state\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the effective configuration with every default filled in', () => {
    const result = runWithConfig('mqtt:\n  port: 1999\n', '--print-config');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('port: 1999');
    expect(result.stdout).toContain('allowAnonymous: false');
    expect(result.stdout).toContain('maxPacketSize: 262144');
  });

  it('uses loopback and anonymous access on the embedded defaults (no config file)', () => {
    const out = execFileSync(process.execPath, [OUTPOSTD, '--print-config', '--data-dir', tmpdir()], {
      encoding: 'utf8', env: { ...process.env, OUTPOST_CONFIG: '' },
    });
    expect(out).toContain('embedded defaults');
    expect(out).toMatch(/mqtt:\n  host: 127\.0\.0\.1/);
    expect(out).toContain('allowAnonymous: true');
  });

  it('treats an empty config file as all defaults, with anonymous access off', () => {
    const result = runWithConfig('', '--print-config');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('allowAnonymous: false');
  });

  it('fails clearly when --config names a missing file', () => {
    const result = spawnSync(process.execPath, [OUTPOSTD, '--config', '/nonexistent/outpost.yaml'], { encoding: 'utf8', timeout: 10_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('/nonexistent/outpost.yaml does not exist');
  });
});
