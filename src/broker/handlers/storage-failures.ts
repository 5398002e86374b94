import type { Logger } from 'pino';
import { steadyNow } from '../../steady-clock.js';
import { isStorageFailure } from '../../store/storage-errors.js';

/** At most one log line per this long: every client of a broker whose disk is full fails at each reconnect. */
const LOG_EVERY_MS = 60_000;

/**
 * A client request the store could not write (a full disk: the subscriptions of a persistent
 * session, a retained or queued message, its session state, or a message a durable subscriber
 * such as the sync outbox could not keep) ends in the client's connection being closed, nothing
 * acknowledged that was not stored; the client reconnects and sends it again.
 * That is an operator's problem, not the client's: said at error level (aedes' client errors are
 * otherwise a client's own, at debug), the first one and then once a minute with the count since,
 * and counted as closed for `storage_failed`.
 */
export class StorageFailures {
  private loggedAt: number | undefined;
  private unlogged = 0;

  constructor(private readonly log: Logger, private readonly count: () => void) {}

  /** Whether `error`, which closed the client's connection, was the store's; said and counted if so. */
  closedBy(clientId: string, error: Error): boolean {
    if (!isStorageFailure(error)) return false;
    this.count();
    const now = steadyNow();
    if (this.loggedAt !== undefined && now - this.loggedAt < LOG_EVERY_MS) {
      this.unlogged++;
      return true;
    }
    this.log.error({ clientId, err: error, ...(this.loggedAt === undefined ? {} : { closedSinceLastLog: this.unlogged }) },
      "could not store a client's request (its subscriptions, a message or its session): its connection is closed, nothing unstored acknowledged; the client sends it again when it reconnects");
    this.loggedAt = now;
    this.unlogged = 0;
    return true;
  }
}
