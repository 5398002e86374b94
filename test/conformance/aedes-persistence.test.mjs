// aedes-persistence's own abstract suite against SqlitePersistence, compiled:
// run `npx tsc -p tsconfig.json` first, then `node --test test/conformance/`.
import { after, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../dist/store/store.js';
import { SqlitePersistence } from '../../dist/broker/persistence/sqlite-persistence.js';

const require = createRequire(import.meta.url);
const abstractPersistence = require('aedes-persistence/abstract.js');

const root = mkdtempSync(join(tmpdir(), 'outpost-aedes-conformance-'));
// Stores of tests that failed before calling destroy().
const openStores = new Set();
let instances = 0;

after(async () => {
  for (const store of openStores) await store.close();
  rmSync(root, { recursive: true, force: true });
});

abstractPersistence({
  test,
  testAsync: true,
  // Each instance gets a database file of its own; destroy() also closes and deletes it.
  persistence: () => {
    const file = join(root, `persistence-${++instances}.db`);
    const store = new Store({ file, synchronous: 'full', cacheSizeKb: 2048 });
    openStores.add(store);
    const persistence = new SqlitePersistence({ store, maxQueuedMessages: 1000, maxRetained: 100000 });
    const destroy = persistence.destroy.bind(persistence);
    persistence.destroy = async () => {
      await destroy();
      openStores.delete(store);
      await store.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    };
    return persistence;
  },
});
