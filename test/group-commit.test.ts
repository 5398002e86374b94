import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { GroupCommit } from '../src/store/group-commit.js';
import { CHECKPOINT_FRAMES } from '../src/store/checkpoints.js';

const dirs: string[] = [];
function openStore(dir = mkdtempSync(join(tmpdir(), 'outpost-store-'))): Store {
  dirs.push(dir);
  const store = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
  store.migrate('test', ['CREATE TABLE items (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)']);
  return store;
}
afterEach(() => { for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true }); });

describe('group commit', () => {
  it('commits the writes of one tick in one transaction and resolves after commit', async () => {
    const store = openStore();
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    const writes = Array.from({ length: 100 }, (_, i) => store.commit.run(() => insert.run(`v${i}`).lastInsertRowid));
    const before = store.commit.stats.transactions;
    const ids = await Promise.all(writes);
    expect(ids).toHaveLength(100);
    expect(store.commit.stats.transactions - before).toBe(1);
    expect((store.db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n).toBe(100);
    await store.close();
  });

  it('rolls back only the write that failed', async () => {
    const store = openStore();
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    const results = await Promise.allSettled([
      store.commit.run(() => insert.run('a')),
      store.commit.run(() => { insert.run('b'); insert.run('a'); }),
      store.commit.run(() => insert.run('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const values = store.db.prepare('SELECT value FROM items ORDER BY value').all().map((r: any) => r.value);
    expect(values).toEqual(['a', 'c']);
    await store.close();
  });

  it('rejects a lone failing write without committing it', async () => {
    const store = openStore();
    await expect(store.commit.run(() => { throw new Error('nope'); })).rejects.toThrow('nope');
    expect(store.commit.stats.failedWrites).toBe(1);
    await store.close();
  });

  it('refuses every write once a sync of the log failed, and says so once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    dirs.push(dir);
    const store = openStore(dir);
    const failures: Error[] = [];
    let failNext = false;
    // the log's fsync, failing when told to (an I/O error of the disk)
    const commit = new GroupCommit(store.db, (done) => setImmediate(() => done(failNext ? Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }) : null)), (error) => failures.push(error));
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    await commit.run(() => insert.run('before'));
    failNext = true;
    const during = await Promise.allSettled([commit.run(() => insert.run('a')), commit.run(() => insert.run('b'))]);
    expect(during.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    failNext = false;
    await expect(commit.run(() => insert.run('after'))).rejects.toThrow('EIO');
    expect(failures.map((error) => error.message)).toEqual(['EIO: i/o error, fdatasync']);
    expect(store.db.prepare('SELECT value FROM items WHERE value = ?').get('after')).toBeUndefined();
    await store.close();
  });

  it('applies migrations once and refuses a newer schema', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    const first = openStore(dir);
    first.migrate('test', ['CREATE TABLE items (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)', 'ALTER TABLE items ADD COLUMN extra TEXT']);
    await first.close();
    const second = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
    expect(() => second.migrate('test', ['CREATE TABLE items (id INTEGER PRIMARY KEY)'])).toThrow(/newer than this Outpost knows/);
    await second.close();
  });

  it('drains pending writes on close', async () => {
    const store = openStore();
    const pending = store.commit.run(() => store.db.prepare('INSERT INTO items (value) VALUES (?)').run('late'));
    await store.close();
    await expect(pending).resolves.toBeDefined();
  });

  it('settles a write only after a log sync that started after its commit; writes made while the log syncs commit together after it', async () => {
    const store = openStore();
    const syncs: Array<(error: Error | null) => void> = [];
    const commit = new GroupCommit(store.db, (done) => syncs.push(done));
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    const settled: string[] = [];
    const first = commit.run(() => insert.run('first')).then(() => settled.push('first'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(syncs).toHaveLength(1);
    const second = commit.run(() => insert.run('second')).then(() => settled.push('second'));
    const third = commit.run(() => insert.run('third')).then(() => settled.push('third'));
    await new Promise((resolve) => setImmediate(resolve));
    // Held while the log syncs: a commit now would wait for the next sync all the same.
    expect((store.db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n).toBe(1);
    expect(syncs).toHaveLength(1);
    expect(settled).toEqual([]);
    syncs[0](null);
    await first;
    expect(settled).toEqual(['first']);
    await new Promise((resolve) => setImmediate(resolve));
    // Both in one transaction, then a sync of their own before they settle.
    expect((store.db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n).toBe(3);
    expect(commit.stats.transactions).toBe(2);
    expect(syncs).toHaveLength(2);
    expect(settled).toEqual(['first']);
    const drained = commit.drain();
    syncs[1](null);
    await Promise.all([second, third, drained]);
    expect(settled).toEqual(['first', 'second', 'third']);
    await store.close();
  });

  it('rejects the writes a failed log sync was to make durable', async () => {
    const store = openStore();
    const commit = new GroupCommit(store.db, (done) => done(new Error('EIO: i/o error, fdatasync')));
    await expect(commit.run(() => store.db.prepare('INSERT INTO items (value) VALUES (?)').run('lost'))).rejects.toThrow('EIO');
    expect(commit.stats.failedCommits).toBe(1);
    await store.close();
  });

  /** Writes `rows` rows of 4 KiB (two pages each) through group commit, 64 a tick, and says how large the log grew. */
  async function writeRows(store: Store, rows: number): Promise<number> {
    store.migrate('rows', ['CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)']);
    const insert = store.db.prepare('INSERT INTO rows (body) VALUES (?)');
    let largestLog = 0;
    for (let written = 0; written < rows; written += 64) {
      await Promise.all(Array.from({ length: 64 }, () => store.commit.run(() => insert.run(Buffer.alloc(4096, written % 251)), { singleStatement: true })));
      largestLog = Math.max(largestLog, statSync(`${store.file}-wal`).size);
    }
    return largestLog;
  }

  /**
   * Writes `rows` rows through a store of `StoreClass` (checkpoints on a thread with `onThread`), checks
   * that the log never held much more than one checkpoint's frames (SQLite's own come at four times
   * that) and that every row is there once reopened; the checkpoints made.
   */
  async function checkpointedWrites(StoreClass: typeof Store, onThread: boolean, rows: number): Promise<number> {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    dirs.push(dir);
    const failures: Error[] = [];
    const store = new StoreClass({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024, checkpointThread: onThread, onCheckpointFailure: (error) => failures.push(error) });
    const largestLog = await writeRows(store, rows);
    expect(failures).toEqual([]);
    expect(largestLog).toBeLessThan(1.1 * CHECKPOINT_FRAMES * 4096);
    const { checkpoints } = store.checkpoints!.stats;
    await store.close();
    const reopened = new StoreClass({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
    expect((reopened.db.prepare('SELECT COUNT(*) AS n FROM rows').get() as { n: number }).n).toBe(rows);
    await reopened.close();
    return checkpoints;
  }

  it('checkpoints the log on the event loop once it holds 4 MiB, after the sync, and the log starts again from its beginning', async () => {
    expect(await checkpointedWrites(Store, false, 4 * CHECKPOINT_FRAMES)).toBeGreaterThanOrEqual(3);
  });

  /** A store with a table of rows, and the salts of its log (sqlite.org/walformat.html, WAL header bytes 16-23), which change when the log starts again. */
  function storeWithRows(dir: string) {
    const store = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
    store.migrate('rows', ['CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)']);
    const insert = store.db.prepare('INSERT INTO rows (body) VALUES (?)');
    const salts = () => {
      const fd = openSync(`${store.file}-wal`, 'r');
      const header = Buffer.alloc(8);
      readSync(fd, header, 0, 8, 16);
      closeSync(fd);
      return header.toString('hex');
    };
    return { store, insert, salts };
  }

  it('starts the log again after a checkpoint with a write of one page, so that the next writes do not sync its header on the event loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    dirs.push(dir);
    const { store, insert, salts } = storeWithRows(dir);
    for (let i = 0; i < 8; i++) insert.run(Buffer.alloc(4096, i));
    const before = salts();
    await store.checkpoints!.run();
    expect(salts()).not.toBe(before);
    // the wal-index header's mxFrame (sqlite.org/walformat.html): the log holds that one page
    const fd = openSync(`${store.file}-shm`, 'r');
    const index = Buffer.alloc(4);
    readSync(fd, index, 0, 4, 16);
    closeSync(fd);
    expect(index.readUInt32LE(0)).toBe(1);
    await store.close();
  });

  it('lets no write start the log again over pages copied into the database before the database is synced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    dirs.push(dir);
    const { store, insert, salts } = storeWithRows(dir);
    for (let i = 0; i < 8; i++) insert.run(Buffer.alloc(4096, i));
    const before = salts();
    // the copy is made at once, the database's sync comes after: a write outside group commit meanwhile
    const checkpoint = store.checkpoints!.run();
    insert.run(Buffer.alloc(4096, 9));
    expect(salts()).toBe(before);
    await checkpoint;
    expect(store.checkpoints!.stats.checkpoints).toBe(1);
    await store.close();
    const reopened = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
    expect((reopened.db.prepare('SELECT COUNT(*) AS n FROM rows').get() as { n: number }).n).toBe(9);
    await reopened.close();
  });

  it('checkpoints the log on a thread of its own once it holds 4 MiB, after the sync, and the log starts again from its beginning', async () => {
    // the built Store: its thread runs dist/store/checkpoint-worker.js
    const { Store: BuiltStore } = await import('../dist/store/store.js') as { Store: typeof Store };
    expect(await checkpointedWrites(BuiltStore, true, 2 * CHECKPOINT_FRAMES)).toBeGreaterThanOrEqual(1);
  });

  it('syncs the log as usual when the checkpoint thread cannot run, and says so once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-store-'));
    dirs.push(dir);
    // the Store of the TypeScript sources: its thread's checkpoint-worker.js is not there
    const failures: Error[] = [];
    const store = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024, checkpointThread: true, onCheckpointFailure: (error) => failures.push(error) });
    await writeRows(store, 2 * CHECKPOINT_FRAMES);
    expect(failures).toHaveLength(1);
    expect(store.checkpoints!.stats).toEqual({ checkpoints: 0, failed: 1 });
    expect((store.db.prepare('SELECT COUNT(*) AS n FROM rows').get() as { n: number }).n).toBe(2 * CHECKPOINT_FRAMES);
    await store.close();
  });
});
