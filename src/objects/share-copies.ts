import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { KeyLocks } from './key-locks.js';
import type { ChangeLog, ShareRenames } from './object-store.js';
import type { ObjectsThread } from './objects-thread.js';
import { ShareFileCalls } from './share-file-calls.js';
import type { CopyJob } from './share-copy-worker.js';
import type { StoreFile } from './share-paths.js';
import { sharePath } from './names.js';

/** Objects waiting for their copy; beyond it small writes wait (ShareCopies.room), so memory stays bounded. */
const MAX_PENDING = 1024;
/** Copies written but not yet synced and recorded; beyond it small writes wait too. */
const MAX_UNRECORDED = 4096;
/** Contents of scheduled copies kept in memory (the rest are read back from SQLite). */
const MAX_HELD_BYTES = 4 * 1024 * 1024;
/** Copies handed to the thread in one message. */
const BATCH = 128;
/**
 * At most one sync of the share's filesystem this often: a sync is a child process (`sync -f`,
 * ~5 ms of CPU here), so copies arriving meanwhile share the next one. A crash loses nothing by it:
 * copies not recorded yet are written again at startup.
 */
const SYNC_INTERVAL_MS = 200;
/**
 * After a copy could not be written or recorded (a full or read-only share, a worker that died),
 * the objects still pending are tried again after this long, doubling up to RETRY_MAX_MS while
 * they keep failing: a share that fills up gets its files once space returns, not at the next start.
 */
const RETRY_FIRST_MS = 5_000;
const RETRY_MAX_MS = 300_000;

export interface ShareCopiesContext {
  store: Store;
  locks: KeyLocks;
  changes: Pick<ChangeLog, 'release'>;
  /** Where temporary files are written (same filesystem as the share). */
  tmpDir: string;
  log: Logger;
  shareRoot: string;
  /** Told of each copy's rename before it, and when it did not happen. */
  renames: ShareRenames;
  /** Where the file system calls are made. */
  thread: ObjectsThread;
}

/**
 * What became of one object's copy, recorded with the others of its batch in one commit; `body`
 * (its content's row, one per write) tells the version, where two writes may share an ETag.
 */
type Outcome = { bucket: string; key: string; body: number } & (
  /** Renamed into place at `target`. */
  | { kind: 'copied'; target: string; ino: number; mtimeMs: number; ctimeMs: number }
  /** A local program wrote the path after the S3 write: its file stays, for the share to adopt. */
  | { kind: 'local' }
  /** The path cannot take a file (a directory, or a file where a directory of it should be). */
  | { kind: 'blob' }
);

/** An object whose share file is to be written. */
interface PendingCopy {
  bucket: string;
  key: string;
  /** Its events, released once the file is in place. */
  events: number[];
  /** The store's files at its path, which the copy replaces. */
  replaces: StoreFile[];
  /** The content committed, while memory allows (MAX_HELD_BYTES); used when still the row's (same ETag). */
  content?: { etag: string; data: Buffer };
  /** When its latest S3 write began (not known after a crash: its LastModified then). */
  writeBegan?: number;
  afterCrash?: boolean;
}

/** An object of a batch, its key held, and what is to be done with it. */
interface Prepared {
  bucket: string;
  key: string;
  events: number[];
  release: () => void;
  body?: number;
  size?: number;
  /** undefined: nothing to copy (deleted, replaced by a file, copied already) or the row could not be read. */
  job?: CopyJob;
  /** What the thread made of the job, to record after the next sync. */
  outcome?: Outcome;
}

/**
 * The share files of objects whose content is in SQLite (ObjectRecord.inline), written after the
 * commit that acknowledged them: a temporary file renamed into place (readers of the share never
 * see a partial file), the object's events released once it is there. Many copies are then made
 * durable by one sync of the filesystem, and their inodes and mtimes recorded in one commit: until
 * then the row says the copy is pending (file_ino NULL) and the row is the truth, so a crash before
 * it is repaired at startup by writing the copy again from the stored content (`recover`).
 *
 * The file system calls run in a worker thread (ShareCopyThread), a batch per message, under the
 * keys' locks held here: the copy is of the row as it is when its turn comes, so it never lands
 * after a delete or a newer write. One copy per object however often it was written meanwhile.
 */
export class ShareCopies {
  /** Objects to copy by `bucket/key`, with the events waiting for their file and the store's files the copy replaces. */
  private readonly pending = new Map<string, PendingCopy>();
  /** Bytes of `content` held by pending copies. */
  private heldBytes = 0;
  /** Copies renamed into place and not recorded yet, by `bucket/key`: a newer version's copy replaces them too. */
  private readonly placed = new Map<string, StoreFile>();
  /** Outcomes waiting for the next sync and commit. */
  private unrecorded: Outcome[] = [];
  private running: Promise<void> | undefined;
  private recording: Promise<void> | undefined;
  private lastSyncAt = 0;
  private roomWaiters: Array<() => void> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /** The last row of the page of pending rows scheduled last, while more may follow it. */
  private pendingRowsAfter: { bucket: string; key: string } | undefined;
  private stopping = false;
  private retryDelayMs = RETRY_FIRST_MS;
  private readonly files: ShareFileCalls;
  /** Temporary file names: a random prefix per run and a counter. */
  private readonly tempPrefix = randomBytes(6).toString('hex');
  private tempCounter = 0;
  private readonly statements;

  constructor(private readonly context: ShareCopiesContext) {
    this.files = new ShareFileCalls(context.thread);
    const db = context.store.db;
    const pendingRow = 'bucket = ? AND key = ? AND body = ? AND inline = 1 AND blob IS NULL AND file_ino IS NULL';
    this.statements = {
      toCopy: db.prepare('SELECT etag, last_modified, body FROM objects WHERE bucket = ? AND key = ? AND inline = 1 AND blob IS NULL AND file_ino IS NULL'),
      content: db.prepare('SELECT content FROM object_bodies WHERE id = ?'),
      recordCopy: db.prepare(`UPDATE objects SET file_ino = ?, file_mtime_ms = ?, file_ctime_ms = ? WHERE ${pendingRow}`),
      // file_ino 0 matches no file: the share adopts the local program's file once it settles
      leaveLocalFile: db.prepare(`UPDATE objects SET file_ino = 0, file_mtime_ms = 0 WHERE ${pendingRow}`),
      keepAsBlob: db.prepare(`UPDATE objects SET blob = ? WHERE ${pendingRow}`),
      // a page of them in key order, from the partial index objects_pending_copies
      pendingCopies: db.prepare(`SELECT bucket, key FROM objects WHERE inline = 1 AND blob IS NULL AND file_ino IS NULL AND (bucket, key) > (?, ?)
        ORDER BY bucket, key LIMIT ${MAX_PENDING}`),
      countPendingCopies: db.prepare('SELECT count(*) AS count FROM objects WHERE inline = 1 AND blob IS NULL AND file_ino IS NULL'),
    };
  }

  /** The copy of the key's small object renamed into place and not recorded yet: the store's file, which a newer write replaces. */
  placedFile(bucket: string, key: string): StoreFile | undefined {
    return this.placed.get(`${bucket}/${key}`);
  }

  /**
   * After the commit of a small object: its share file is to be written; `events` wait for it;
   * `replaces` is the previous version's file, if the store wrote it.
   */
  schedule(bucket: string, key: string, events: number[], replaces: StoreFile | undefined, content: { etag: string; data: Buffer }, writeBegan: number): void {
    const id = `${bucket}/${key}`;
    let waiting = this.pending.get(id);
    if (waiting) {
      waiting.events.push(...events);
      if (replaces) waiting.replaces.push(replaces);
      this.letGo(waiting);
    } else {
      waiting = { bucket, key, events, replaces: replaces ? [replaces] : [] };
      this.pending.set(id, waiting);
    }
    waiting.writeBegan = writeBegan;
    if (this.heldBytes + content.data.length <= MAX_HELD_BYTES) {
      waiting.content = content;
      this.heldBytes += content.data.length;
    }
    this.kick();
  }

  private letGo(copy: PendingCopy): void {
    if (copy.content) this.heldBytes -= copy.content.data.length;
    copy.content = undefined;
  }

  /** Resolves once fewer than MAX_PENDING objects wait for their copy and fewer than MAX_UNRECORDED for their record. */
  room(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** At startup: writes the copies a crash left pending; resolves with how many were. */
  async recover(): Promise<number> {
    const count = this.pendingCount();
    this.schedulePendingRows();
    // every page of them: the next is scheduled as one is done
    await this.settled();
    return count;
  }

  /** Objects held in the database whose share file is not written (and recorded) yet. */
  pendingCount(): number {
    return (this.statements.countPendingCopies.get() as { count: number }).count;
  }

  /**
   * At stop: waits for the copies under way (what is left is written at the next start); no more
   * pages of pending rows, no retry.
   */
  async drain(): Promise<void> {
    this.stopping = true;
    this.pendingRowsAfter = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.settled();
    this.files.stop();
  }

  /** Resolves once no copy is pending, under way or unrecorded. */
  private async settled(): Promise<void> {
    while (this.running || this.recording) await (this.running ?? this.recording);
  }

  /**
   * Schedules the copies of the rows still pending (file_ino NULL) not already scheduled, a page of
   * MAX_PENDING at a time (the next once these are done: memory stays bounded however many a full
   * share left behind). As after a crash: the store's own copy may be in place without its record,
   * told by its mtime.
   */
  private schedulePendingRows(after = this.pendingRowsAfter): void {
    const rows = this.statements.pendingCopies.all(after?.bucket ?? '', after?.key ?? '') as Array<{ bucket: string; key: string }>;
    for (const { bucket, key } of rows) {
      const id = `${bucket}/${key}`;
      if (!this.pending.has(id)) this.pending.set(id, { bucket, key, events: [], replaces: [], afterCrash: true });
    }
    this.pendingRowsAfter = rows.length === MAX_PENDING ? rows[rows.length - 1] : undefined;
    this.kick();
  }

  /** A copy failed to be written or recorded: its row stays pending, and is tried again later. */
  private retryLater(): void {
    if (this.retryTimer || this.stopping) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // the rows of copies under way are pending too: only once none is
      if (this.running || this.recording) return this.retryLater();
      this.retryDelayMs = Math.min(RETRY_MAX_MS, this.retryDelayMs * 2);
      this.schedulePendingRows(undefined);
    }, this.retryDelayMs).unref();
  }

  private hasRoom(): boolean {
    return this.pending.size < MAX_PENDING && this.unrecorded.length < MAX_UNRECORDED;
  }

  private wakeRoomWaiters(): void {
    if (!this.hasRoom()) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.copyAll()
      .catch((error) => {
        this.context.log.error({ err: error }, 'share copies failed; pending ones are tried again later');
        this.retryLater();
      })
      .finally(() => {
        this.running = undefined;
        if (this.pending.size) this.kick();
        else if (this.pendingRowsAfter) this.schedulePendingRows();
      });
  }

  private async copyAll(): Promise<void> {
    while (this.pending.size) {
      // taken out first: a key written again meanwhile is pending again, for a later batch
      const items = [...this.pending.values()].slice(0, BATCH);
      for (const item of items) this.pending.delete(`${item.bucket}/${item.key}`);
      const batch: Prepared[] = [];
      for (const item of items) {
        const release = await this.context.locks.acquire(`${item.bucket}/${item.key}`);
        batch.push({ bucket: item.bucket, key: item.key, events: item.events, release });
      }
      // the batch's rows read in one transaction: SQLite locks the database once, where a read of its
      // own costs four fcntl calls
      this.context.store.db.transaction(() => batch.forEach((prepared, index) => {
        try {
          this.prepare(prepared, items[index]);
        } catch (error) {
          this.context.log.warn({ err: error, bucket: prepared.bucket, key: prepared.key }, 'could not write the share file of an object held in the database; written at the next start');
        }
      }))();
      this.wakeRoomWaiters();
      const jobs = batch.filter((prepared) => prepared.job);
      for (const prepared of jobs) this.context.renames.renaming(prepared.job!.target);
      const results = jobs.length === 0 ? [] : await this.files.copy(this.context.shareRoot, jobs.map((prepared) => prepared.job!)).catch((error: Error) => {
        this.context.log.warn({ err: error }, 'could not write share files of objects held in the database; tried again later');
        this.retryLater();
        return [];
      });
      jobs.forEach((prepared, index) => {
        const result = results[index];
        if (result?.kind !== 'copied') this.context.renames.notRenamed(prepared.job!.target);
        if (!result) return;
        const object = { bucket: prepared.bucket, key: prepared.key, body: prepared.body! };
        if (result.kind === 'copied') {
          this.placed.set(`${prepared.bucket}/${prepared.key}`, { ino: result.ino, size: prepared.size!, mtimeMs: result.mtimeMs });
          prepared.outcome = { ...object, kind: 'copied', target: prepared.job!.target, ino: result.ino, mtimeMs: result.mtimeMs, ctimeMs: result.ctimeMs };
        } else if (result.kind === 'failed') {
          this.context.log.warn({ bucket: prepared.bucket, key: prepared.key, error: result.message }, 'could not write the share file of an object held in the database; tried again later');
          this.retryLater();
        } else {
          prepared.outcome = { ...object, kind: result.kind };
        }
      });
      for (const prepared of batch) {
        prepared.release();
        this.context.changes.release(prepared.events);
        if (prepared.outcome) this.unrecorded.push(prepared.outcome);
      }
      this.startRecording();
    }
  }

  /** Under the key's lock: the copy to write of the row as it is now, if it is still to be copied. */
  private prepare(prepared: Prepared, item: PendingCopy): void {
    const { bucket, key } = prepared;
    const held = item.content;
    this.letGo(item);
    const row = this.statements.toCopy.get(bucket, key) as { etag: string; last_modified: number; body: number } | undefined;
    // deleted, replaced by a file, or copied already
    if (!row) return;
    // the held content is copied: its memory goes to the thread, and the request's buffers may share it
    const content = held?.etag === row.etag ? new Uint8Array(held.data) : (this.statements.content.get(row.body) as { content: Buffer }).content;
    prepared.body = row.body;
    prepared.size = content.length;
    const placed = this.placed.get(`${bucket}/${key}`);
    prepared.job = {
      target: sharePath(this.context.shareRoot, bucket, key),
      temp: join(this.context.tmpDir, `${this.tempPrefix}-${(this.tempCounter++).toString(36)}`),
      content,
      lastModified: row.last_modified,
      writeBegan: item.writeBegan ?? row.last_modified,
      ours: placed ? [...item.replaces, placed] : item.replaces,
      afterCrash: item.afterCrash ?? false,
    };
  }

  private startRecording(): void {
    if (this.recording || this.unrecorded.length === 0) return;
    this.recording = this.syncAndRecord()
      .catch((error) => {
        this.context.log.warn({ err: error }, 'could not record share copies; written again later');
        this.retryLater();
      })
      .finally(() => {
        this.recording = undefined;
        this.wakeRoomWaiters();
        this.startRecording();
      });
  }

  /**
   * One sync of the share's filesystem for the copies placed so far (at most one every
   * SYNC_INTERVAL_MS), then one commit records them: a copy's inode and mtime (from then on it is
   * the object's durable share file, told apart from a local program's), a local program's file
   * left in place, a key kept as a blob in SQLite only.
   */
  private async syncAndRecord(): Promise<void> {
    // the monotonic clock: a wall clock stepped back a day made this wait a day, and every small PUT with it
    const wait = this.lastSyncAt + SYNC_INTERVAL_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const outcomes = this.unrecorded;
    this.unrecorded = [];
    this.lastSyncAt = performance.now();
    const copied = outcomes.filter((outcome) => outcome.kind === 'copied');
    if (copied.length) {
      await this.files.sync(this.context.tmpDir, copied.map((outcome) => outcome.target)).catch((error) => {
        // their rows stay pending: the copies are written again (retryLater)
        for (const outcome of copied) this.placed.delete(`${outcome.bucket}/${outcome.key}`);
        throw error;
      });
    }
    await this.context.store.commit.run(() => {
      const recorded = new Set<string>();
      // the latest outcome of a key is the one that counts
      for (const outcome of outcomes.reverse()) {
        const id = `${outcome.bucket}/${outcome.key}`;
        // a newer version waits for its own copy, which will be the one recorded (and replaces this one)
        if (recorded.has(id) || this.pending.has(id)) continue;
        recorded.add(id);
        const row = [outcome.bucket, outcome.key, outcome.body];
        const { changes } = outcome.kind === 'copied' ? this.statements.recordCopy.run(outcome.ino, outcome.mtimeMs, outcome.ctimeMs, ...row)
          : outcome.kind === 'local' ? this.statements.leaveLocalFile.run(...row)
            : this.statements.keepAsBlob.run(randomBytes(16).toString('hex'), ...row);
        // A newer write's copy, pending, is still to replace the file placed: it stays the store's
        // until then (else it looks like a local program's, written after that write, and is kept).
        if (changes > 0 || this.statements.toCopy.get(outcome.bucket, outcome.key) === undefined) this.placed.delete(id);
      }
    });
    // copies go through again: the next failure is tried again soon
    if (!this.retryTimer) this.retryDelayMs = RETRY_FIRST_MS;
  }
}
