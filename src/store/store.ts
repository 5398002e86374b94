import Database from 'better-sqlite3';
import { chmodSync, closeSync, fdatasync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { syncPathSync } from './durable-directories.js';
import { CHECKPOINT_FRAMES, Checkpoints } from './checkpoints.js';
import { GroupCommit, type SyncLog } from './group-commit.js';

export type Db = Database.Database;

export interface StoreOptions {
  file: string;
  synchronous: 'full' | 'normal';
  cacheSizeKb: number;
  /** With synchronous 'full': checkpoints on a thread of their own rather than on the event loop (Checkpoints). */
  checkpointThread?: boolean;
  /** The log could not be synced to disk: nothing more is committed (GroupCommit), and the process should end. */
  onSyncFailure?: (error: Error) => void;
  /** A checkpoint failed: for a while the log is only synced, and SQLite checkpoints it at four times the usual size. */
  onCheckpointFailure?: (error: Error) => void;
}

/**
 * A service's schema history: index i is version i+1. Migrations are append-only;
 * a released migration is never edited.
 */
export type Migrations = readonly string[];

/**
 * The daemon's one SQLite database. Services read through `db` directly and
 * write through `commit`, which batches the writes of one event-loop tick into
 * one transaction and resolves once it is on disk.
 */
export class Store {
  readonly db: Db;
  readonly commit: GroupCommit;
  readonly file: string;
  /** With synchronous 'full': the checkpoints made after the group commit's syncs. */
  readonly checkpoints: Checkpoints | undefined;
  private walFd: number | undefined;

  constructor(options: StoreOptions) {
    this.file = options.file;
    this.db = new Database(options.file);
    // It holds password hashes and the access keys' secrets; SQLite gives -wal and -shm the same mode.
    chmodSync(options.file, 0o600);
    const journalMode = this.db.pragma('journal_mode = WAL', { simple: true });
    // every durability promise rests on the log (group commit syncs it); a filesystem without the
    // shared memory it needs (some network mounts) answers another mode
    if (journalMode !== 'wal') throw new Error(`${options.file}: SQLite cannot keep a write-ahead log here (journal mode ${String(journalMode)}); put the data directory on a local filesystem`);
    // synchronous=full is kept by group commit rather than by SQLite: SQLite's NORMAL writes the
    // log without fsync, and GroupCommit settles a write only after an fdatasync of the log,
    // made on the thread pool, so the event loop never blocks on the disk. Checkpoints still
    // sync the log first and the database after, as SQLite does in NORMAL.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`cache_size = -${options.cacheSizeKb}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // SQLite checkpoints at the end of a COMMIT, on the event loop, syncing the log and the database
    // there. With synchronous 'full', Checkpoints makes them instead, after the group commit's sync,
    // every 1,024 pages (4 MiB of log), and SQLite's are a backstop at four times that, for
    // checkpoints that fail. Without, SQLite's every 4,096 pages rather than its 1,000 stop the loop
    // a quarter as often. The log stays within journal_size_limit, which truncates it back after a checkpoint.
    const full = options.synchronous === 'full';
    this.db.pragma(`wal_autocheckpoint = ${4 * CHECKPOINT_FRAMES}`);
    this.db.pragma('journal_size_limit = 16777216');
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      service TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
      PRIMARY KEY (service, version))`);
    // the log file may have just been made: its entry is durable once its directory is
    syncPathSync(dirname(resolve(options.file)));
    this.checkpoints = full ? new Checkpoints(this.file, this.db, (done) => this.fdatasyncWal(done), options.checkpointThread === true, options.onCheckpointFailure ?? (() => undefined)) : undefined;
    this.commit = new GroupCommit(this.db, this.checkpoints ? this.walSync(this.checkpoints) : undefined, options.onSyncFailure);
  }

  /** The group commit's sync: an fdatasync of the log, then a checkpoint when the log has grown. */
  private walSync(checkpoints: Checkpoints): SyncLog {
    return (done) => this.fdatasyncWal((error) => {
      if (error || !checkpoints.due()) done(error);
      else checkpoints.run().then(() => done(null), done);
    });
  }

  /** fdatasync of the write-ahead log, which SQLite keeps (same inode) while the connection is open. */
  private fdatasyncWal(done: (error: Error | null) => void): void {
    try {
      this.walFd ??= openSync(`${this.file}-wal`, 'r+');
    } catch (error) {
      done(error as Error);
      return;
    }
    fdatasync(this.walFd, done);
  }

  /** Applies the service's migrations newer than what the database has, each in its own transaction. */
  migrate(service: string, migrations: Migrations): void {
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE service = ?').get(service) as { v: number | null };
    const current = row.v ?? 0;
    if (current > migrations.length) {
      throw new Error(`database schema of ${service} is version ${current}, newer than this Outpost knows (${migrations.length}); refusing to downgrade`);
    }
    const record = this.db.prepare('INSERT INTO schema_migrations (service, version, applied_at) VALUES (?, ?, ?)');
    for (let version = current + 1; version <= migrations.length; version++) {
      this.db.transaction(() => {
        this.db.exec(migrations[version - 1]);
        record.run(service, version, Date.now());
      })();
    }
  }

  /** Bytes on disk: the database plus its write-ahead log. */
  sizeBytes(): number {
    let total = 0;
    for (const suffix of ['', '-wal']) {
      try { total += statSync(this.file + suffix).size; } catch { /* no WAL yet */ }
    }
    return total;
  }

  async close(): Promise<void> {
    await this.commit.drain();
    await this.checkpoints?.stop();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.checkpoints?.closeFiles();
  }
}
