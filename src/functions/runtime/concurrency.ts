import type { SpareThreads } from './node-worker.js';

/** What the bound needs of a pool (pool.ts). */
export interface EnvironmentHolder {
  /** Its environments running, starting or idle. */
  readonly warm: number;
  /** Stops its idle environment unused the longest; false when it has none. */
  stopLeastRecentIdle(): boolean;
  /** When it went idle, that environment (undefined without one). */
  readonly oldestIdleSince: number | undefined;
  /** Starts the events waiting for an environment, now that one may start. */
  retryWaiting(): void;
}

/**
 * `functions.maxConcurrency`: the warm environments of all functions together (running, starting,
 * idle, and the spare threads), as Lambda's account concurrency bounds all of an account's functions
 * (TooManyRequestsException, Reason ConcurrentInvocationLimitExceeded). A function that needs a new
 * environment at the bound gets the room of a spare thread, else of the idle environment unused the
 * longest; with all of them busy a synchronous invoke is refused and an event waits. The functions
 * with events waiting take the next environment that finishes, in the order they began to wait, so
 * one function's invocations cannot keep another's events waiting for ever.
 */
export class ConcurrencyBound {
  private readonly holders = new Set<EnvironmentHolder>();
  /** Pools with events waiting for room, the longest waiting first. */
  private readonly waiting = new Set<EnvironmentHolder>();

  constructor(readonly max: number, private readonly spares: SpareThreads) {}

  add(holder: EnvironmentHolder): void {
    this.holders.add(holder);
  }

  /** A retired pool: it starts nothing any more. */
  delete(holder: EnvironmentHolder): void {
    this.holders.delete(holder);
    this.waiting.delete(holder);
  }

  /** Whether a spare thread may start: only into room nobody needs. */
  spareFits(): boolean {
    return this.waiting.size === 0 && this.warm < this.max;
  }

  /**
   * Room for one more environment of `holder`, made by stopping a spare thread or another idle
   * environment at the bound; false when every environment is busy. Functions already waiting go
   * first: a new one does not take the room they wait for.
   */
  makeRoom(holder: EnvironmentHolder): boolean {
    if (this.waiting.size > 0 && !this.waiting.has(holder)) return false;
    while (this.warm >= this.max) {
      if (this.spares.stopOne()) continue;
      if (!this.stopLeastRecentIdle()) return false;
    }
    return true;
  }

  /** `holder` has events waiting for room (makeRoom said no). */
  wait(holder: EnvironmentHolder): void {
    this.waiting.add(holder);
  }

  /** `holder` no longer waits (its events have all started). */
  done(holder: EnvironmentHolder): void {
    this.waiting.delete(holder);
  }

  /**
   * An environment of `from` finished its invocations: whether another function waits for room, which
   * the caller then gives (it stops the environment and calls `freed`) instead of keeping it idle. When
   * `from` is the first to wait, it keeps the environment for its own events and goes to the back.
   */
  shouldHandOver(from: EnvironmentHolder): boolean {
    const [first] = this.waiting;
    if (first !== from) return first !== undefined;
    this.waiting.delete(from);
    this.waiting.add(from);
    return false;
  }

  /**
   * Environments stopped or finished: the functions waiting start while there is room, the longest
   * waiting first; each goes to the back as it starts, so a function with many events cannot keep
   * another's waiting.
   */
  freed(): void {
    for (const holder of [...this.waiting]) {
      if (this.warm >= this.max) return;
      this.waiting.delete(holder);
      this.waiting.add(holder);
      holder.retryWaiting();
    }
  }

  /** Environments warm now, spare threads included. */
  get warm(): number {
    let total = this.spares.count();
    for (const holder of this.holders) total += holder.warm;
    return total;
  }

  private stopLeastRecentIdle(): boolean {
    let oldest: EnvironmentHolder | undefined;
    for (const holder of this.holders) {
      const since = holder.oldestIdleSince;
      if (since !== undefined && (!oldest || since < oldest.oldestIdleSince!)) oldest = holder;
    }
    return oldest?.stopLeastRecentIdle() ?? false;
  }
}
