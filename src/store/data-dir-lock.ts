import Database from 'better-sqlite3';
import { accessSync, chmodSync, constants } from 'node:fs';
import { join } from 'node:path';
import { makeDirectoriesSync } from './durable-directories.js';

/** Another daemon holds the data directory: this one must not touch its database or sockets. */
export class DataDirBusyError extends Error {
  constructor(readonly dataDir: string, readonly lockFile: string) {
    super(`another outpostd is running on ${dataDir} (it holds the lock on ${lockFile}); stop it first, or give this one another data directory`);
    this.name = 'DataDirBusyError';
  }
}

/**
 * Makes the data directory (durably) and checks this process may write in it; an error names
 * `dataDir` and why, where SQLite would say only "unable to open database file".
 */
export function makeDataDir(dataDir: string): void {
  try {
    makeDirectoriesSync(dataDir, 0o750);
    accessSync(dataDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'it (or a directory above it) is a file'
      : code === 'EACCES' || code === 'EPERM' ? `this user (uid ${process.getuid?.()}) may not write there` : message;
    throw new Error(`dataDir: cannot use ${dataDir} as the data directory: ${why}`, { cause: error });
  }
}

/**
 * An exclusive lock on `<dataDir>/outpost.lock`, held while the daemon runs. Node has no flock();
 * SQLite's locks are POSIX record locks (fcntl), which the kernel drops when the process dies, so
 * a daemon killed with -9 leaves no stale lock behind and no pid has to be trusted. The file is a
 * tiny SQLite database that nothing is ever written to: in exclusive locking mode a connection
 * keeps the lock its first transaction took until it closes.
 */
export class DataDirLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock at once or throws DataDirBusyError: never waits for another daemon. */
  static take(dataDir: string): DataDirLock {
    const file = join(dataDir, 'outpost.lock');
    const db = new Database(file, { timeout: 0 });
    try {
      chmodSync(file, 0o600);
      db.pragma('locking_mode = EXCLUSIVE');
      // no journal file beside the lock: the lock's transaction changes nothing
      db.pragma('journal_mode = MEMORY');
      db.exec('BEGIN EXCLUSIVE; COMMIT');
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new DataDirBusyError(dataDir, file);
      throw error;
    }
    return new DataDirLock(db);
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
