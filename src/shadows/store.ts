import type Database from 'better-sqlite3';
import type { Migrations, Store } from '../store/store.js';
import type { StoredShadow } from './document.js';

/**
 * One row per shadow; the classic shadow has the name ''. A delete is soft: the row keeps its
 * version (and loses its state) so that a re-created shadow continues the count.
 */
export const shadowMigrations: Migrations = [
  `CREATE TABLE shadows (
    thing TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (thing, name)
  ) WITHOUT ROWID`,
];

export const CLASSIC = '';

interface Row {
  thing: string;
  name: string;
  version: number;
  updated_at: number;
}

/** version, state, metadata, updated_at, deleted_at: a shadow read as an array, without naming its columns per row. */
type StoredRow = [number, string, string, number, number | null];

export interface ShadowSummary {
  thing: string;
  /** null for the classic shadow. */
  name: string | null;
  version: number;
  timestamp: number;
}

/** Prepared statements over the shadows table. Reads run directly; writes only inside group commit. */
export class ShadowStore {
  private readonly select: Database.Statement<[string, string], StoredRow>;
  private readonly upsert: Database.Statement<[string, string, number, string, string, number]>;
  private readonly markDeleted: Database.Statement;
  private readonly namedPage: Database.Statement<[string, string, number], { name: string }>;
  private readonly listPage: Database.Statement<[string, string, number], Row>;
  private readonly listThing: Database.Statement<[string], Row>;
  private readonly purgeDeleted: Database.Statement<[number]>;

  constructor(store: Store) {
    store.migrate('shadows', shadowMigrations);
    const db = store.db;
    this.select = db.prepare<[string, string], StoredRow>('SELECT version, state, metadata, updated_at, deleted_at FROM shadows WHERE thing = ? AND name = ?').raw();
    this.upsert = db.prepare(`INSERT INTO shadows (thing, name, version, state, metadata, updated_at, deleted_at)
      VALUES (?, ?, ?, ?, ?, ?, NULL)
      ON CONFLICT (thing, name) DO UPDATE SET version = excluded.version, state = excluded.state,
        metadata = excluded.metadata, updated_at = excluded.updated_at, deleted_at = NULL`);
    this.markDeleted = db.prepare(`UPDATE shadows SET state = '{}', metadata = '{}', deleted_at = ? WHERE thing = ? AND name = ?`);
    this.namedPage = db.prepare(`SELECT name FROM shadows WHERE thing = ? AND name > ? AND name <> '' AND deleted_at IS NULL ORDER BY name LIMIT ?`);
    this.listPage = db.prepare('SELECT thing, name, version, updated_at FROM shadows WHERE (thing, name) > (?, ?) AND deleted_at IS NULL ORDER BY thing, name LIMIT ?');
    this.listThing = db.prepare('SELECT thing, name, version, updated_at FROM shadows WHERE thing = ? AND deleted_at IS NULL ORDER BY name');
    // A scan of the table, no index: run once an hour, it costs less than an index on every write.
    this.purgeDeleted = db.prepare('DELETE FROM shadows WHERE deleted_at < ?');
  }

  /** The stored shadow, alive or soft-deleted; undefined when there never was one. */
  read(thing: string, name: string): StoredShadow | undefined {
    const row = this.select.get(thing, name);
    if (!row) return undefined;
    const [version, state, metadata, timestamp, deletedAt] = row;
    return deletedAt === null ? { state, metadata, version, timestamp } : { state, metadata, version, timestamp, deletedAt };
  }

  /** Inside a group-commit write only. */
  write(thing: string, name: string, stored: StoredShadow): void {
    this.upsert.run(thing, name, stored.version, stored.state, stored.metadata, stored.timestamp);
  }

  /** Inside a group-commit write only. */
  softDelete(thing: string, name: string, now: number): void {
    this.markDeleted.run(now, thing, name);
  }

  /**
   * Inside a group-commit write only: forgets the shadows deleted before `before` (seconds), whose
   * version a re-created shadow no longer continues; returns how many.
   */
  forgetDeletedBefore(before: number): number {
    return this.purgeDeleted.run(before).changes;
  }

  /** Named shadows of a thing after `after`, in name order. */
  namedAfter(thing: string, after: string, limit: number): string[] {
    return this.namedPage.all(thing, after, limit).map((row) => row.name);
  }

  /** For the admin CLI: a thing's live shadows. */
  summaries(thing: string): ShadowSummary[] {
    return this.listThing.all(thing).map(toSummary);
  }

  /** For the admin CLI: live shadows after the one `after` names, in order of thing and name, at most `limit`. */
  summaryPage(after: { thing: string; name: string }, limit: number): ShadowSummary[] {
    return this.listPage.all(after.thing, after.name, limit).map(toSummary);
  }
}

function toSummary(row: Row): ShadowSummary {
  return { thing: row.thing, name: row.name === CLASSIC ? null : row.name, version: row.version, timestamp: row.updated_at };
}
