import { randomBytes } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, futimes, lstatSync, open, renameSync, write } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { KeyLocks } from './key-locks.js';
import type { ChangeLog } from './object-store.js';

/** Objects waiting for their copy; beyond it small writes wait (ShareCopies.room), so memory stays bounded. */
const MAX_PENDING = 1024;
/** Copies recorded together: one directory fsync and one commit per batch. */
const BATCH = 64;
/** File times come from a clock that lags the wall clock by up to a tick (10 ms at HZ=100). */
const FILE_CLOCK_SLACK_MS = 10;
/** Copies under way at once, each a few thread-pool calls: the pool (4 threads) keeps room for the WAL's fdatasync. */
const COPIES_IN_FLIGHT = 2;

export interface ShareCopiesContext {
  store: Store;
  locks: KeyLocks;
  changes: Pick<ChangeLog, 'release'>;
  /** Where temporary files are written (same filesystem as the share). */
  tmpDir: string;
  log: Logger;
  sharePath(bucket: string, key: string): string;
  /** Whether the key's share path can take a file now (its parent directories made). */
  prepareSharePath(bucket: string, key: string): Promise<boolean>;
  renameInto(source: string, target: string): Promise<void>;
  /** fsync of a directory, shared by the renames into it. */
  syncDirectory(dir: string): Promise<void>;
}

/** A share file the store wrote (inode, size, mtime), which a newer version's copy replaces. */
export interface StoreFile {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** What became of one object's copy, recorded with the others of its batch in one commit. */
type Outcome = { bucket: string; key: string; etag: string } & (
  /** Renamed into place and fdatasynced. */
  | { kind: 'copied'; ino: number; mtimeMs: number }
  /** A local program wrote the path after the S3 write: its file stays, for the share to adopt. */
  | { kind: 'local' }
  /** The path cannot take a file (a directory, or a file where a directory of it should be). */
  | { kind: 'blob' }
);

/**
 * The share files of objects whose content is in SQLite (ObjectRecord.inline), written after the
 * commit that acknowledged them: a temporary file renamed into place (readers of the share never
 * see a partial file), the object's events released once it is there, then the copy fdatasynced.
 * A batch's directories are fsynced once and its copies' inodes and mtimes recorded in one commit:
 * until then the row says the copy is pending (file_ino NULL) and the row is the truth, so a crash
 * before it is repaired at startup by writing the copy again from the stored content (`recover`).
 *
 * The calls go to the thread pool, COPIES_IN_FLIGHT at a time: creating a file waits for the
 * filesystem's journal, which the event loop must not, and the pool keeps room for the WAL's
 * fdatasync that acknowledges writes. Only the last look at the path and the rename run on the
 * event loop, together, so that a local program's write cannot fall between them.
 *
 * One copy per object however often it was written meanwhile: the copy is of the row as it is
 * when its turn comes, under the key's lock, so it never lands after a delete or a newer write.
 */
export class ShareCopies {
  /** Objects to copy by `bucket/key`, with the events waiting for their file and the store's files the copy replaces. */
  private readonly pending = new Map<string, { bucket: string; key: string; events: number[]; replaces: StoreFile[] }>();
  /** Copies renamed into place and not recorded yet, by `bucket/key`: a newer version's copy replaces them too. */
  private readonly placed = new Map<string, StoreFile>();
  private running: Promise<void> | undefined;
  private roomWaiters: Array<() => void> = [];
  private readonly statements;

  constructor(private readonly context: ShareCopiesContext) {
    const db = context.store.db;
    const pendingRow = 'bucket = ? AND key = ? AND etag = ? AND inline = 1 AND blob IS NULL AND file_ino IS NULL';
    this.statements = {
      toCopy: db.prepare(`SELECT o.etag, o.last_modified, c.content FROM objects o JOIN object_contents c ON c.bucket = o.bucket AND c.key = o.key
        WHERE o.bucket = ? AND o.key = ? AND o.inline = 1 AND o.blob IS NULL AND o.file_ino IS NULL`),
      recordCopy: db.prepare(`UPDATE objects SET file_ino = ?, file_mtime_ms = ? WHERE ${pendingRow}`),
      // file_ino 0 matches no file: the share adopts the local program's file once it settles
      leaveLocalFile: db.prepare(`UPDATE objects SET file_ino = 0, file_mtime_ms = 0 WHERE ${pendingRow}`),
      keepAsBlob: db.prepare(`UPDATE objects SET blob = ? WHERE ${pendingRow}`),
      pendingCopies: db.prepare('SELECT bucket, key FROM objects WHERE inline = 1 AND blob IS NULL AND file_ino IS NULL'),
    };
  }

  /**
   * After the commit of a small object: its share file is to be written; `events` wait for it;
   * `replaces` is the previous version's file, if the store wrote it.
   */
  schedule(bucket: string, key: string, events: number[], replaces: StoreFile | undefined): void {
    const id = `${bucket}/${key}`;
    const waiting = this.pending.get(id);
    if (waiting) {
      waiting.events.push(...events);
      if (replaces) waiting.replaces.push(replaces);
    } else {
      this.pending.set(id, { bucket, key, events, replaces: replaces ? [replaces] : [] });
    }
    this.kick();
  }

  /** Resolves once fewer than MAX_PENDING objects wait for their copy. */
  room(): Promise<void> {
    if (this.pending.size < MAX_PENDING) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** At startup: writes the copies a crash left pending; resolves with how many were. */
  async recover(): Promise<number> {
    const rows = this.statements.pendingCopies.all() as Array<{ bucket: string; key: string }>;
    for (const { bucket, key } of rows) this.pending.set(`${bucket}/${key}`, { bucket, key, events: [], replaces: [] });
    await this.copyAll();
    return rows.length;
  }

  /** Waits until no copy is pending or under way. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.copyAll()
      .catch((error) => this.context.log.error({ err: error }, 'share copies failed; pending ones are written at the next start'))
      .finally(() => {
        this.running = undefined;
        if (this.pending.size) this.kick();
      });
  }

  private async copyAll(): Promise<void> {
    while (this.pending.size) {
      const batch = [...this.pending.values()].slice(0, BATCH);
      for (const { bucket, key } of batch) this.pending.delete(`${bucket}/${key}`);
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const wake of waiters) wake();
      const outcomes: Outcome[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: COPIES_IN_FLIGHT }, async () => {
        while (next < batch.length) {
          const { bucket, key, events, replaces } = batch[next++];
          const outcome = await this.copy(bucket, key, events, replaces);
          if (outcome) outcomes.push(outcome);
        }
      }));
      await this.record(outcomes);
    }
  }

  /** One object's copy, made durable; its events go once the file is in place (or could not be). */
  private async copy(bucket: string, key: string, events: number[], replaces: StoreFile[]): Promise<Outcome | undefined> {
    let written: { outcome: Outcome; fd?: number } | undefined;
    try {
      written = await this.context.locks.with(`${bucket}/${key}`, () => this.writeCopy(bucket, key, replaces));
    } catch (error) {
      this.context.log.warn({ err: error, bucket, key }, 'could not write the share file of an object held in the database; written at the next start');
      return undefined;
    } finally {
      this.context.changes.release(events);
    }
    if (written?.fd === undefined) return written?.outcome;
    try {
      await fdDatasync(written.fd);
      return written.outcome;
    } catch (error) {
      this.context.log.warn({ err: error, bucket, key }, 'could not sync the share file of an object; written again at the next start');
      return undefined;
    } finally {
      closeSync(written.fd);
    }
  }

  /**
   * Renames a copy of the row's content as it is now into place, its descriptor left open for the
   * fdatasync; undefined when there is nothing to copy (deleted, replaced by a file, copied already).
   */
  private async writeCopy(bucket: string, key: string, replaces: StoreFile[]): Promise<{ outcome: Outcome; fd?: number } | undefined> {
    const row = this.statements.toCopy.get(bucket, key) as { etag: string; last_modified: number; content: Buffer } | undefined;
    if (!row) return undefined;
    const unwritten = (kind: 'local' | 'blob') => ({ outcome: { bucket, key, etag: row.etag, kind } });
    if (!(await this.context.prepareSharePath(bucket, key))) return unwritten('blob');
    const target = this.context.sharePath(bucket, key);
    const placed = this.placed.get(`${bucket}/${key}`);
    const ours = placed ? [...replaces, placed] : replaces;
    if (this.writtenLocally(target, row.last_modified, ours)) return unwritten('local');
    const source = join(this.context.tmpDir, randomBytes(12).toString('hex'));
    const fd = await fdOpen(source, 'wx', 0o644);
    try {
      for (let offset = 0; offset < row.content.length;) offset += await fdWrite(fd, row.content, offset, row.content.length - offset, offset);
      // mtime = LastModified to the millisecond: a local rewrite within the same clock tick (file
      // times are that coarse) gets a time of its own, so the share tells it from the copy
      await fdTimes(fd, row.last_modified / 1000, row.last_modified / 1000);
      // reading the inode and closing a descriptor wait for no disk: not worth a thread-pool round trip
      const { ino, mtimeMs } = fstatSync(fd);
      // the look and the rename together, synchronously: no local write can come between them
      if (this.writtenLocally(target, row.last_modified, ours)) throw LOCAL_WRITE;
      try {
        renameSync(source, target);
      } catch (error) {
        // its directory went meanwhile (a delete removed it as empty)
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await this.context.renameInto(source, target);
      }
      this.placed.set(`${bucket}/${key}`, { ino, size: row.content.length, mtimeMs });
      return { outcome: { bucket, key, etag: row.etag, kind: 'copied', ino, mtimeMs }, fd };
    } catch (error) {
      closeSync(fd);
      await rm(source, { force: true });
      if (error === LOCAL_WRITE) return unwritten('local');
      // another key took the path meanwhile (`a` made a directory of `a/…`, or the reverse)
      if (PATH_TAKEN.has((error as NodeJS.ErrnoException).code ?? '')) return unwritten('blob');
      throw error;
    }
  }

  /**
   * Whether a local program wrote the path after the S3 write began (ctime, which no program can
   * set back; a tick of slack for the file clock): the later write wins, as when the file is
   * written before the answer. The store's own files (`ours`) are replaced whenever they were written.
   */
  private writtenLocally(target: string, lastModified: number, ours: StoreFile[]): boolean {
    const local = lstatSync(target, { throwIfNoEntry: false });
    if (!local?.isFile() || ours.some((file) => file.ino === local.ino && file.size === local.size && file.mtimeMs === local.mtimeMs)) return false;
    return local.ctimeMs >= lastModified - FILE_CLOCK_SLACK_MS;
  }

  /**
   * fsync of the batch's directories, then one commit records it: a copy's inode and mtime (from
   * then on it is the object's durable share file, told apart from a local program's), a local
   * program's file left in place, a key kept as a blob in SQLite only.
   */
  private async record(outcomes: Outcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    try {
      const copied = outcomes.filter((outcome) => outcome.kind === 'copied');
      for (const dir of new Set(copied.map((copy) => dirname(this.context.sharePath(copy.bucket, copy.key))))) {
        // gone: a delete emptied and removed it, and with it the copy, whose row is gone too
        await this.context.syncDirectory(dir).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'ENOENT') throw error; });
      }
      await this.context.store.commit.run(() => {
        for (const outcome of outcomes) {
          const id = `${outcome.bucket}/${outcome.key}`;
          // a newer version waits for its own copy, which will be the one recorded (and replaces this one)
          if (this.pending.has(id)) continue;
          this.placed.delete(id);
          const row = [outcome.bucket, outcome.key, outcome.etag];
          if (outcome.kind === 'copied') this.statements.recordCopy.run(outcome.ino, outcome.mtimeMs, ...row);
          else if (outcome.kind === 'local') this.statements.leaveLocalFile.run(...row);
          else this.statements.keepAsBlob.run(randomBytes(16).toString('hex'), ...row);
        }
      });
    } catch (error) {
      this.context.log.warn({ err: error }, 'could not record share copies; written again at the next start');
    }
  }
}

const PATH_TAKEN = new Set(['EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY']);
const LOCAL_WRITE = Symbol('a local program wrote the path');

const fdOpen = promisify(open);
const fdWrite = (fd: number, buffer: Buffer, offset: number, length: number, position: number) => new Promise<number>((resolve, reject) => {
  write(fd, buffer, offset, length, position, (error, written) => (error ? reject(error) : resolve(written)));
});
const fdTimes = promisify(futimes);
const fdDatasync = promisify(fdatasync);
