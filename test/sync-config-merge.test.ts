import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { combinePatches, merge3, patch, patchLeaves, planSync } from '../src/sync/shadow-merge.js';

describe('sync configuration', () => {
  it('accepts a full cloud and sync section and fills the defaults', () => {
    const config = validateConfig({
      cloud: { mqtt: { url: 'mqtts://example.iot.eu-west-1.amazonaws.com:8883', clientId: 'gw1' }, s3: { bucket: 'fleet', forcePathStyle: true } },
      sync: { outbound: [{ name: 'telemetry', from: 'sensors/#', to: 'gw1/${topic}' }], inbound: [{ name: 'cmd', from: 'cmd/#' }], shadows: [{ thing: 'pump' }] },
    }, 'test');
    expect(config.cloud.mqtt).toMatchObject({ keepalive: 30, protocolVersion: 4, reconnectMinMs: 1000, reconnectMaxMs: 60000, maxInFlight: 256 });
    expect(config.cloud.s3).toMatchObject({ region: 'us-east-1', prefix: '', forcePathStyle: true });
    expect(config.sync).toMatchObject({ maxBytes: 64 * 1024 * 1024, maxAgeSeconds: 0, drainRate: 5000 });
    expect(config.sync.outbound[0]).toEqual({ name: 'telemetry', from: 'sensors/#', to: 'gw1/${topic}', qos: 1, priority: 5, ttlSeconds: 0, overflow: 'drop-oldest', liveFirst: true, id: 'envelope' });
    expect(config.sync.inbound[0]).toEqual({ name: 'cmd', from: 'cmd/#', to: '${topic}', qos: 1 });
    expect(config.sync.shadows[0]).toEqual({ thing: 'pump', direction: 'both' });
  });

  it('names the key and what was expected for bad values', () => {
    expect(() => validateConfig({ cloud: { mqtt: { url: 'http://x' } } }, 'test')).toThrow(/cloud\.mqtt\.url: expected an mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/ URL/);
    expect(() => validateConfig({ cloud: { mqtt: { url: 'mqtt://host:port' } } }, 'test')).toThrow(/cloud\.mqtt\.url: expected/);
    expect(() => validateConfig({ cloud: { mqtt: { cert: '/c.pem' } } }, 'test')).toThrow(/cloud\.mqtt: expected both "cert" and "key" or neither/);
    expect(() => validateConfig({ sync: { outbound: [{ name: 'a', from: 'a/#/b' }] } }, 'test')).toThrow(/sync\.outbound\.0\.from: expected a valid MQTT topic filter/);
    expect(() => validateConfig({ sync: { outbound: [{ name: 'a', from: 'a', overflow: 'drop-newest' }] } }, 'test')).toThrow(/overflow: expected "drop-oldest", "reject-new" or "drop-lowest-priority"/);
    expect(() => validateConfig({ sync: { outbound: [{ name: 'a', from: 'a', priority: 10 }] } }, 'test')).toThrow(/priority: expected a priority 0-9/);
    expect(() => validateConfig({ sync: { outbound: [{ name: 'a', from: 'a' }, { name: 'a', from: 'b' }] } }, 'test')).toThrow(/expected unique rule names across outbound and objects/);
    expect(() => validateConfig({ sync: { shadows: [{ thing: 'pump', direction: 'up' }] } }, 'test')).toThrow(/direction: expected "both", "device-to-cloud" or "cloud-to-device"/);
    expect(() => validateConfig({ sync: { bogus: 1 } }, 'test')).toThrow(/sync\.bogus: unknown key/);
    expect(() => validateConfig({ sync: { inbound: [{ name: 'i', from: 'a/#', to: 'b/#' }] } }, 'test')).toThrow(/sync\.inbound\.0\.to: expected a topic template without/);
  });

  it('takes the shadow names AWS IoT takes, and no longer ones', () => {
    const shadows = [{ thing: 'pump', name: '$package' }, { thing: 'pump', name: 'n'.repeat(64) }];
    expect(validateConfig({ sync: { shadows } }, 'test').sync.shadows.map((rule) => rule.name)).toEqual(['$package', 'n'.repeat(64)]);
    expect(() => validateConfig({ sync: { shadows: [{ thing: 'pump', name: 'n'.repeat(65) }] } }, 'test')).toThrow(/sync\.shadows\.0\.name: expected a shadow name of 1-64/);
    expect(() => validateConfig({ sync: { shadows: [{ thing: '$pump' }] } }, 'test')).toThrow(/sync\.shadows\.0\.thing: expected a thing name of 1-128/);
  });

  it('refuses a shadow listed twice, which would sync with one of the two directions only', () => {
    expect(() => validateConfig({ sync: { shadows: [{ thing: 'pump' }, { thing: 'pump', direction: 'cloud-to-device' }] } }, 'test'))
      .toThrow(/sync\.shadows: expected each shadow once \(thing and name\); pump is listed twice/);
    expect(() => validateConfig({ sync: { shadows: [{ thing: 'pump', name: 'config' }, { thing: 'pump', name: 'config' }] } }, 'test'))
      .toThrow(/sync\.shadows: expected each shadow once \(thing and name\); pump\/config is listed twice/);
    expect(validateConfig({ sync: { shadows: [{ thing: 'pump' }, { thing: 'pump', name: 'config' }, { thing: 'fan' }] } }, 'test').sync.shadows).toHaveLength(3);
  });

  it('refuses a cloud S3 endpoint that is no usable URL instead of failing every upload later', () => {
    for (const endpoint of ['http://', 'https://exa mple.net', 'https://minio.example.net/s3']) {
      expect(() => validateConfig({ cloud: { s3: { endpoint } } }, 'test'), endpoint).toThrow(/cloud\.s3\.endpoint: expected an http:\/\/ or https:\/\/ URL/);
    }
    expect(validateConfig({ cloud: { s3: { endpoint: 'https://minio.example.net:9000/' } } }, 'test').cloud.s3.endpoint).toBe('https://minio.example.net:9000/');
  });

  it('refuses a default cloud bucket that is no S3 bucket name, as it does a rule\'s', () => {
    for (const bucket of ['My_Bucket', 'ab', 'fleet/gw-1']) {
      expect(() => validateConfig({ cloud: { s3: { bucket } } }, 'test'), bucket).toThrow(/cloud\.s3\.bucket: expected a bucket name/);
    }
    expect(validateConfig({ cloud: { s3: { bucket: 'fleet.data-1' } } }, 'test').cloud.s3.bucket).toBe('fleet.data-1');
  });
});

describe('shadow three-way merge', () => {
  it('takes each side’s own changes and lets the winner decide conflicts, key by key and nested', () => {
    const base = { a: 1, b: 1, n: { x: 1, y: 1 } };
    const local = { a: 2, b: 1, n: { x: 2, y: 1 }, l: true };
    const cloud = { a: 3, b: 5, n: { x: 1, y: 3 } };
    expect(merge3(base, local, cloud, 'local')).toEqual({ a: 2, b: 5, n: { x: 2, y: 3 }, l: true });
    expect(merge3(base, local, cloud, 'cloud')).toEqual({ a: 3, b: 5, n: { x: 2, y: 3 }, l: true });
    // A key removed on one side and unchanged on the other is removed.
    expect(merge3({ a: 1, b: 2 }, { a: 1 }, { a: 1, b: 2 }, 'cloud')).toEqual({ a: 1 });
  });

  it('patches only what differs, with null for removed keys', () => {
    expect(patch({ a: 1, b: { c: 1, d: 2 } }, { a: 1, b: { c: 2 }, e: [1] })).toEqual({ b: { c: 2, d: null }, e: [1] });
    expect(patch({ a: 1 }, { a: 1 })).toBeUndefined();
  });

  it('plans the writes per direction', () => {
    const base = { desired: { speed: 5 }, reported: { temp: 20 } };
    const local = { desired: { speed: 7 }, reported: { temp: 21 } };
    const cloud = { desired: { speed: 9 }, reported: { temp: 99 } };
    expect(planSync(base, local, cloud, 'both')).toEqual({
      base: { desired: { speed: 9 }, reported: { temp: 21 } },
      cloud: { reported: { temp: 21 } },
      local: { desired: { speed: 9 } },
    });
    expect(planSync(base, local, cloud, 'device-to-cloud')).toEqual({ base: local, cloud: { desired: { speed: 7 }, reported: { temp: 21 } } });
    // a deleted shadow gets the source side's whole state, unchanged since the last sync as it is
    expect(planSync(local, local, {}, 'device-to-cloud')).toEqual({ base: local, cloud: local });
    expect(planSync(cloud, {}, cloud, 'cloud-to-device')).toEqual({ base: cloud, local: cloud });
    expect(planSync(base, local, cloud, 'cloud-to-device')).toEqual({ base: cloud, local: { desired: { speed: 9 }, reported: { temp: 99 } } });
    expect(planSync({}, {}, { desired: { on: true } }, 'both')).toEqual({ base: { desired: { on: true } }, cloud: undefined, local: { desired: { on: true } } });
  });

  it('splits an update into single keys that combine back into it', () => {
    const update = JSON.parse('{"desired":null,"reported":{"a":{"b":1,"c":[1,2],"d":{}},"e":null,"__proto__":{"x":true}}}');
    const leaves = patchLeaves(update);
    expect(leaves).toEqual([
      { desired: null },
      { reported: { a: { b: 1 } } }, { reported: { a: { c: [1, 2] } } }, { reported: { a: { d: {} } } },
      { reported: { e: null } }, JSON.parse('{"reported":{"__proto__":{"x":true}}}'),
    ]);
    expect(leaves.reduce(combinePatches, {})).toEqual(update);
    expect(Object.getPrototypeOf(leaves[5].reported)).toBe(Object.prototype);
  });
});
