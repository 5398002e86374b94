import type Database from 'better-sqlite3';
import type { Migrations, Store } from '../store/store.js';
import type { FunctionSpec } from './template.js';

/**
 * A function has numbered, immutable versions; each is a content hash (code and configuration)
 * whose files live in `<dataDir>/functions/<name>/<hash>/`. `$LATEST` is the function's `latest`.
 */
export const functionMigrations: Migrations = [
  `CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    latest INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE function_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
  ) WITHOUT ROWID`,
  // 2: the durable asynchronous queue and the dead-letter queue (async-store.ts).
  `CREATE TABLE function_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    client_context TEXT,
    source TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT
  );
  CREATE INDEX function_events_by_name ON function_events (name, next_attempt_at, id);
  CREATE TABLE function_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    client_context TEXT,
    source TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    failed_at INTEGER NOT NULL
  );
  CREATE INDEX function_dead_letters_by_name ON function_dead_letters (name, id)`,
  // 3: aliases, each naming one version of its function (Lambda's CreateAlias/UpdateAlias).
  `CREATE TABLE function_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
  ) WITHOUT ROWID`,
  // 4: the alias or version an asynchronous event was invoked with (NULL: $LATEST), kept by its dead letter.
  // Weighted aliases (Lambda's RoutingConfig.AdditionalVersionWeights): one more version and the share of invocations it gets.
  `ALTER TABLE function_events ADD COLUMN qualifier TEXT;
  ALTER TABLE function_dead_letters ADD COLUMN qualifier TEXT;
  ALTER TABLE function_aliases ADD COLUMN additional_version INTEGER;
  ALTER TABLE function_aliases ADD COLUMN additional_weight REAL`,
  // 5: how many invocations came before an event in its chain of destination records (async-queue.ts: MAX_CHAIN_INVOCATIONS).
  'ALTER TABLE function_events ADD COLUMN hops INTEGER NOT NULL DEFAULT 0',
  // 6: an event's request id, the same for each of its attempts as on Lambda; events queued before get a random UUID (version 4) here.
  `ALTER TABLE function_events ADD COLUMN request_id TEXT;
  UPDATE function_events SET request_id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
    || substr('89ab', 1 + abs(random()) % 4, 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`,
];

/** An alias: its version, and with a routing configuration a second version that gets `weight` (0–1) of the invocations. */
export interface Alias {
  alias: string;
  version: number;
  additionalVersionWeights?: Record<string, number>;
  updatedAt: number;
}

interface AliasRow { alias: string; version: number; additional_version: number | null; additional_weight: number | null; updated_at: number }

export interface FunctionVersion {
  name: string;
  version: number;
  hash: string;
  spec: FunctionSpec;
  createdAt: number;
}

interface VersionRow { name: string; version: number; hash: string; spec: string; created_at: number }

/** Prepared statements over the functions tables. Reads run directly; writes only inside group commit. */
export class FunctionStore {
  private readonly selectLatest: Database.Statement<[string], VersionRow>;
  private readonly selectAllLatest: Database.Statement<[], VersionRow>;
  private readonly selectVersions: Database.Statement<[string], VersionRow>;
  private readonly insertVersion: Database.Statement;
  private readonly upsertFunction: Database.Statement;
  private readonly deleteFunction: Database.Statement;
  private readonly deleteVersions: Database.Statement;
  private readonly selectVersion: Database.Statement<[string, number], VersionRow>;
  private readonly pointLatest: Database.Statement;
  private readonly selectAlias: Database.Statement<[string, string], AliasRow>;
  private readonly selectAliases: Database.Statement<[string], AliasRow>;
  private readonly upsertAlias: Database.Statement;
  private readonly deleteAlias: Database.Statement;
  private readonly deleteAliases: Database.Statement;

  constructor(store: Store) {
    store.migrate('functions', functionMigrations);
    const db = store.db;
    const latestJoin = 'SELECT v.* FROM functions f JOIN function_versions v ON v.name = f.name AND v.version = f.latest';
    this.selectLatest = db.prepare(`${latestJoin} WHERE f.name = ?`);
    this.selectAllLatest = db.prepare(`${latestJoin} ORDER BY f.name`);
    this.selectVersions = db.prepare('SELECT * FROM function_versions WHERE name = ? ORDER BY version');
    this.insertVersion = db.prepare(`INSERT INTO function_versions (name, version, hash, spec, created_at)
      VALUES (@name, (SELECT COALESCE(MAX(version), 0) + 1 FROM function_versions WHERE name = @name), @hash, @spec, @now)
      RETURNING version`);
    this.upsertFunction = db.prepare(`INSERT INTO functions (name, latest, created_at, updated_at) VALUES (@name, @version, @now, @now)
      ON CONFLICT (name) DO UPDATE SET latest = excluded.latest, updated_at = excluded.updated_at`);
    this.deleteFunction = db.prepare('DELETE FROM functions WHERE name = ?');
    this.deleteVersions = db.prepare('DELETE FROM function_versions WHERE name = ?');
    this.selectVersion = db.prepare('SELECT * FROM function_versions WHERE name = ? AND version = ?');
    this.pointLatest = db.prepare('UPDATE functions SET latest = @version, updated_at = @now WHERE name = @name');
    this.selectAlias = db.prepare('SELECT alias, version, additional_version, additional_weight, updated_at FROM function_aliases WHERE name = ? AND alias = ?');
    this.selectAliases = db.prepare('SELECT alias, version, additional_version, additional_weight, updated_at FROM function_aliases WHERE name = ? ORDER BY alias');
    this.upsertAlias = db.prepare(`INSERT INTO function_aliases (name, alias, version, additional_version, additional_weight, updated_at)
      VALUES (@name, @alias, @version, @additionalVersion, @additionalWeight, @now)
      ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, additional_version = excluded.additional_version,
        additional_weight = excluded.additional_weight, updated_at = excluded.updated_at`);
    this.deleteAlias = db.prepare('DELETE FROM function_aliases WHERE name = ? AND alias = ?');
    this.deleteAliases = db.prepare('DELETE FROM function_aliases WHERE name = ?');
  }

  /** The version `$LATEST` points at. */
  latest(name: string): FunctionVersion | undefined {
    const row = this.selectLatest.get(name);
    return row && toVersion(row);
  }

  allLatest(): FunctionVersion[] {
    return this.selectAllLatest.all().map(toVersion);
  }

  versions(name: string): FunctionVersion[] {
    return this.selectVersions.all(name).map(toVersion);
  }

  /** Inside a group-commit write only: records a new version and points `$LATEST` at it. */
  addVersion(spec: FunctionSpec, hash: string, now: number): number {
    const { version } = this.insertVersion.get({ name: spec.name, hash, spec: JSON.stringify(spec), now }) as { version: number };
    this.upsertFunction.run({ name: spec.name, version, now });
    return version;
  }

  version(name: string, version: number): FunctionVersion | undefined {
    const row = this.selectVersion.get(name, version);
    return row && toVersion(row);
  }

  /** Inside a group-commit write only: points `$LATEST` at an existing version (rollback). */
  setLatest(name: string, version: number, now: number): void {
    this.pointLatest.run({ name, version, now });
  }

  alias(name: string, alias: string): Alias | undefined {
    const row = this.selectAlias.get(name, alias);
    return row && toAlias(row);
  }

  aliases(name: string): Alias[] {
    return this.selectAliases.all(name).map(toAlias);
  }

  /** Inside a group-commit write only; `additional`: the routing configuration's second version. */
  setAlias(name: string, alias: string, version: number, additional: { version: number; weight: number } | undefined, now: number): void {
    this.upsertAlias.run({ name, alias, version, additionalVersion: additional?.version ?? null, additionalWeight: additional?.weight ?? null, now });
  }

  /** Inside a group-commit write only; whether the alias existed. */
  removeAlias(name: string, alias: string): boolean {
    return this.deleteAlias.run(name, alias).changes > 0;
  }

  /** Inside a group-commit write only. */
  remove(name: string): void {
    this.deleteFunction.run(name);
    this.deleteVersions.run(name);
    this.deleteAliases.run(name);
  }
}

function toVersion(row: VersionRow): FunctionVersion {
  return { name: row.name, version: row.version, hash: row.hash, spec: JSON.parse(row.spec) as FunctionSpec, createdAt: row.created_at };
}

function toAlias(row: AliasRow): Alias {
  return {
    alias: row.alias, version: row.version,
    ...(row.additional_version !== null ? { additionalVersionWeights: { [row.additional_version]: row.additional_weight ?? 0 } } : {}),
    updatedAt: row.updated_at,
  };
}
