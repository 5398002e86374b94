import { join } from 'node:path';
import type { Logger } from 'pino';
import { functionRoot } from '../bundle.js';
import { RotatingLog } from '../logs.js';
import type { FunctionVersion } from '../store.js';
import { SpareThread, SpareThreads } from './node-worker.js';
import { ConcurrencyBound } from './concurrency.js';
import { FunctionPool, refuse, type Invocation, type InvokeResult, type PoolLimits, type PoolStats } from './pool.js';
import type { FunctionMetrics } from '../metrics.js';

export interface RuntimeLimits extends PoolLimits {
  logFileBytes: number;
  /** Spare threads of all functions together (see SpareThreads). */
  maxSpareThreads: number;
  /** Warm environments of all functions together (see ConcurrencyBound). */
  maxConcurrency: number;
}

/** What runs an invocation: `$LATEST` (whatever version it points at), or one version by its number. */
export type Target = '$LATEST' | number;

/**
 * The running side of the functions service, loaded on the first deploy or invoke: one pool of
 * execution environments per function for `$LATEST`, one per version invoked by number or alias,
 * and one log file per function.
 */
export class FunctionRuntime {
  private readonly pools = new Map<string, FunctionPool>();
  /** Function name → version number → pool, created on the first invocation of that version. */
  private readonly versionPools = new Map<string, Map<number, FunctionPool>>();
  private readonly outputs = new Map<string, RotatingLog>();
  /**
   * A spare thread started while a version was checked, for its pool once the version takes traffic;
   * stopped after the idle timeout if it never does (a deploy whose commit failed).
   */
  private readonly staged = new Map<string, { version: FunctionVersion; spare: SpareThread; timer: NodeJS.Timeout }>();
  private readonly spares: SpareThreads;
  private readonly bound: ConcurrencyBound;

  /** `reservations`: the ReservedConcurrentExecutions of the functions' `$LATEST` (reservations.ts). */
  constructor(private readonly dataDir: string, private readonly limits: RuntimeLimits, private readonly log: Logger, private readonly metrics: FunctionMetrics, reservations: ReadonlyMap<string, number>) {
    this.spares = new SpareThreads(limits.maxSpareThreads, () => this.bound.spareFits());
    this.bound = new ConcurrencyBound(limits.maxConcurrency, this.spares, reservations);
  }

  /**
   * Warm environments of all functions, spare threads included, their bound (functions.maxConcurrency)
   * and the part of it not set aside for reservations.
   */
  get environments(): { warm: number; max: number; unreserved: number } {
    return { warm: this.bound.warm, max: this.bound.max, unreserved: this.bound.unreserved };
  }

  /**
   * Loads the version's handler in a fresh environment without giving it traffic; rejects with the
   * init error. A spare thread for the version's first instance starts meanwhile (see `prepare`).
   */
  async check(version: FunctionVersion): Promise<void> {
    // The spares of the function's version this one replaces (staged, or its pool's) would go once
    // this one takes traffic: their slots under functions.maxSpareThreads are this check's now.
    this.dropStaged(version.name);
    this.pools.get(version.name)?.dropSpare();
    const spare = FunctionPool.takesSpare(version) ? this.spares.start(version.spec.memorySize, this.output(version.name)) : undefined;
    try {
      await this.newPool(version, '$LATEST').check();
    } catch (error) {
      spare?.terminate();
      throw error;
    }
    if (!spare) return;
    const timer = setTimeout(() => this.dropStaged(version.name), this.limits.idleTimeoutMs).unref();
    this.staged.set(version.name, { version, spare, timer });
  }

  invoke(version: FunctionVersion, invocation: Invocation, target: Target = '$LATEST'): Promise<InvokeResult> {
    const pool = target === '$LATEST' ? this.poolFor(version) : this.versionPool(version);
    return this.metrics.measure(version.name, () => pool.invoke(invocation));
  }

  /** Runs the event when one of the function's instances (of `target`) has room; resolves with its result. */
  enqueue(version: FunctionVersion, invocation: Invocation, target: Target = '$LATEST'): Promise<InvokeResult> {
    const pool = target === '$LATEST' ? this.poolFor(version) : this.versionPool(version);
    return this.metrics.measure(version.name, () => pool.enqueue(invocation));
  }

  /**
   * The version takes traffic as `$LATEST`: its ReservedConcurrentExecutions is the function's, and its
   * pool keeps a spare thread (the one its check started) for the first invocation.
   */
  prepare(version: FunctionVersion): void {
    this.bound.reserve(version.name, version.spec.reservedConcurrency);
    const staged = this.staged.get(version.name);
    clearTimeout(staged?.timer);
    this.staged.delete(version.name);
    // The checked version has no number yet: its content hash names it.
    const ours = staged?.version.hash === version.hash;
    if (staged && !ours) staged.spare.terminate();
    this.poolFor(version).keepSpare(ours ? staged!.spare : undefined);
  }

  private dropStaged(name: string): void {
    const staged = this.staged.get(name);
    clearTimeout(staged?.timer);
    staged?.spare.terminate();
    this.staged.delete(name);
  }

  /** Summed over the function's pools ($LATEST and numbered versions); a crash loop as the first pool in one reports it ($LATEST first). */
  stats(name: string): PoolStats {
    const pools = [this.pools.get(name), ...(this.versionPools.get(name)?.values() ?? [])].filter((pool) => pool !== undefined).map((pool) => pool.stats);
    const { initFailures, initError, initVersion, backoffUntil } = pools.find((stats) => stats.initFailures) ?? {};
    const total: PoolStats = { busy: 0, idle: 0, queued: 0, ...(initFailures ? { initFailures, initError, initVersion, ...(backoffUntil ? { backoffUntil } : {}) } : {}) };
    for (const stats of pools) {
      total.busy += stats.busy;
      total.idle += stats.idle;
      total.queued += stats.queued;
    }
    return total;
  }

  /** A removed function: its environments stop (running invocations finish), its log is closed. */
  remove(name: string): void {
    this.dropStaged(name);
    refuse(this.pools.get(name)?.retire() ?? []);
    this.pools.delete(name);
    for (const pool of this.versionPools.get(name)?.values() ?? []) refuse(pool.retire());
    this.versionPools.delete(name);
    this.outputs.get(name)?.finish();
    this.outputs.delete(name);
    this.bound.reserve(name, undefined);
  }

  /** Stops every pool; running invocations get up to `graceMs` to finish before their workers go. */
  async stop(graceMs: number): Promise<void> {
    for (const name of [...this.staged.keys()]) this.dropStaged(name);
    const pools = [...this.pools.values(), ...[...this.versionPools.values()].flatMap((versions) => [...versions.values()])];
    // Events still waiting stay in the durable queue and run after the restart; out of the bound
    // first, so the room one pool's retirement frees does not start another's environment now.
    for (const pool of pools) this.bound.delete(pool);
    for (const pool of pools) refuse(pool.retire());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pools.map((pool) => pool.drained())),
      new Promise((resolve) => { timer = setTimeout(resolve, graceMs); }),
    ]);
    clearTimeout(timer);
    for (const pool of pools) pool.abandon();
    this.pools.clear();
    this.versionPools.clear();
    await Promise.all([...this.outputs.values()].map((output) => new Promise<void>((resolve) => output.finish(resolve))));
    this.outputs.clear();
  }

  /** The pool of the given version; a newer version replaces the old pool and takes over its waiting events. */
  private poolFor(version: FunctionVersion): FunctionPool {
    const current = this.pools.get(version.name);
    if (current?.version.version === version.version) return current;
    const pool = this.newPool(version, '$LATEST');
    this.bound.add(pool);
    this.pools.set(version.name, pool);
    pool.adopt(current?.retire(pool) ?? []);
    return pool;
  }

  /** The pool of one numbered version (invoked by number or through an alias); its instances are reaped when idle like any. */
  private versionPool(version: FunctionVersion): FunctionPool {
    let versions = this.versionPools.get(version.name);
    if (!versions) this.versionPools.set(version.name, versions = new Map());
    let pool = versions.get(version.version);
    if (!pool) {
      versions.set(version.version, pool = this.newPool(version, String(version.version)));
      this.bound.add(pool);
    }
    return pool;
  }

  private newPool(version: FunctionVersion, label: string): FunctionPool {
    const codeDir = join(functionRoot(this.dataDir, version.name), version.hash);
    return new FunctionPool(version, label, codeDir, this.limits, this.output(version.name), this.log, this.spares, this.bound);
  }

  private output(name: string): RotatingLog {
    let output = this.outputs.get(name);
    if (!output) {
      const failed = (error: Error) => this.log.warn({ err: error, function: name }, 'cannot write the function log; its output is dropped until it can');
      output = new RotatingLog(join(functionRoot(this.dataDir, name), 'logs', 'function.log'), this.limits.logFileBytes, failed);
      output.on('error', failed);
      // Every environment of the function, of all its versions, pipes its stdout and stderr in: as
      // many as functions.maxConcurrency and a spare, each a listener of its own, not a leak.
      output.setMaxListeners(2 * (this.limits.maxConcurrency + this.limits.maxSpareThreads) + 1);
      this.outputs.set(name, output);
    }
    return output;
  }
}
