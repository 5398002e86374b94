import Database from 'better-sqlite3';
import { closeSync, fdatasync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { promisify } from 'node:util';
import { RequestThread } from '../request-thread.js';
import { steadyNow } from '../steady-clock.js';
import type { CheckpointReply, CheckpointRequest } from './checkpoint-worker.js';
import type { SyncLog } from './group-commit.js';

/** A checkpoint once the log holds this many frames (pages) not yet in the database: 4 MiB of 4 KiB pages. */
export const CHECKPOINT_FRAMES = 1024;
/** After a failed checkpoint the log is synced as usual for this long (SQLite's own checkpoint is the backstop). */
const PAUSE_AFTER_FAILURE_MS = 60_000;
// The wal-index header (sqlite.org/walformat.html, "The WAL-Index Header Format"), in the -shm
// file, native byte order: WalIndexHdr.mxFrame at 16, WalCkptInfo.nBackfill at 96.
const MX_FRAME_OFFSET = 16;
const N_BACKFILL_OFFSET = 96;

const fdatasyncOf = promisify(fdatasync);

export interface CheckpointStats {
  checkpoints: number;
  failed: number;
}

/** The database or the log could not be synced during a checkpoint: as final as a failed sync of the log (GroupCommit). */
export class CheckpointSyncError extends Error {
  constructor(file: string, cause: Error) {
    super(`${file} could not be synced to disk during a checkpoint: ${cause.message}`, { cause });
    this.name = 'CheckpointSyncError';
  }
}

/**
 * Checkpoints of the write-ahead log made by the daemon in place of SQLite's, which run at the end
 * of a COMMIT on the event loop and stop it while they sync the log, copy it into the database
 * and sync that (each sync up to a second on an SD card). The group commit asks for one after its
 * sync of the log, when the log has grown (`due`); no transaction is committed until it is done,
 * so the whole log is copied and the next write starts it again from its beginning.
 *
 * On the event loop (the default) only the copy stops the loop, ~5 ms for 4 MiB here: SQLite's
 * syncs are turned off for it, the log was synced just before, and the database is synced after on
 * the thread pool, while a read transaction on a second connection keeps any writer from starting
 * the log again over pages the database may not hold yet. On a thread (`store.checkpointThread`)
 * the copy is off the loop too, for ~10 MB of RSS while the thread runs (its V8 isolate).
 */
export class Checkpoints {
  private readonly thread: RequestThread<CheckpointRequest, CheckpointReply> | undefined;
  private guard: { db: Database.Database; begin: Database.Statement; read: Database.Statement; end: Database.Statement } | undefined;
  private indexFd: number | undefined;
  private databaseFd: number | undefined;
  private readonly header = Buffer.alloc(N_BACKFILL_OFFSET + 4);
  private pausedUntil = 0;
  readonly stats: CheckpointStats = { checkpoints: 0, failed: 0 };

  /** `syncLog`: the group commit's fdatasync of the log. */
  constructor(private readonly file: string, private readonly db: Database.Database, private readonly syncLog: SyncLog, onThread: boolean,
    private readonly onFailure: (error: Error) => void) {
    this.thread = onThread
      ? new RequestThread(new URL('./checkpoint-worker.js', import.meta.url), { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 })
      : undefined;
  }

  /** Whether the log holds enough frames not yet in the database for a checkpoint. */
  due(): boolean {
    if (steadyNow() < this.pausedUntil) return false;
    return this.framesToCopy() >= CHECKPOINT_FRAMES;
  }

  /**
   * Copies the log, just synced, into the database and syncs that. A checkpoint that fails is told
   * (`onFailure`) and paused for a while, and resolves: the log holds everything. Rejects with
   * CheckpointSyncError when the database, with pages copied, or the log could not be synced.
   */
  async run(): Promise<void> {
    try {
      if (this.thread) await this.thread.request({ file: this.file });
      else await this.onTheLoop();
      this.stats.checkpoints++;
    } catch (error) {
      if (error instanceof CheckpointSyncError) throw error;
      this.stats.failed++;
      this.pausedUntil = steadyNow() + PAUSE_AFTER_FAILURE_MS;
      this.onFailure(error as Error);
    }
  }

  async stop(): Promise<void> {
    await this.thread?.stop();
    this.guard?.db.close();
    this.guard = undefined;
  }

  /**
   * Closes the files it reads and syncs. Only once the main connection is closed: closing any
   * descriptor of a file drops every POSIX lock the process holds on it, SQLite's included.
   */
  closeFiles(): void {
    for (const fd of [this.indexFd, this.databaseFd]) if (fd !== undefined) closeSync(fd);
    this.indexFd = this.databaseFd = undefined;
  }

  /**
   * The copy is made with SQLite's syncs turned off and the database synced after it, off the loop;
   * the log is then started again by a write of one page, also unsynced, and synced off the loop.
   * SQLite would sync the log's new header on the loop before the first frame written over the
   * old ones (sqlite.org/src/info/ff5be73dee: an old frame kept by a power cut beside new ones
   * would be taken for the latest); with one frame only, a power cut keeps the new header and
   * frame, or the whole old log, whose pages are all in the database by then.
   */
  private async onTheLoop(): Promise<void> {
    const guard = this.guardConnection();
    // a reader of the whole log: a writer starts the log again only once no reader needs it
    guard.begin.run();
    guard.read.get();
    try {
      this.withoutSyncs(() => this.db.pragma('wal_checkpoint(PASSIVE)'));
    } catch (error) {
      guard.end.run();
      throw error;
    }
    try {
      this.databaseFd ??= openSync(this.file, 'r');
      await fdatasyncOf(this.databaseFd);
    } catch (error) {
      // the guard stays: the log must not be started again over pages the disk may not have
      throw new CheckpointSyncError(this.file, error as Error);
    }
    guard.end.run();
    this.withoutSyncs(() => startLogAgain(this.db));
    await promisify(this.syncLog)().catch((error: Error) => { throw new CheckpointSyncError(`${this.file}-wal`, error); });
  }

  private withoutSyncs(work: () => void): void {
    this.db.pragma('synchronous = OFF');
    try {
      work();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  private guardConnection(): NonNullable<Checkpoints['guard']> {
    if (this.guard) return this.guard;
    const db = new Database(this.file, { fileMustExist: true });
    db.pragma('cache_size = -64');
    this.guard = { db, begin: db.prepare('BEGIN'), read: db.prepare('SELECT COUNT(*) FROM sqlite_schema'), end: db.prepare('COMMIT') };
    return this.guard;
  }

  private framesToCopy(): number {
    try {
      this.indexFd ??= openSync(`${this.file}-shm`, 'r');
      if (readSync(this.indexFd, this.header, 0, this.header.length, 0) < this.header.length) return 0;
    } catch {
      return 0;
    }
    const read = endianness() === 'LE' ? 'readUInt32LE' : 'readUInt32BE';
    return this.header[read](MX_FRAME_OFFSET) - this.header[read](N_BACKFILL_OFFSET);
  }
}

/**
 * Starts a fully checkpointed log again from its beginning (a write with no reader of the log left
 * does: SQLite writes a new header and the write's frames over the old ones): a write of one page,
 * the database header's user_version, unchanged.
 */
export function startLogAgain(db: Database.Database): void {
  db.pragma(`user_version = ${Number(db.pragma('user_version', { simple: true }))}`);
}
