import type Database from 'better-sqlite3';

interface PendingWrite {
  write: () => unknown;
  resolve: (value: any) => void;
  reject: (error: unknown) => void;
  singleStatement: boolean;
}

export interface WriteOptions {
  /**
   * The write changes the database with one statement at most, after everything that may throw:
   * when it throws, it has changed nothing (SQLite undoes a failed statement by itself), so it
   * runs without a savepoint of its own — two statements fewer per write.
   */
  singleStatement?: boolean;
}

export interface CommitStats {
  transactions: number;
  writes: number;
  failedWrites: number;
  failedCommits: number;
}

/** Makes everything committed so far durable (fsync of the write-ahead log), off the main thread. */
export type SyncLog = (done: (error: Error | null) => void) => void;

/**
 * Group commit: every write queued during one event-loop tick runs in one
 * transaction at the next `setImmediate`, and its promise settles only after
 * COMMIT returned and, with `syncLog`, after an fsync of the log that started
 * after that COMMIT — so an acknowledgement sent from `.then()` is for data on
 * disk, and a burst of writes costs one fsync instead of one each.
 *
 * The fsync runs on libuv's thread pool, so the main thread never waits for
 * the disk; the writes queued meanwhile commit in one transaction once it is
 * done, and the next fsync covers them.
 *
 * A write must only touch the database (it may be replayed never, but it runs
 * inside a savepoint): if it throws, only its own changes are rolled back and
 * only its own promise rejects. A failure that ends the whole transaction (SQLite
 * rolls back by itself on a full disk or an I/O error) rejects the whole batch.
 *
 * A failed fsync is final: Linux may have dropped the log's unwritten pages and reports the
 * error once, so a later fsync that succeeds says nothing of them, and SQLite's recovery stops at
 * the first missing frame, losing what was committed after it too. Every write waiting, and every
 * one after, is refused, and `onSyncFailure` is told (the daemon exits, so that a restart recovers
 * from what is on disk).
 */
export class GroupCommit {
  private pending: PendingWrite[] = [];
  private scheduled = false;
  private readonly begin: Database.Statement;
  private readonly commitStatement: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackToSavepoint: Database.Statement;
  private idleWaiters: Array<() => void> = [];
  /** Committed transactions whose promises wait for the next fsync. */
  private unsynced: Array<(error: Error | null) => void> = [];
  private syncing = false;
  /** The failed sync of the log, after which nothing is committed. */
  private syncFailure: Error | undefined;
  readonly stats: CommitStats = { transactions: 0, writes: 0, failedWrites: 0, failedCommits: 0 };

  constructor(private readonly db: Database.Database, private readonly syncLog?: SyncLog, private readonly onSyncFailure?: (error: Error) => void) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commitStatement = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT group_write');
    this.release = db.prepare('RELEASE group_write');
    this.rollbackToSavepoint = db.prepare('ROLLBACK TO group_write');
  }

  /** Queues `write` for this tick's transaction; resolves with its result once committed. */
  run<T>(write: () => T, options?: WriteOptions): Promise<T> {
    if (this.syncFailure) return Promise.reject(this.syncFailure);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ write, resolve, reject, singleStatement: options?.singleStatement === true });
      this.scheduleFlush();
    });
  }

  /**
   * The next transaction at the next setImmediate; while the log is being synced, once that sync is
   * done: writes committed meanwhile would wait for the next sync anyway, and one transaction takes
   * them all (fewer pages written: the pages they share are written once).
   */
  private scheduleFlush(): void {
    if (this.scheduled || this.syncing) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Resolves when everything queued so far is committed and synced (or failed). */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Commits the queued writes now. Normally called from setImmediate. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) this.commitBatch(batch);
    this.wakeIdleWaiters();
  }

  private idle(): boolean {
    return !this.scheduled && this.pending.length === 0 && !this.syncing && this.unsynced.length === 0;
  }

  private wakeIdleWaiters(): void {
    if (!this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Starts an fsync for the transactions committed since the last one started, unless one is running. */
  private syncCommitted(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const settles = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    this.syncLog!((error) => {
      this.syncing = false;
      if (error) this.failSync(error);
      for (const settle of settles) settle(error);
      if (this.pending.length > 0) this.scheduleFlush();
      this.syncCommitted();
      this.wakeIdleWaiters();
    });
  }

  /** Refuses what waits and what comes (see the class comment), once. */
  private failSync(error: Error): void {
    if (this.syncFailure) return;
    this.syncFailure = error;
    const pending = this.pending;
    const unsynced = this.unsynced;
    this.pending = [];
    this.unsynced = [];
    for (const write of pending) write.reject(error);
    for (const settle of unsynced) settle(error);
    this.onSyncFailure?.(error);
  }

  private commitBatch(batch: PendingWrite[]): void {
    const outcomes: Array<{ ok: boolean; value: unknown }> = new Array(batch.length);
    const isolate = batch.length > 1;
    try {
      this.begin.run();
    } catch (error) {
      this.failAll(batch, error);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const savepoint = isolate && !batch[i].singleStatement;
      if (savepoint) this.savepoint.run();
      try {
        outcomes[i] = { ok: true, value: batch[i].write() };
        if (savepoint) this.release.run();
      } catch (error) {
        outcomes[i] = { ok: false, value: error };
        if (!this.db.inTransaction) {
          // SQLite rolled the whole transaction back (full disk, I/O error): the writes before this one are gone too.
          this.failAll(batch, error);
          return;
        }
        if (savepoint) {
          this.rollbackToSavepoint.run();
          this.release.run();
        }
      }
    }
    try {
      if (!isolate && !outcomes[0].ok) this.rollback.run();
      else this.commitStatement.run();
    } catch (error) {
      if (this.db.inTransaction) this.rollback.run();
      this.failAll(batch, error);
      return;
    }
    this.stats.transactions++;
    if (!this.syncLog) {
      this.settle(batch, outcomes, null);
      return;
    }
    this.unsynced.push((error) => this.settle(batch, outcomes, error));
    this.syncCommitted();
  }

  private settle(batch: PendingWrite[], outcomes: Array<{ ok: boolean; value: unknown }>, syncError: Error | null): void {
    if (syncError) {
      this.failAll(batch, syncError);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const outcome = outcomes[i];
      if (outcome.ok) {
        this.stats.writes++;
        batch[i].resolve(outcome.value);
      } else {
        this.stats.failedWrites++;
        batch[i].reject(outcome.value);
      }
    }
  }

  private failAll(batch: PendingWrite[], error: unknown): void {
    this.stats.failedCommits++;
    for (const pending of batch) pending.reject(error);
  }
}
