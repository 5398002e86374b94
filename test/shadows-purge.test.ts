import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { outpost } from './helpers/mqtt.js';

// A deleted shadow's row is kept for AWS's 48 hours (a re-created shadow continues its version),
// then forgotten: a device making and deleting shadows of new names must not grow the database for good.
describe('deleted shadows', () => {
  it('are forgotten 48 hours after their delete, and within them a re-created one still continues the version', async () => {
    let daemon = await TestDaemon.start();
    try {
      const cli = async (args: string[]) => {
        const run = await outpost(daemon.socket, args);
        expect(run, run.stderr).toMatchObject({ code: 0 });
        return run.stdout;
      };
      for (const thing of ['old-pump', 'recent-pump']) {
        for (const level of [1, 2, 3]) await cli(['shadow', 'update', thing, '--reported', JSON.stringify({ level })]);
        await cli(['shadow', 'delete', thing]);
      }
      expect(await daemon.stop()).toBe(0);
      // old-pump was deleted 49 hours ago
      const db = new Database(join(daemon.dataDir, 'outpost.db'));
      db.prepare('UPDATE shadows SET deleted_at = deleted_at - 49 * 3600 WHERE thing = ?').run('old-pump');
      db.close();
      daemon = await TestDaemon.start({ dataDir: daemon.dataDir });
      const rows = () => {
        const readOnly = new Database(join(daemon.dataDir, 'outpost.db'), { readonly: true });
        try {
          return readOnly.prepare('SELECT thing FROM shadows ORDER BY thing').all().map((row) => (row as { thing: string }).thing);
        } finally {
          readOnly.close();
        }
      };
      await eventually(() => rows().length === 1);
      expect(rows()).toEqual(['recent-pump']);
      // re-created: the recent one continues at version 4, the forgotten one starts again at 1
      await cli(['shadow', 'update', 'recent-pump', '--reported', '{"level":4}']);
      await cli(['shadow', 'update', 'old-pump', '--reported', '{"level":4}']);
      const version = async (thing: string) => JSON.parse(await cli(['shadow', 'get', thing, '--json'])).version;
      expect({ recent: await version('recent-pump'), old: await version('old-pump') }).toEqual({ recent: 4, old: 1 });
    } finally {
      await daemon.cleanup();
    }
  });
});
