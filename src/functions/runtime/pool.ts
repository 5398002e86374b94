import { randomBytes, randomUUID } from 'node:crypto';
import { steadyNow } from '../../steady-clock.js';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { functionArn } from '../arn.js';
import { GATEWAY_REGION } from '../../gateway-identity.js';
import { apiErrors, runtimeErrors, type LambdaErrorPayload } from '../errors.js';
import type { RotatingLog } from '../logs.js';
import type { FunctionVersion } from '../store.js';
import { InitError, NodeWorkerInstance, NOT_RUN, SpareThread, type SpareThreads, type ExecutionEnvironment, type InitLimit, type InvokeOutcome } from './node-worker.js';
import { errorLines, reportStatus } from './error-log.js';
import { initFailureLines, initStartLine, type InitPhase } from './init-log.js';
import { PYTHON_RUNTIME_DIR, PythonInstance } from './python-process.js';
import type { ConcurrencyBound, EnvironmentHolder } from './concurrency.js';
import { NODE_EVENTS_IN_FLIGHT, TAIL_BYTES, type InvokeMessage } from './protocol.js';

// Lambda's limit on a synchronous response.
const RUNTIME_DIR = fileURLToPath(new URL('.', import.meta.url));

export interface PoolLimits {
  maxInstances: number;
  idleTimeoutMs: number;
  queueLength: number;
  /** The interpreter of python3.* functions. */
  pythonPath: string;
  /** AWS_ENDPOINT_URL_* and credentials for the gateway's own APIs; a template's variables override the endpoints. */
  gatewayEnvironment: () => Record<string, string>;
}

export interface Invocation {
  event: string;
  clientContext?: unknown;
  /** The alias or version the caller named, which ends the invoked function's ARN. */
  qualifier?: string;
  /** X-Amz-Log-Type: Tail (synchronous invocations): the result carries the end of the invocation's log. */
  tail?: boolean;
  /** An invocation record sent to a destination function: how many invocations came before it in its chain (see async-queue.ts). */
  hops?: number;
  /** An asynchronous event's request id, the same for each of its attempts (async-queue.ts); else a new one per invocation. */
  requestId?: string;
  /** performance.now() from which an asynchronous event was due to run (async-queue.ts): its wait for an environment counts from then. */
  dueSince?: number;
}

export interface InvokeResult {
  requestId: string;
  executedVersion: string;
  /** The handler's JSON response, or the error document, as UTF-8 bytes (outside V8's heap: up to 6 MB each). */
  payload: Buffer;
  /** "Unhandled" when the payload is an error, as the Invoke API's X-Amz-Function-Error. */
  functionError?: 'Unhandled';
  /** With `tail`: base64 of the last 4 KB of the invocation's log, as the Invoke API's X-Amz-Log-Result. */
  logResult?: string;
}

/** An event waiting for a free instance, with the promise of its result. */
export interface QueuedInvocation {
  invocation: Invocation;
  resolve: (result: InvokeResult) => void;
  reject: (error: unknown) => void;
  /** performance.now() when it was queued; none: it was handed to an environment before, which ended (see waitForBusyMs). */
  queuedAt?: number;
}

/** A synchronous invoke waiting for a busy environment of its function, until `timer` (see waitForBusyMs). */
interface SyncWaiter {
  item: QueuedInvocation;
  timer: NodeJS.Timeout;
}

interface IdleInstance {
  instance: ExecutionEnvironment;
  /** performance.now() when it went idle. */
  since: number;
}

const isPython = (runtime: string) => runtime.startsWith('python');

// Lambda's limit on the init phase: a handler module that never finishes loading cannot hold a deploy forever.
const INIT_TIMEOUT_SECONDS = 10;

/**
 * A new environment for the invocations that waited for it. `began`: when their part began, which
 * the first one's Duration counts from; `initMs`: Init Duration, of an init that succeeded at once.
 */
interface ColdStart {
  instance: ExecutionEnvironment;
  began: number;
  initMs?: number;
}

// Crash-loop backoff: after 3 failed cold starts in a row, 1 s, then 2, 4, … up to 60 s between attempts.
const INIT_FAILURES_BEFORE_BACKOFF = 3;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/** The longest an invocation waits for a busy environment of its function rather than starting one (see waitForBusyMs). */
const MAX_WAIT_FOR_BUSY_MS = 1000;

export interface PoolStats {
  busy: number;
  idle: number;
  queued: number;
  /** Set while environments keep failing to initialize: how many in a row, the last error, the version ($LATEST, 3). */
  initFailures?: number;
  initError?: string;
  initVersion?: string;
  backoffUntil?: number;
}

/**
 * The execution environments of one function version: at most functions.maxInstances of them, or
 * with ReservedConcurrentExecutions that many of all the function's versions together; warm instances
 * reused and stopped after `idleTimeoutMs`. A synchronous invoke needs an instance of its own (a warm
 * one, a busy one that frees within a cold start's time, or a new one, else 429). Asynchronous events
 * wait in a bounded queue and are handed to instances in batches: a Node.js instance takes up to
 * NODE_EVENTS_IN_FLIGHT at once and runs them one after the other, so the function's concurrency
 * stays its number of instances.
 *
 * Worker-thread functions keep one spare thread (runtime started, no function loaded) while another
 * instance could still start, so a cold start does not wait for a thread to start; see `keepSpare`.
 *
 * A new instance also needs room under functions.maxConcurrency, the environments of all functions
 * together, in the function's reservation or the unreserved pool (`bound`, concurrency.ts): without
 * it a synchronous invoke gets 429 and events wait.
 */
export class FunctionPool implements EnvironmentHolder {
  /** In the order they went idle: the last is reused first, the first is stopped first. */
  private readonly idle: IdleInstance[] = [];
  private reaper: NodeJS.Timeout | undefined;
  /** Instances with invocations handed over, and how many. */
  private readonly active = new Map<ExecutionEnvironment, number>();
  /** Instances being started. */
  private starting = 0;
  private queue: QueuedInvocation[] = [];
  private dispatchScheduled = false;
  private retired = false;
  /** Stopped with the daemon, running environments and all (`abandon`). */
  private abandoned = false;
  private idleWaiters: Array<() => void> = [];
  /** Invocations one instance is handed at once. */
  private readonly perInstance: number;
  private spare: { thread: SpareThread; timer: NodeJS.Timeout } | undefined;
  /** The pool that replaced this one: it takes the events this one's instances ended before starting. */
  private successor: FunctionPool | undefined;
  /** Environments that failed to initialize in a row, the last error, and until when new ones are not tried. */
  private initFailures: { failures: number; lastError?: LambdaErrorPayload; until: number } = { failures: 0, until: 0 };
  /** How long the last environment took to start, in ms: how long invocations wait for a busy one (waitForBusyMs). */
  private coldStartMs: number | undefined;
  /** How long its invocations take, a moving average in ms: a function slower than its cold start does not wait (waitForBusyMs). */
  private durationMs: number | undefined;
  /** Dispatches again when the events waiting for a busy environment have waited long enough. */
  private scaleOutTimer: NodeJS.Timeout | undefined;
  /** Synchronous invokes waiting for a busy environment, the first one first. */
  private syncWaiters: SyncWaiter[] = [];

  constructor(
    readonly version: FunctionVersion,
    /** `$LATEST`, or the version number when invoked by number or alias: Lambda runs them as separate environments. */
    readonly label: string,
    private readonly codeDir: string,
    private readonly limits: PoolLimits,
    private readonly output: RotatingLog,
    private readonly log: Logger,
    private readonly spares: SpareThreads,
    private readonly bound: ConcurrencyBound,
  ) {
    this.perInstance = isPython(version.spec.runtime) ? 1 : NODE_EVENTS_IN_FLIGHT;
  }

  get stats(): PoolStats {
    const { failures, lastError, until } = this.initFailures;
    return {
      busy: this.inUse(), idle: this.idle.length, queued: this.queue.length,
      ...(failures > 0 && lastError ? {
        initFailures: failures, initError: `${lastError.errorType}: ${lastError.errorMessage}`, initVersion: this.label, ...(until > steadyNow() ? { backoffUntil: until } : {}),
      } : {}),
    };
  }

  get functionName(): string {
    return this.version.name;
  }

  get busy(): number {
    return this.inUse();
  }

  get warm(): number {
    return this.inUse() + this.idle.length;
  }

  get oldestIdleSince(): number | undefined {
    return this.idle[0]?.since;
  }

  /**
   * RequestResponse: runs on an instance of its own — a warm one, a busy one that frees before a new
   * one would have started (waitForBusyMs), or a new one — or is refused with TooManyRequestsException.
   */
  invoke(invocation: Invocation): Promise<InvokeResult> {
    if (this.retired) return Promise.reject(apiErrors.stopping());
    return new Promise((resolve, reject) => {
      const item: QueuedInvocation = { invocation, resolve, reject, queuedAt: performance.now() };
      const waitMs = this.idle.length === 0 ? this.waitForBusyMs(item.queuedAt) : 0;
      // not for the function's first start either: how long it takes is not known yet
      if (waitMs === 0 || waitMs === Infinity) return this.runOrRefuse(item);
      const waiter: SyncWaiter = {
        item,
        timer: setTimeout(() => {
          this.syncWaiters.splice(this.syncWaiters.indexOf(waiter), 1);
          this.runOrRefuse(item);
        }, waitMs),
      };
      this.syncWaiters.push(waiter);
    });
  }

  /** A synchronous invoke runs now, on a warm instance or a new one, or is refused (429). */
  private runOrRefuse(item: QueuedInvocation): void {
    const warm = this.takeIdle();
    if (warm) return this.hand(warm, [item]);
    if (!this.belowLimit('busy')) {
      return item.reject(apiErrors.tooManyRequests(this.reservation() === undefined ? 'ConcurrentInvocationLimitExceeded' : 'ReservedFunctionConcurrentInvocationLimitExceeded'));
    }
    // Lambda's account concurrency: every function's environments busy (functions.maxConcurrency).
    if (!this.bound.makeRoom(this)) return item.reject(apiErrors.tooManyRequests('ConcurrentInvocationLimitExceeded'));
    void this.startWith([item]);
  }

  /**
   * Event: runs when an instance has room (synchronous invokes may hold them all for a while);
   * resolves with its result. The durable queue (async-queue.ts) feeds a bounded number at once.
   */
  enqueue(invocation: Invocation): Promise<InvokeResult> {
    if (this.retired) return Promise.reject(apiErrors.stopping());
    if (this.queue.length >= this.limits.queueLength) return Promise.reject(apiErrors.tooManyRequests());
    return new Promise((resolve, reject) => {
      this.queue.push({ invocation, resolve, reject, queuedAt: invocation.dueSince ?? performance.now() });
      this.scheduleDispatch();
    });
  }

  /** Takes over the events a replaced pool had waiting (passed on, or refused, if this one was replaced meanwhile too). */
  adopt(waiting: QueuedInvocation[]): void {
    if (this.retired) {
      if (this.successor) this.successor.adopt(waiting);
      else refuse(waiting);
      return;
    }
    this.queue.push(...waiting);
    this.scheduleDispatch();
  }

  /** Starts one environment and stops it again: proves the handler loads before a deploy takes traffic. */
  async check(): Promise<void> {
    (await this.startInstance('init')).terminate();
  }

  /** Whether the version's instances are worker threads, which a spare thread can start (see keepSpare). */
  static takesSpare(version: FunctionVersion): boolean {
    return !isPython(version.spec.runtime) && (version.spec.isolation ?? 'thread') === 'thread';
  }

  /**
   * Keeps a spare thread (`thread`, one started during the deploy's check, or a new one) unless there
   * is one, no further instance could start, or the daemon holds `functions.maxSpareThreads` spares
   * already. Done when a version takes traffic and after each cold start; the spare is stopped once
   * unused for `idleTimeoutMs`, as idle instances are, so an idle function keeps nothing.
   */
  keepSpare(thread?: SpareThread): void {
    const wanted = !this.retired && FunctionPool.takesSpare(this.version) && this.belowLimit('warm') && !this.spare?.thread.usable;
    if (!wanted) return thread?.terminate();
    this.dropSpare();
    const spare = thread?.usable ? thread : this.spares.start(this.version.spec.memorySize, this.output);
    if (!spare) return;
    const timer = setTimeout(() => this.dropSpare(), this.limits.idleTimeoutMs).unref();
    this.spare = { thread: spare, timer };
  }

  /**
   * Stops taking work; idle instances stop now, busy ones when they finish. Returns the events still
   * waiting; those handed to an instance that ends before starting them go to `successor`, if any.
   */
  retire(successor?: FunctionPool): QueuedInvocation[] {
    this.retired = true;
    this.successor = successor;
    this.dropSpare();
    clearTimeout(this.reaper);
    this.reaper = undefined;
    clearTimeout(this.scaleOutTimer);
    this.scaleOutTimer = undefined;
    for (const { instance } of this.idle.splice(0)) instance.terminate();
    // accepted before the new version took traffic: they run on this one, as they would have
    for (const { item, timer } of this.syncWaiters.splice(0)) {
      clearTimeout(timer);
      this.runOrRefuse(item);
    }
    const waiting = this.queue;
    this.queue = [];
    this.bound.done(this);
    this.afterRun();
    return waiting;
  }

  /** Stops the instance idle the longest, for another function's (functions.maxConcurrency). */
  stopLeastRecentIdle(): boolean {
    const oldest = this.idle.shift();
    oldest?.instance.terminate();
    return oldest !== undefined;
  }

  /** Room under functions.maxConcurrency may be there now: the waiting events start. */
  retryWaiting(): void {
    this.dispatch();
  }

  /**
   * The daemon's stop, once its grace is over: the environments still running end, with what their
   * handlers started (a thread's children would outlive the daemon). Their invocations are refused
   * as the service stopping, as those waiting were: an event stays queued and runs after the restart.
   */
  abandon(): void {
    this.abandoned = true;
    for (const { item, timer } of this.syncWaiters.splice(0)) {
      clearTimeout(timer);
      refuse([item]);
    }
    for (const instance of this.active.keys()) instance.terminate();
  }

  /** Resolves when no invocation is running (bounded by the caller). */
  drained(): Promise<void> {
    if (this.inUse() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The function's ReservedConcurrentExecutions: its `$LATEST`'s, for all its versions (Lambda's concurrency is the function's as a whole). */
  private reservation(): number | undefined {
    return this.bound.reservation(this.version.name);
  }

  /**
   * Whether another environment may start (busy) or be kept (warm): ReservedConcurrentExecutions counts
   * the function's environments of all versions together, functions.maxInstances this version's.
   */
  private belowLimit(counted: 'busy' | 'warm'): boolean {
    const reservation = this.reservation();
    if (reservation !== undefined) return this.bound.environmentsOf(this.version.name, counted) < reservation;
    return this[counted] < this.limits.maxInstances;
  }

  /** Instances running or starting: the function's concurrency in use. */
  private inUse(): number {
    return this.active.size + this.starting;
  }

  /** The warm instance used last; one that died while idle (a Python process killed) is dropped. */
  private takeIdle(): ExecutionEnvironment | undefined {
    for (let idle = this.idle.pop(); idle; idle = this.idle.pop()) if (idle.instance.alive) return idle.instance;
    return undefined;
  }

  /** Dispatches once per tick: the events accepted meanwhile go out together. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /**
   * Hands waiting events to warm instances, then to new ones while the limit allows, then tops up the
   * running instance with the fewest once it is down to half its batch.
   */
  private dispatch(): void {
    while (!this.retired && this.queue.length > 0) {
      const warm = this.takeIdle();
      if (warm) {
        this.hand(warm, this.queue.splice(0, this.perInstance));
        continue;
      }
      if (this.belowLimit('busy')) {
        const waitMs = this.waitForBusyMs(this.queue[0].queuedAt);
        if (waitMs > 0) {
          if (waitMs !== Infinity) {
            this.scaleOutTimer ??= setTimeout(() => {
              this.scaleOutTimer = undefined;
              this.dispatch();
            }, waitMs).unref();
          }
          this.bound.done(this);
          return;
        }
        if (this.bound.makeRoom(this)) {
          void this.startWith(this.queue.splice(0, this.perInstance));
          continue;
        }
        // never dropped for want of room: they start when an environment of any function frees
        this.bound.wait(this);
      } else if (this.reservation() !== undefined) {
        // waiting for the function's environments, of this version or another
        this.bound.waitForFunction(this);
      } else {
        // waiting for its own instances, not for room
        this.bound.done(this);
      }
      let emptiest: [ExecutionEnvironment, number] | undefined;
      for (const entry of this.active) if (!emptiest || entry[1] < emptiest[1]) emptiest = entry;
      if (!emptiest || emptiest[1] > this.perInstance / 2) return;
      this.hand(emptiest[0], this.queue.splice(0, this.perInstance - emptiest[1]));
    }
    this.bound.done(this);
  }

  /**
   * How much longer an invocation queued at `queuedAt` waits for an environment of the function that
   * is busy or starting, rather than start one: 0 to start one now; as long as the last cold start
   * took, counted from `queuedAt` (at most MAX_WAIT_FOR_BUSY_MS), so an environment that frees
   * meanwhile runs it no later than a new one would; Infinity while the function's first start
   * lasts, which tells how long that is. So a function invoked by several triggers at once does not
   * hold one more environment (~6 MB for the idle timeout) each time two of them meet. A function
   * whose invocations take longer than its cold start does not wait: its busy environments would
   * seldom free in time, and the wait would only delay the start. None given: it was handed to an
   * environment that ended before its turn, and waits no more.
   */
  private waitForBusyMs(queuedAt: number | undefined): number {
    if (this.inUse() === 0 || queuedAt === undefined) return 0;
    if (this.coldStartMs === undefined) return this.starting > 0 ? Infinity : 0;
    const waitMs = Math.min(this.coldStartMs, MAX_WAIT_FOR_BUSY_MS);
    if (this.durationMs !== undefined && this.durationMs >= waitMs) return 0;
    return Math.max(0, waitMs - (performance.now() - queuedAt));
  }

  /** A new instance (the spare thread if there is one) for `items`; they all get the init error if it fails. */
  private async startWith(items: QueuedInvocation[]): Promise<void> {
    this.starting++;
    const began = performance.now();
    let cold: ColdStart;
    try {
      cold = await this.startOrBackOff();
      this.coldStartMs = performance.now() - began;
    } catch (error) {
      this.starting--;
      this.afterRun();
      if (!(error instanceof InitError)) {
        for (const { reject } of items) reject(error);
        return;
      }
      // As Lambda logs an invocation whose environment failed to initialize: INIT_REPORT said why
      // (startInstance), and REPORT's Duration is the init's second try, with its status and error type.
      const began = error.invokeBegan ?? performance.now();
      for (const { invocation, resolve } of items) {
        const requestId = invocation.requestId ?? randomUUID();
        const payload = error.forRequest?.(requestId) ?? error.payload;
        const startLine = `START RequestId: ${requestId} Version: ${this.label}\n`;
        this.output.line(startLine);
        const endLines = this.report(requestId, performance.now() - began, undefined, { ok: false, error: payload }, undefined, true);
        // Lambda's LogResult of such an invocation starts with the init's error and INIT_REPORT.
        const logResult = invocation.tail ? lastBytes(error.initLog + startLine + endLines, TAIL_BYTES).toString('base64') : undefined;
        resolve({ requestId, executedVersion: this.label, payload: Buffer.from(JSON.stringify(payload)), functionError: 'Unhandled', ...(logResult !== undefined ? { logResult } : {}) });
      }
      return;
    }
    this.starting--;
    this.hand(cold.instance, items, cold);
    this.keepSpare();
    // events waiting for this start measure their wait by it now
    if (this.queue.length > 0) this.scheduleDispatch();
  }

  /** Hands invocations to an instance (one message); each settles its caller when it ends. */
  private hand(instance: ExecutionEnvironment, items: QueuedInvocation[], cold?: ColdStart): void {
    if (this.abandoned) {
      instance.terminate();
      return refuse(items);
    }
    this.active.set(instance, (this.active.get(instance) ?? 0) + items.length);
    items.forEach((item, i) => void this.runOne(instance, item, i === 0 ? cold : undefined));
  }

  private async runOne(instance: ExecutionEnvironment, { invocation, resolve, reject }: QueuedInvocation, cold: ColdStart | undefined): Promise<void> {
    const requestId = invocation.requestId ?? randomUUID();
    let started = cold?.began ?? performance.now();
    const startLine = `START RequestId: ${requestId} Version: ${this.label}\n`;
    // An init tried again in the invoke phase took its time from the function's timeout, as on Lambda.
    const spentMs = cold && cold.initMs === undefined ? performance.now() - cold.began : 0;
    let outcome: InvokeOutcome | typeof NOT_RUN;
    try {
      outcome = await instance.invoke(this.message(requestId, invocation, instance.logStreamName, spentMs), this.version.spec.timeout, () => {
        if (!cold) started = performance.now();
        this.output.line(startLine);
      });
    } catch (error) {
      outcome = { ok: false, error: { errorType: 'Runtime.Unknown', errorMessage: String(error) } };
    }
    const left = this.active.get(instance)! - 1;
    if (left > 0) this.active.set(instance, left);
    else {
      this.active.delete(instance);
      this.release(instance);
    }
    if (this.abandoned) return refuse([{ invocation, resolve, reject }]);
    if (outcome === NOT_RUN) {
      // The environment ended before this one's turn: it waits for another.
      if (!this.retired) this.queue.unshift({ invocation, resolve, reject });
      else this.adopt([{ invocation, resolve, reject }]);
      this.afterRun();
      return;
    }
    const durationMs = performance.now() - started - (cold?.initMs ?? 0);
    this.durationMs = this.durationMs === undefined ? durationMs : this.durationMs + (durationMs - this.durationMs) / 8;
    const endLines = this.report(requestId, durationMs, cold?.initMs, outcome, instance.maxMemoryBytes());
    this.afterRun();
    // Lambda's LogResult: the invocation's log from START to REPORT, its last 4 KB.
    const output = outcome.log ?? '';
    // END on a line of its own after output without a final newline, as in the log file (RotatingLog.line)
    const logResult = invocation.tail ? lastBytes(startLine + output + (output === '' || output.endsWith('\n') ? '' : '\n') + endLines, TAIL_BYTES).toString('base64') : undefined;
    resolve({
      requestId, executedVersion: this.label,
      ...(outcome.ok ? { payload: outcome.payload } : { payload: Buffer.from(JSON.stringify(outcome.error)), functionError: 'Unhandled' as const }),
      ...(logResult !== undefined ? { logResult } : {}),
    });
  }

  /** An instance may have room now: wake `drained` waiters, dispatch what waits, here or in another function. */
  private afterRun(): void {
    if (this.inUse() === 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
      if (this.retired) this.bound.delete(this);
    }
    if (this.queue.length > 0) this.scheduleDispatch();
    this.bound.freed();
  }

  /** Stops the spare thread, if any (a new version's check takes its place). */
  dropSpare(): void {
    if (!this.spare) return;
    clearTimeout(this.spare.timer);
    this.spare.thread.terminate();
    this.spare = undefined;
  }

  /**
   * A new instance, unless the function is crash-looping: after INIT_FAILURES_BEFORE_BACKOFF cold
   * starts in a row fail, invocations fail at once with the last init error for a backoff that
   * doubles up to MAX_BACKOFF_MS, instead of starting a process or thread each time.
   */
  private async startOrBackOff(): Promise<ColdStart> {
    const { failures, lastError, until } = this.initFailures;
    // the steady clock: a step of the wall clock back must not stretch the backoff by the step
    if (lastError && steadyNow() < until) throw new InitError(lastError);
    try {
      const cold = await this.coldStart();
      this.initFailures = { failures: 0, until: 0 };
      return cold;
    } catch (error) {
      if (!(error instanceof InitError)) throw error;
      const count = failures + 1;
      const backoffMs = count < INIT_FAILURES_BEFORE_BACKOFF ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (count - INIT_FAILURES_BEFORE_BACKOFF));
      this.initFailures = { failures: count, lastError: error.payload, until: steadyNow() + backoffMs };
      if (backoffMs > 0) {
        this.log.warn({ function: this.version.name, version: this.label, failures: count, backoffMs, error: error.message }, 'function keeps failing at init; invocations fail at once until the backoff ends');
      }
      throw error;
    }
  }

  /** An instance with nothing handed over goes back to the idle list (stopped after the idle timeout); a dead one is dropped. */
  private release(instance: ExecutionEnvironment): void {
    if (!instance.alive) return;
    // Another function's events wait for room: this one stops, and they start (afterRun).
    if (this.retired || this.bound.shouldHandOver(this)) return instance.terminate();
    const waiter = this.syncWaiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      return this.hand(instance, [waiter.item]);
    }
    this.idle.push({ instance, since: performance.now() });
    if (!this.reaper) this.reapAfter(this.limits.idleTimeoutMs);
  }

  /**
   * One timer for the idle list instead of one per release: it stops the instances idle for
   * `idleTimeoutMs`, then waits for the next one to be.
   */
  private reapAfter(delayMs: number): void {
    this.reaper = setTimeout(() => {
      this.reaper = undefined;
      const cutoff = performance.now() - this.limits.idleTimeoutMs;
      let expired = 0;
      while (expired < this.idle.length && this.idle[expired].since <= cutoff) expired++;
      for (const { instance } of this.idle.splice(0, expired)) instance.terminate();
      if (this.idle.length > 0) this.reapAfter(this.idle[0].since - cutoff);
      this.bound.freed();
    }, delayMs).unref();
  }

  /**
   * An environment for invocations, tried twice as Lambda tries it: an init that fails (an error, an
   * exit, its 10 s) is run again as part of the invocations that waited for it — Lambda's
   * "suppressed init", `INIT_REPORT … Phase: invoke` — within the function's timeout, which that
   * second try's time is taken from. Their answer is the second try's error, or their result.
   */
  private async coldStart(): Promise<ColdStart> {
    const began = performance.now();
    try {
      const instance = await this.startInstance('init');
      return { instance, began, initMs: performance.now() - began };
    } catch (error) {
      if (!(error instanceof InitError)) throw error;
      const invokeBegan = performance.now();
      try {
        return { instance: await this.startInstance('invoke'), began: invokeBegan };
      } catch (retryError) {
        if (retryError instanceof InitError) {
          retryError.initLog = error.initLog + retryError.initLog;
          retryError.invokeBegan = invokeBegan;
        }
        throw retryError;
      }
    }
  }

  /**
   * Starts an environment between Lambda's init lines: INIT_START first (once per cold start, not for
   * the invoke phase's try), and if it fails, the error as its runtime logs it and INIT_REPORT (a
   * successful init's duration is in its first REPORT).
   */
  private async startInstance(phase: InitPhase): Promise<ExecutionEnvironment> {
    const { runtime, timeout } = this.version.spec;
    const began = performance.now();
    if (phase === 'init') this.output.line(initStartLine(runtime));
    const initLimit: InitLimit = phase === 'init'
      ? { seconds: INIT_TIMEOUT_SECONDS, timedOut: () => runtimeErrors.initTimedOut(INIT_TIMEOUT_SECONDS) }
      : { seconds: timeout, timedOut: (requestId) => runtimeErrors.timedOut(requestId, timeout) };
    try {
      return await this.launch(initLimit);
    } catch (error) {
      if (error instanceof InitError) {
        error.initLog = initFailureLines(error.payload, performance.now() - began, isPython(runtime), phase);
        this.output.line(error.initLog);
      }
      throw error;
    }
  }

  private launch(initLimit: InitLimit): Promise<ExecutionEnvironment> {
    const { spec } = this.version;
    const logStreamName = this.logStreamName();
    const options = {
      init: { taskRoot: this.codeDir, handler: spec.handler },
      logStreamName,
      env: this.environment(logStreamName),
      memorySizeMb: spec.memorySize,
      log: this.output,
      initLimit,
    };
    if (isPython(spec.runtime)) return PythonInstance.start({ ...options, pythonPath: this.limits.pythonPath });
    // stopped if functions.maxConcurrency needed its room (concurrency.ts)
    const spare = this.spare?.thread.usable ? this.spare.thread : undefined;
    if (this.spare) {
      clearTimeout(this.spare.timer);
      this.spare = undefined;
    }
    return NodeWorkerInstance.start({ ...options, isolation: spec.isolation ?? 'thread' }, spare);
  }

  /** The variables Lambda sets, over the template's; nothing of the daemon's own environment but PATH. */
  private environment(logStreamName: string): Record<string, string> {
    const { spec } = this.version;
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      // Lambda's functions run in UTC; a worker thread keeps the daemon's zone whatever it says (docs/functions.md).
      TZ: ':UTC',
      ...this.limits.gatewayEnvironment(),
      ...spec.environment,
      AWS_REGION: GATEWAY_REGION,
      AWS_DEFAULT_REGION: GATEWAY_REGION,
      AWS_EXECUTION_ENV: `AWS_Lambda_${spec.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: spec.name,
      AWS_LAMBDA_FUNCTION_VERSION: this.label,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: this.logGroupName(),
      AWS_LAMBDA_LOG_STREAM_NAME: logStreamName,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      LAMBDA_TASK_ROOT: this.codeDir,
      LAMBDA_RUNTIME_DIR: isPython(spec.runtime) ? PYTHON_RUNTIME_DIR : RUNTIME_DIR,
      _HANDLER: spec.handler,
      // The version's directory is immutable: no __pycache__ in it.
      ...(isPython(spec.runtime) ? { PYTHONDONTWRITEBYTECODE: '1' } : {}),
    };
  }

  private message(requestId: string, invocation: Invocation, logStreamName: string, spentMs: number): InvokeMessage {
    const { spec } = this.version;
    return {
      type: 'invoke',
      requestId,
      event: invocation.event,
      timeoutMs: Math.max(0, spec.timeout * 1000 - spentMs),
      // Not sampled: Outpost has no X-Ray to send segments to.
      traceId: `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${requestId.replaceAll('-', '').slice(0, 24)};Sampled=0`,
      ...(invocation.tail ? { tail: true } : {}),
      context: {
        functionName: spec.name,
        functionVersion: this.label,
        invokedFunctionArn: functionArn(spec.name, invocation.qualifier),
        memoryLimitInMB: String(spec.memorySize),
        logGroupName: this.logGroupName(),
        logStreamName,
        ...(invocation.clientContext !== undefined ? { clientContext: invocation.clientContext } : {}),
      },
    };
  }

  private logGroupName(): string {
    return `/aws/lambda/${this.version.spec.name}`;
  }

  /** Lambda's form: `YYYY/MM/DD/[VERSION]` and a random id. */
  private logStreamName(): string {
    return `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[${this.label}]${randomBytes(16).toString('hex')}`;
  }

  /**
   * END and REPORT as Lambda writes them (Init Duration on a cold start, Status when the platform
   * ended the invocation or its environment failed to initialize), after the error lines when it
   * failed in its environment; returns those lines. Billed Duration counts a cold start's Init
   * Duration too: Lambda bills the init phase of on-demand functions since August 2025. `duration`:
   * the invocation's, in ms, its init left out.
   */
  private report(requestId: string, duration: number, initMs: number | undefined, outcome: InvokeOutcome, maxMemoryBytes: number | undefined, initFailed = false): string {
    const error = outcome.ok ? undefined : outcome.error;
    const logged = initFailed || (!outcome.ok && outcome.errorLogged);
    const lines = `${error && !logged ? errorLines(requestId, error) : ''}`
      + `END RequestId: ${requestId}\nREPORT RequestId: ${requestId}\tDuration: ${duration.toFixed(2)} ms\t`
      + `Billed Duration: ${Math.ceil(duration + (initMs ?? 0))} ms\tMemory Size: ${this.version.spec.memorySize} MB`
      + `${maxMemoryBytes !== undefined ? `\tMax Memory Used: ${Math.ceil(maxMemoryBytes / (1024 * 1024))} MB` : ''}`
      + `${initMs !== undefined ? `\tInit Duration: ${initMs.toFixed(2)} ms` : ''}${reportStatus(error, initFailed)}\n`;
    this.output.line(lines);
    return lines;
  }

}

/** The last `limit` bytes of `text` (a cut UTF-8 sequence at the start is dropped by the decoder of whoever reads it). */
function lastBytes(text: string, limit: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= limit ? bytes : bytes.subarray(bytes.length - limit);
}

/** Events of a function that is going: refused as the service stopping (503). */
export function refuse(waiting: QueuedInvocation[]): void {
  for (const { reject } of waiting) reject(apiErrors.stopping());
}
