import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Store } from '../store/store.js';

/** Where an asynchronous event came from. */
export type EventSource = 'invoke' | 'mqtt' | 'replay' | 'schedule' | 's3' | 'destination';
export type DeadLetterReason = 'RetriesExhausted' | 'EventAgeExceeded' | 'RecursiveLoop';

export interface ErrorSummary {
  errorType: string;
  errorMessage: string;
}

/** A row of `function_events`: an accepted asynchronous event not yet run to success or dead-lettered. */
export interface QueuedEvent {
  id: number;
  name: string;
  /** JSON text. */
  event: string;
  clientContext?: unknown;
  /** The alias or version it was invoked with; none: $LATEST. */
  qualifier?: string;
  source: EventSource;
  enqueuedAt: number;
  attempts: number;
  nextAttemptAt: number;
  lastError?: ErrorSummary;
  /** Invocations before this one in its chain of destination records: 0 for an event from anywhere else. */
  hops: number;
  /** The awsRequestId of each of its attempts, given when it was accepted. */
  requestId: string;
}

/** A row of `function_dead_letters`, as listed and as published on `$outpost/dlq/{function}`. */
export interface DeadLetter {
  id: number;
  function: string;
  event: unknown;
  clientContext?: unknown;
  qualifier?: string;
  source: EventSource;
  enqueuedAt: number;
  failedAt: number;
  attempts: number;
  reason: DeadLetterReason;
  errorType: string;
  errorMessage: string;
}

interface EventRow {
  id: number; name: string; event: string; client_context: string | null; qualifier: string | null; source: EventSource; enqueued_at: number;
  attempts: number; next_attempt_at: number; last_error: string | null; hops: number; request_id: string;
}
interface DeadLetterRow {
  id: number; name: string; event: string; client_context: string | null; qualifier: string | null; source: EventSource; enqueued_at: number;
  attempts: number; reason: DeadLetterReason; error_type: string; error_message: string; failed_at: number;
}

/**
 * Prepared statements over the asynchronous queue and the dead-letter queue (migration 2 of the
 * functions service). Reads run directly; the methods marked so run only inside a group-commit write.
 */
export class AsyncEventStore {
  private readonly insertEvent: Database.Statement;
  private readonly selectEvent: Database.Statement<[number], EventRow>;
  private readonly selectEventBytes: Database.Statement<[number], { bytes: number }>;
  private readonly selectPending: Database.Statement<[], Pick<EventRow, 'id' | 'name' | 'next_attempt_at' | 'enqueued_at'>>;
  private readonly deleteEvent: Database.Statement<[number]>;
  private readonly updateFailed: Database.Statement;
  private readonly deleteEventsOf: Database.Statement<[string]>;
  private readonly insertDeadLetter: Database.Statement;
  private readonly trimDeadLetters: Database.Statement;
  private readonly selectDeadLetters: Database.Statement<[number, number], DeadLetterRow>;
  private readonly selectDeadLettersOf: Database.Statement<[string, number, number], DeadLetterRow>;
  private readonly selectDeadLetter: Database.Statement<[number], DeadLetterRow>;
  private readonly deleteDeadLetter: Database.Statement<[number]>;
  private readonly deleteAllDeadLetters: Database.Statement<[]>;
  private readonly deleteDeadLettersOf: Database.Statement<[string]>;
  private readonly countDeadLetters: Database.Statement<[], { n: number }>;
  private readonly countDeadLettersOf: Database.Statement<[string], { n: number }>;
  private readonly newestDeadLetter: Database.Statement<[], { id: number | null }>;
  private readonly newestDeadLetterOf: Database.Statement<[string], { id: number | null }>;

  constructor(store: Store) {
    const db = store.db;
    this.insertEvent = db.prepare(`INSERT INTO function_events (name, event, client_context, qualifier, source, enqueued_at, next_attempt_at, hops, request_id)
      VALUES (@name, @event, @clientContext, @qualifier, @source, @now, @now, @hops, @requestId)`);
    this.selectEvent = db.prepare('SELECT * FROM function_events WHERE id = ?');
    // octet_length: without reading the event itself
    this.selectEventBytes = db.prepare('SELECT octet_length(event) AS bytes FROM function_events WHERE id = ?');
    this.selectPending = db.prepare('SELECT id, name, next_attempt_at, enqueued_at FROM function_events ORDER BY name, next_attempt_at, id');
    this.deleteEvent = db.prepare('DELETE FROM function_events WHERE id = ?');
    this.updateFailed = db.prepare('UPDATE function_events SET attempts = @attempts, next_attempt_at = @due, last_error = @error WHERE id = @id');
    this.deleteEventsOf = db.prepare('DELETE FROM function_events WHERE name = ?');
    this.insertDeadLetter = db.prepare(`INSERT INTO function_dead_letters
      (name, event, client_context, qualifier, source, enqueued_at, attempts, reason, error_type, error_message, failed_at)
      VALUES (@name, @event, @clientContext, @qualifier, @source, @enqueuedAt, @attempts, @reason, @errorType, @errorMessage, @now) RETURNING id`);
    // Keeps the newest `keep` entries of a function.
    this.trimDeadLetters = db.prepare(`DELETE FROM function_dead_letters WHERE name = @name AND id <= COALESCE(
      (SELECT id FROM function_dead_letters WHERE name = @name ORDER BY id DESC LIMIT 1 OFFSET @keep), -1)`);
    this.selectDeadLetters = db.prepare('SELECT * FROM function_dead_letters WHERE id > ? ORDER BY id LIMIT ?');
    this.selectDeadLettersOf = db.prepare('SELECT * FROM function_dead_letters WHERE name = ? AND id > ? ORDER BY id LIMIT ?');
    this.selectDeadLetter = db.prepare('SELECT * FROM function_dead_letters WHERE id = ?');
    this.deleteDeadLetter = db.prepare('DELETE FROM function_dead_letters WHERE id = ?');
    this.deleteAllDeadLetters = db.prepare('DELETE FROM function_dead_letters');
    this.deleteDeadLettersOf = db.prepare('DELETE FROM function_dead_letters WHERE name = ?');
    this.countDeadLetters = db.prepare('SELECT COUNT(*) AS n FROM function_dead_letters');
    this.countDeadLettersOf = db.prepare('SELECT COUNT(*) AS n FROM function_dead_letters WHERE name = ?');
    this.newestDeadLetter = db.prepare('SELECT MAX(id) AS id FROM function_dead_letters');
    this.newestDeadLetterOf = db.prepare('SELECT MAX(id) AS id FROM function_dead_letters WHERE name = ?');
  }

  /** Write: records an accepted event, due now; returns its id. */
  insert(name: string, event: string, clientContext: unknown, qualifier: string | undefined, source: EventSource, now: number, requestId: string, hops = 0): number {
    const clientContextText = clientContext === undefined ? null : JSON.stringify(clientContext);
    return Number(this.insertEvent.run({ name, event, clientContext: clientContextText, qualifier: qualifier ?? null, source, now, hops, requestId }).lastInsertRowid);
  }

  get(id: number): QueuedEvent | undefined {
    const row = this.selectEvent.get(id);
    return row && toEvent(row);
  }

  /** The size of a queued event's payload in bytes; undefined once it is gone. */
  eventBytes(id: number): number | undefined {
    return this.selectEventBytes.get(id)?.bytes;
  }

  /** Every queued event, for recovery at start (bounded by `functions.queueLength` per function). */
  pending(): Array<{ id: number; name: string; due: number; enqueuedAt: number }> {
    return this.selectPending.all().map((row) => ({ id: row.id, name: row.name, due: row.next_attempt_at, enqueuedAt: row.enqueued_at }));
  }

  /** Write: the event succeeded. */
  delete(id: number): void {
    this.deleteEvent.run(id);
  }

  /** Write: an attempt failed; the next is due at `due`. */
  failed(id: number, attempts: number, due: number, error: ErrorSummary): void {
    this.updateFailed.run({ id, attempts, due, error: JSON.stringify(error) });
  }

  /** Write: the queued events of a removed function. */
  removeFunction(name: string): void {
    this.deleteEventsOf.run(name);
  }

  /**
   * Write: moves an event to the dead-letter queue, keeping the newest `keep` entries of its
   * function. Undefined when the event is gone (its function was removed meanwhile).
   */
  deadLetter(event: QueuedEvent, reason: DeadLetterReason, error: ErrorSummary, keep: number, now: number): { letter: DeadLetter; trimmed: number } | undefined {
    if (this.deleteEvent.run(event.id).changes === 0) return undefined;
    const { id } = this.insertDeadLetter.get({
      name: event.name, event: event.event, clientContext: event.clientContext === undefined ? null : JSON.stringify(event.clientContext),
      qualifier: event.qualifier ?? null, source: event.source, enqueuedAt: event.enqueuedAt, attempts: event.attempts, reason,
      errorType: error.errorType, errorMessage: error.errorMessage, now,
    }) as { id: number };
    const trimmed = this.trimDeadLetters.run({ name: event.name, keep }).changes;
    return { letter: toDeadLetter(this.selectDeadLetter.get(id)!), trimmed };
  }

  /**
   * Dead letters after `afterId`, oldest first (of one function): at most `limit`, and none past the
   * one that brings the events read to `maxEventBytes` (the first is always read). An event may be
   * 1 MiB, and a function keeps 1,000: a page by count alone could outgrow the daemon's heap.
   * `more`: letters are left after the page.
   */
  deadLetterPage(name: string | undefined, afterId: number, limit: number, maxEventBytes: number): { letters: DeadLetter[]; more: boolean } {
    const rows = name === undefined ? this.selectDeadLetters.iterate(afterId, limit + 1) : this.selectDeadLettersOf.iterate(name, afterId, limit + 1);
    const letters: DeadLetter[] = [];
    let eventBytes = 0;
    for (const row of rows) {
      if (letters.length === limit || (letters.length > 0 && eventBytes + row.event.length > maxEventBytes)) return { letters, more: true };
      eventBytes += row.event.length;
      letters.push(toDeadLetter(row));
    }
    return { letters, more: false };
  }

  /** How many dead letters there are (of one function). */
  deadLetterCount(name?: string): number {
    return (name === undefined ? this.countDeadLetters.get() : this.countDeadLettersOf.get(name))!.n;
  }

  /** The id of the newest dead letter (of one function); 0 when there is none. */
  newestDeadLetterId(name: string | undefined): number {
    return (name === undefined ? this.newestDeadLetter.get() : this.newestDeadLetterOf.get(name))!.id ?? 0;
  }

  getDeadLetter(id: number): DeadLetter | undefined {
    const row = this.selectDeadLetter.get(id);
    return row && toDeadLetter(row);
  }

  /** Write: puts a dead letter back on the queue as a fresh event (new id, request id, age and attempts, a chain of its own). */
  replay(letter: DeadLetter, now: number): number | undefined {
    if (this.deleteDeadLetter.run(letter.id).changes === 0) return undefined;
    return this.insert(letter.function, JSON.stringify(letter.event), letter.clientContext, letter.qualifier, 'replay', now, randomUUID());
  }

  /** Write: deletes the dead letters of one function, or all; returns how many. */
  purge(name: string | undefined): number {
    return (name === undefined ? this.deleteAllDeadLetters.run() : this.deleteDeadLettersOf.run(name)).changes;
  }
}

function toEvent(row: EventRow): QueuedEvent {
  return {
    id: row.id, name: row.name, event: row.event, source: row.source, enqueuedAt: row.enqueued_at, attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at, hops: row.hops, requestId: row.request_id,
    ...(row.client_context !== null ? { clientContext: JSON.parse(row.client_context) as unknown } : {}),
    ...(row.qualifier !== null ? { qualifier: row.qualifier } : {}),
    ...(row.last_error !== null ? { lastError: JSON.parse(row.last_error) as ErrorSummary } : {}),
  };
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id, function: row.name, event: JSON.parse(row.event) as unknown,
    ...(row.client_context !== null ? { clientContext: JSON.parse(row.client_context) as unknown } : {}),
    ...(row.qualifier !== null ? { qualifier: row.qualifier } : {}),
    source: row.source, enqueuedAt: row.enqueued_at, failedAt: row.failed_at, attempts: row.attempts, reason: row.reason,
    errorType: row.error_type, errorMessage: row.error_message,
  };
}
