import { reservedTotal, setAside } from '../reservations.js';
import type { SpareThreads } from './node-worker.js';

/** What the bound needs of a pool (pool.ts). */
export interface EnvironmentHolder {
  /** The function it runs a version of. */
  readonly functionName: string;
  /** Its environments running or starting. */
  readonly busy: number;
  /** Its environments running, starting or idle. */
  readonly warm: number;
  /** Stops its idle environment unused the longest; false when it has none. */
  stopLeastRecentIdle(): boolean;
  /** When it went idle, that environment (undefined without one). */
  readonly oldestIdleSince: number | undefined;
  /** Starts the events waiting for an environment, now that one may start. */
  retryWaiting(): void;
}

/** The share of the bound a function's environments count against: its reservation's, or (undefined) the unreserved pool's. */
type Share = string | undefined;

/** What makes room for one more environment: there is room, a spare thread to stop, or a holder's idle environment to stop. */
type Step = 'room' | 'spare' | EnvironmentHolder;

/**
 * `functions.maxConcurrency`: the warm environments of all functions together (running, starting,
 * idle, and the spare threads), as Lambda's account concurrency bounds all of an account's functions
 * (TooManyRequestsException, Reason ConcurrentInvocationLimitExceeded).
 *
 * As on Lambda, a function's ReservedConcurrentExecutions is set aside out of the bound: its
 * environments, of all its versions together, count against its reservation, which no other
 * function uses; the functions without one (and the spare threads) share the rest, the unreserved
 * pool. Reservations that do not fit (see reservations.ts: setAside) draw on the unreserved pool.
 *
 * A function that needs a new environment with its share or the bound full gets the room of a spare
 * thread, else of the idle environment unused the longest of its share (when the share is full) or
 * of a share over its size (when only the bound is: a reservation set aside while other functions
 * held its room); busy ones are not interrupted, so a synchronous invoke is refused and an event
 * waits. The functions with events waiting take the next environment that finishes and gives them
 * room, in the order they began to wait, so one function's invocations cannot keep another's
 * events waiting for ever.
 */
export class ConcurrencyBound {
  private readonly holders = new Set<EnvironmentHolder>();
  /** Pools with events waiting for room, the longest waiting first. */
  private readonly waiting = new Set<EnvironmentHolder>();
  /** Pools with events waiting for their function's reservation, which its other versions' environments hold. */
  private readonly waitingForFunction = new Set<EnvironmentHolder>();
  /** Function name → ReservedConcurrentExecutions of its `$LATEST`. */
  private reservations = new Map<string, number>();
  /** Of those, the ones set aside out of the bound. */
  private reserved = new Map<string, number>();

  constructor(readonly max: number, private readonly spares: SpareThreads, reservations: ReadonlyMap<string, number>) {
    this.setReservations(new Map(reservations));
  }

  add(holder: EnvironmentHolder): void {
    this.holders.add(holder);
  }

  /** A retired pool: it starts nothing any more. */
  delete(holder: EnvironmentHolder): void {
    this.holders.delete(holder);
    this.done(holder);
  }

  /** A function's reservation changed (a deploy, a rollback, a removal): the shares are cut again. */
  reserve(name: string, reservation: number | undefined): void {
    const reservations = new Map(this.reservations);
    if (reservation === undefined) reservations.delete(name);
    else reservations.set(name, reservation);
    this.setReservations(reservations);
    this.freed();
  }

  /** The function's ReservedConcurrentExecutions, which bounds its environments of all versions together. */
  reservation(name: string): number | undefined {
    return this.reservations.get(name);
  }

  /** The function's environments of all its versions, busy ones only or warm ones too. */
  environmentsOf(name: string, counted: 'busy' | 'warm'): number {
    let total = 0;
    for (const holder of this.holders) if (holder.functionName === name) total += holder[counted];
    return total;
  }

  /** The environments of the bound not set aside for a function's reservation. */
  get unreserved(): number {
    return this.sizeOf(undefined);
  }

  /** Whether a spare thread may start: only into unreserved room nobody needs. */
  spareFits(): boolean {
    return this.waiting.size === 0 && this.warm < this.max && this.warmOf(undefined) < this.unreserved;
  }

  /**
   * Room for one more environment of `holder`, made by stopping a spare thread or an idle
   * environment; false when those it may stop are all busy. Functions of the same share already
   * waiting go first: a new one does not take the room they wait for.
   */
  makeRoom(holder: EnvironmentHolder): boolean {
    const share = this.shareOf(holder.functionName);
    if (!this.waiting.has(holder) && [...this.waiting].some((waiter) => this.shareOf(waiter.functionName) === share)) return false;
    for (let step = this.nextStep(share); step !== undefined; step = this.nextStep(share)) {
      if (step === 'room') return true;
      if (!(step === 'spare' ? this.spares.stopOne() : step.stopLeastRecentIdle())) return false;
    }
    return false;
  }

  /** `holder` has events waiting for room (makeRoom said no). */
  wait(holder: EnvironmentHolder): void {
    this.waitingForFunction.delete(holder);
    this.waiting.add(holder);
  }

  /** `holder` has events waiting for its function's environments (of any version) to go below its reservation. */
  waitForFunction(holder: EnvironmentHolder): void {
    // not for room: functions of its share are not kept behind it
    this.waiting.delete(holder);
    this.waitingForFunction.add(holder);
  }

  /** `holder` no longer waits (its events have all started, or it waits for its own environments). */
  done(holder: EnvironmentHolder): void {
    this.waiting.delete(holder);
    this.waitingForFunction.delete(holder);
  }

  /**
   * An environment of `from` finished its invocations: whether another function waits for the room
   * stopping it would give, which the caller then gives (it stops the environment and calls `freed`)
   * instead of keeping it idle. When `from` comes first among those, it keeps the environment for its
   * own events and goes to the back.
   */
  shouldHandOver(from: EnvironmentHolder): boolean {
    const share = this.shareOf(from.functionName);
    const overSize = this.warmOf(share) > this.sizeOf(share);
    for (const waiter of this.waiting) {
      if (waiter === from) {
        this.waiting.delete(from);
        this.waiting.add(from);
        return false;
      }
      const theirs = this.shareOf(waiter.functionName);
      if (theirs === share || (overSize && this.warmOf(theirs) < this.sizeOf(theirs))) return true;
    }
    return false;
  }

  /**
   * Environments stopped or finished, or the shares changed: the pools whose function is below its
   * reservation again, and the functions waiting that room can be made for, start, the longest waiting
   * first; each goes to the back as it starts, so a function with many events cannot keep another's
   * waiting.
   */
  freed(): void {
    for (const holder of [...this.waitingForFunction]) {
      const reservation = this.reservations.get(holder.functionName);
      if (reservation !== undefined && this.environmentsOf(holder.functionName, 'busy') >= reservation) continue;
      this.waitingForFunction.delete(holder);
      holder.retryWaiting();
    }
    for (const holder of [...this.waiting]) {
      if (this.nextStep(this.shareOf(holder.functionName)) === undefined) continue;
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

  private setReservations(reservations: Map<string, number>): void {
    this.reservations = reservations;
    this.reserved = setAside(reservations, this.max);
  }

  private shareOf(name: string): Share {
    return this.reserved.has(name) ? name : undefined;
  }

  private sizeOf(share: Share): number {
    return share === undefined ? this.max - reservedTotal(this.reserved) : this.reserved.get(share)!;
  }

  /** The environments counted against a share; the spare threads are the unreserved pool's. */
  private warmOf(share: Share): number {
    let total = share === undefined ? this.spares.count() : 0;
    for (const holder of this.holders) if (this.shareOf(holder.functionName) === share) total += holder.warm;
    return total;
  }

  /**
   * What gives one more environment of `share` room: with the share full, stopping a spare thread
   * (the unreserved pool's) or the share's idle environment unused the longest; with only the bound
   * full, stopping a spare or the idle environment unused the longest of a share over its size.
   * Undefined when only busy environments are left to stop.
   */
  private nextStep(share: Share): Step | undefined {
    const shareFull = this.warmOf(share) >= this.sizeOf(share);
    if (!shareFull && this.warm < this.max) return 'room';
    if ((share === undefined || !shareFull) && this.spares.count() > 0) return 'spare';
    const shares = shareFull ? [share] : [...new Set([...this.holders].map((holder) => this.shareOf(holder.functionName)))]
      .filter((other) => this.warmOf(other) > this.sizeOf(other));
    let oldest: EnvironmentHolder | undefined;
    for (const holder of this.holders) {
      const since = holder.oldestIdleSince;
      if (since !== undefined && shares.includes(this.shareOf(holder.functionName)) && (!oldest || since < oldest.oldestIdleSince!)) oldest = holder;
    }
    return oldest;
  }
}
