import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(() => validateConfig({ cloud: { mqtt: { maxInFlight: 70000 } } }, 'test')).toThrow(/cloud\.mqtt\.maxInFlight: expected a message count 1-60000, got 70000/);
    expect(() => validateConfig({ cloud: { s3: { concurrency: 0 } } }, 'test')).toThrow(/cloud\.s3\.concurrency: expected an upload count 1-32, got 0/);
    expect(() => validateConfig({ cloud: { s3: { concurrency: 2.5 } } }, 'test')).toThrow(/cloud\.s3\.concurrency: expected an upload count 1-32/);
    expect(() => validateConfig({ sync: { objects: [{ name: 'photos', from: 'camera' }] } }, 'test'))
      .toThrow(/sync\.objects\.0\.to: expected a cloud bucket\[\/prefix\] here or in cloud\.s3\.bucket/);
    expect(() => validateConfig({ cloud: { s3: { bucket: 'fleet' } }, sync: { objects: [{ name: 'photos', from: 'camera' }] } }, 'test')).not.toThrow();
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

  it('reports invalid YAML', () => {
    const result = runWithConfig('mqtt: [\n', '--print-config');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/invalid YAML/);
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
