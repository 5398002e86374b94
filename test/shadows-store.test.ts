import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { ShadowStore } from '../src/shadows/store.js';
import { ShadowError } from '../src/shadows/errors.js';
import type { OperationContext } from '../src/shadows/operations/context.js';
import { updateShadow } from '../src/shadows/operations/update.js';
import { deleteShadow } from '../src/shadows/operations/delete.js';

// Shadow writes run in group commit without a savepoint each (`singleStatement`): these show that a
// refused or failing write in a batch still changes nothing of its own and nothing of the others'.

const limits = { maxDocumentBytes: 8192, maxDepth: 6, maxPayloadBytes: 65536, maxClientTokenBytes: 64, maxThingNameBytes: 128, maxShadowNameBytes: 64 };
const dirs: string[] = [];
afterEach(() => { for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true }); });

function open(): { store: Store; context: OperationContext; announced: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-shadow-store-'));
  dirs.push(dir);
  const store = new Store({ file: join(dir, 'test.db'), synchronous: 'full', cacheSizeKb: 1024 });
  const announced: string[] = [];
  const announce = {
    updated: async (address: { thing: string }, result: { stored: { version: number } }) => { announced.push(`${address.thing} ${result.stored.version}`); },
    deleted: async (address: { thing: string }) => { announced.push(`${address.thing} deleted`); },
  };
  return { store, announced, context: { shadows: new ShadowStore(store), commit: store.commit, limits, now: () => 1_700_000_000, announce: announce as unknown as OperationContext['announce'] } };
}

const reported = (value: number, version?: number) => ({ state: { reported: { value } }, ...(version !== undefined ? { version } : {}) });

describe('shadow writes in group commit', () => {
  it('refuses an update in the middle of a batch without touching the shadow or the batch', async () => {
    const { store, context, announced } = open();
    await updateShadow({ thing: 'a', name: '' }, reported(1), context);
    const commits = store.commit.stats.transactions;
    const results = await Promise.allSettled([
      updateShadow({ thing: 'a', name: '' }, reported(2), context),
      updateShadow({ thing: 'a', name: '' }, reported(99, 7), context),
      deleteShadow({ thing: 'missing', name: '' }, {}, context),
      updateShadow({ thing: 'b', name: 'named' }, reported(3), context),
    ]);
    expect(store.commit.stats.transactions - commits).toBe(1);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(results.map((result) => (result.status === 'rejected' ? (result.reason as ShadowError).code : 200))).toEqual([200, 409, 404, 200]);
    expect(context.shadows.read('a', '')).toMatchObject({ version: 2, state: '{"reported":{"value":2}}' });
    expect(context.shadows.read('b', 'named')).toMatchObject({ version: 1, state: '{"reported":{"value":3}}' });
    expect(context.shadows.read('missing', '')).toBeUndefined();
    // what was accepted is published in commit order, what was refused not at all
    expect(announced).toEqual(['a 1', 'a 2', 'b 1']);
    await store.close();
  });

  it('keeps the other writes of a batch when a single-statement write fails in SQLite', async () => {
    const { store } = open();
    store.migrate('test', ['CREATE TABLE items (value TEXT NOT NULL UNIQUE)']);
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    const results = await Promise.allSettled([
      store.commit.run(() => insert.run('a'), { singleStatement: true }),
      store.commit.run(() => insert.run('a'), { singleStatement: true }),
      store.commit.run(() => insert.run('b'), { singleStatement: true }),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(store.db.prepare('SELECT value FROM items ORDER BY value').pluck().all()).toEqual(['a', 'b']);
    await store.close();
  });

  it('rejects the whole batch when a failing write ended the transaction, and commits none of it', async () => {
    const { store } = open();
    store.migrate('test', ['CREATE TABLE items (value TEXT NOT NULL)']);
    const insert = store.db.prepare('INSERT INTO items (value) VALUES (?)');
    const results = await Promise.allSettled([
      store.commit.run(() => insert.run('before'), { singleStatement: true }),
      // As SQLite does by itself on some disk errors: the transaction is rolled back under the write.
      store.commit.run(() => { store.db.exec('ROLLBACK'); throw new Error('disk I/O error'); }, { singleStatement: true }),
      store.commit.run(() => insert.run('after')),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(store.db.inTransaction).toBe(false);
    expect(store.db.prepare('SELECT COUNT(*) FROM items').pluck().get()).toBe(0);
    await expect(store.commit.run(() => insert.run('next'))).resolves.toBeDefined();
    await store.close();
  });
});
