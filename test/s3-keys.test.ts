import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { addThing, adminRequest, outpost } from './helpers/mqtt.js';
import { s3Client } from './helpers/objects.js';

describe('outpost s3 keys', () => {
  let daemon: TestDaemon;
  beforeAll(async () => { daemon = await TestDaemon.start({ config: {} }); });
  afterAll(async () => { await daemon.cleanup(); });

  it('creates a key with grants, shows its secret once, lists it without the secret and keeps it across a restart', async () => {
    const added = await outpost(daemon.socket, ['s3', 'keys', 'add', '--read-write', 'camera-uploads', '--read', '*', '--description', 'yard camera', '--json']);
    expect(added.code).toBe(0);
    const key = JSON.parse(added.stdout);
    expect(key.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(key.secretAccessKey).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(key.grants).toEqual([{ bucket: 'camera-uploads', permission: 'read-write' }, { bucket: '*', permission: 'read' }]);

    const table = await outpost(daemon.socket, ['s3', 'keys', 'ls']);
    expect(table.stdout).toContain(key.accessKeyId);
    expect(table.stdout).toContain('camera-uploads read-write, * read');
    expect(table.stdout).not.toContain(key.secretAccessKey);

    await daemon.stop();
    daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
    const listed = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'ls', '--json'])).stdout);
    expect(listed.keys).toEqual([{ accessKeyId: key.accessKeyId, grants: key.grants, description: 'yard camera', createdAt: key.createdAt }]);
    expect(JSON.stringify(listed)).not.toContain(key.secretAccessKey);
  });

  it('keeps the database holding the secrets private to the daemon user', () => {
    expect(statSync(join(daemon.dataDir, 'outpost.db')).mode & 0o777).toBe(0o600);
  });

  it('refuses keys without grants or with invalid ones, and removes keys', async () => {
    const none = await outpost(daemon.socket, ['s3', 'keys', 'add']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give at least one --read BUCKET, --read-write BUCKET ("*" for every bucket) or --thing NAME');
    const wordy = await outpost(daemon.socket, ['s3', 'keys', 'add', '--read', '*', '--description', 'd'.repeat(1001)]);
    expect(wordy).toEqual({ code: 1, stdout: '', stderr: 'outpost: description: at most 1000 characters\n' });
    const invalid = await outpost(daemon.socket, ['s3', 'keys', 'add', '--read', 'Not_A_Bucket']);
    expect(invalid.stderr).toBe('outpost: grants[0].bucket: expected a bucket name or "*"\n');

    const badThing = await outpost(daemon.socket, ['s3', 'keys', 'add', '--thing', 'a/b']);
    expect(badThing.stderr).toBe('outpost: thing: expected a thing name (1-128 characters of a-z A-Z 0-9 : _ -)\n');
    // a key for a name nobody registered would serve whichever thing is added under it later
    expect(await outpost(daemon.socket, ['s3', 'keys', 'add', '--thing', 'pump-7'])).toEqual({ code: 1, stdout: '', stderr: 'outpost: no such thing: pump-7\n' });
    expect((await outpost(daemon.socket, ['s3', 'keys', 'ls'])).stdout).not.toContain('pump-7');
    await addThing(daemon.socket, 'pump-7', 'pw');
    const forThing = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', '--thing', 'pump-7', '--json'])).stdout);
    expect(forThing).toMatchObject({ thing: 'pump-7', grants: [] });
    expect((await outpost(daemon.socket, ['s3', 'keys', 'ls'])).stdout).toContain('IoT data plane as thing pump-7');

    const key = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', '--read', 'logs', '--json'])).stdout);
    expect((await outpost(daemon.socket, ['s3', 'keys', 'rm', key.accessKeyId])).stdout).toBe(`deleted access key ${key.accessKeyId}\n`);
    const again = await outpost(daemon.socket, ['s3', 'keys', 'rm', key.accessKeyId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`outpost: no such access key: ${key.accessKeyId}\n`);
    // two removals at once: one removes it, the other finds none
    const raced = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', '--read', 'logs', '--json'])).stdout);
    const removals = await Promise.all([1, 2].map(() => adminRequest(daemon.socket, 'DELETE', `/v1/s3/keys/${raced.accessKeyId}`)));
    expect(removals.map((answer) => answer?.status).sort()).toEqual([200, 404]);
  });

  it('deletes the keys bound to a thing with the thing: they no longer sign anything, and a new thing of that name gets none', async () => {
    await addThing(daemon.socket, 'valve-3', 'pw');
    const bound = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', '--thing', 'valve-3', '--read', '*', '--json'])).stdout);
    const other = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'add', '--read', '*', '--json'])).stdout);
    const listing = (key: { accessKeyId: string; secretAccessKey: string }) => s3Client(daemon, key).send(new ListObjectsV2Command({ Bucket: 'no-such-bucket' })).catch((error: Error) => error.name);
    expect(await listing(bound)).toBe('NoSuchBucket');

    const removed = await outpost(daemon.socket, ['things', 'rm', 'valve-3']);
    expect(removed.stdout).toBe(`removed thing valve-3, and its access keys ${bound.accessKeyId}\n`);
    expect(await listing(bound)).toBe('InvalidAccessKeyId');
    expect(await listing(other)).toBe('NoSuchBucket');
    await addThing(daemon.socket, 'valve-3', 'another');
    const keys = JSON.parse((await outpost(daemon.socket, ['s3', 'keys', 'ls', '--json'])).stdout).keys as Array<{ accessKeyId: string }>;
    expect(keys.map((key) => key.accessKeyId)).not.toContain(bound.accessKeyId);
    expect(keys.map((key) => key.accessKeyId)).toContain(other.accessKeyId);
  });
});
