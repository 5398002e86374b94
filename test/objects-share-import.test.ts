import { afterEach, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Store } from '../src/store/store.js';
import { FileChangedError, ObjectStore, objectMigrations, type ChangeLog } from '../src/objects/object-store.js';

// The file share's watcher judges a file (its lstat: settled, not the store's) and then imports it.
// Its look can be old by then — an lstat queued behind fsyncs in the thread pool while an S3 burst
// placed and recorded newer copies — and the import must not adopt the file there now on that
// judgment (CI once saw an S3 PUT's own copy re-imported, with an event as from a local program).

const origin = { principalId: 'outpost:file-share', sourceIp: '127.0.0.1', requestId: 'TEST' };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const cleanup of cleanups.splice(0)) await cleanup(); });

async function open(): Promise<{ objects: ObjectStore; events: string[]; shareRoot: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-share-import-'));
  const shareRoot = join(dir, 'share');
  mkdirSync(shareRoot);
  const store = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
  store.migrate('objects', objectMigrations);
  const events: string[] = [];
  let next = 0;
  const changes: ChangeLog = {
    record: (_bucket, eventName, object, by) => { events.push(`${eventName} ${object.key} ${by.principalId}`); return next++; },
    release: () => undefined,
  };
  // every object a file renamed into place (no share copy thread, which runs from the build)
  const objects = new ObjectStore(store, shareRoot, changes, { maxObjectBytes: 1 << 30, minPartBytes: 5 << 20, smallObjectBytes: 0, writeBufferBytes: 256 * 1024 }, pino({ level: 'silent' }));
  await objects.recover();
  cleanups.push(async () => {
    await objects.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { objects, events, shareRoot };
}

async function putObject(objects: ObjectStore, key: string, body: string): Promise<void> {
  const data = Buffer.from(body);
  await objects.put('share-import', key, [data], { contentType: 'text/plain', expectedSize: data.length, eventName: 'ObjectCreated:Put', origin: { ...origin, principalId: 'AWS:KEY' } });
}

/** The store's file of the key, once in place and recorded (bounded wait). */
async function recordedCopy(objects: ObjectStore, path: string): Promise<Stats> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const file = lstatSync(path, { throwIfNoEntry: false });
    if (file && objects.shareFileOwner('share-import', 'k.txt', file) === 'store') return file;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the share copy was not recorded within 5 s');
}

describe('file share import of a file judged by an old look', () => {
  it('refuses a file other than the one judged, and leaves the store\'s own copy alone', async () => {
    const { objects, events, shareRoot } = await open();
    await objects.createBucket('share-import');
    const path = join(shareRoot, 'share-import', 'k.txt');
    await putObject(objects, 'k.txt', 'version 1');
    const first = await recordedCopy(objects, path);
    await putObject(objects, 'k.txt', 'version 2');
    const second = await recordedCopy(objects, path);
    expect(second.ino).not.toBe(first.ino);

    // judged on the first copy's lstat, which the second replaced since
    await expect(objects.importFile('share-import', 'k.txt', first, origin)).rejects.toBeInstanceOf(FileChangedError);
    // judged on the file there (the look read the row before the copy was recorded): it is the store's
    await expect(objects.importFile('share-import', 'k.txt', second, origin)).resolves.toBeUndefined();

    expect(events).toEqual(['ObjectCreated:Put k.txt AWS:KEY', 'ObjectCreated:Put k.txt AWS:KEY']);
    expect(objects.object('share-import', 'k.txt')).toMatchObject({ fileIno: second.ino, size: 'version 2'.length });
  });
});
