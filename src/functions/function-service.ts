import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BusMessage } from '../bus.js';
import type { FunctionInvoker, Listener, Service, ServiceContext, ServiceHealth } from '../service.js';
import { registerFunctionAdminRoutes } from './admin-routes.js';
import { AsyncQueue, DEAD_LETTER_PAGE } from './async-queue.js';
import { AsyncEventStore, type DeadLetter, type EventSource } from './async-store.js';
import { functionRoot } from './bundle.js';
import { readLog, type LogChunk } from './logs.js';
import { FunctionMetrics } from './metrics.js';
import { apiErrors, FunctionApiError } from './errors.js';
import type { DeployOutcome } from './deploy.js';
import type { Invocation, InvokeResult } from './runtime/pool.js';
import type { FunctionRuntime } from './runtime/runtime.js';
import { FunctionStore, type FunctionVersion } from './store.js';
import { Schedules, scheduledEvent, type ScheduleSpec } from './schedules.js';
import { eventOf, MqttTriggers } from './triggers.js';

// Lambda's payload limits: 6 MB for a synchronous request, 1 MB for an asynchronous event.
const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD = 1024 * 1024;
// How long running invocations get to finish when the daemon stops (it forces exit after 5 s).
const STOP_GRACE_MS = 3000;
// As runtime/pool.ts: there is no AWS account or region on a gateway (not imported from there: the runtime loads lazily).
const REGION = 'local';
const ACCOUNT = '000000000000';

export type InvocationType = 'RequestResponse' | 'Event';

/**
 * A local Lambda runtime: functions deployed from SAM templates as immutable versions, run in
 * worker threads, invoked through the admin API or by MQTT messages on the local bus.
 *
 * The worker and deploy code is loaded on first use, so a gateway without functions pays
 * nothing for them but this file, the store and the routes.
 */
export class FunctionService implements Service, FunctionInvoker {
  readonly name = 'functions';
  private readonly functions: FunctionStore;
  /** `$LATEST` of every function, read from SQLite at construction and kept current by deploys. */
  private readonly latest = new Map<string, FunctionVersion>();
  private readonly triggers: MqttTriggers;
  private readonly schedules: Schedules;
  private readonly log: Logger;
  private runtimeLoading: Promise<FunctionRuntime> | undefined;
  private loadedRuntime: FunctionRuntime | undefined;
  /** Deploys and removals run one at a time. */
  private changes: Promise<unknown> = Promise.resolve();
  private running = false;
  private droppedEvents = 0;
  private readonly events: AsyncEventStore;
  private readonly queue: AsyncQueue;
  private readonly metrics: FunctionMetrics;

  constructor(private readonly context: ServiceContext) {
    this.log = context.log.child({ service: 'functions' });
    this.functions = new FunctionStore(context.store);
    for (const version of this.functions.allLatest()) this.latest.set(version.name, version);
    this.events = new AsyncEventStore(context.store);
    const { maxInstances, queueLength, maxRetryAttempts, retryDelaysSeconds, maxEventAgeSeconds, dlqLength } = context.config.functions;
    this.queue = new AsyncQueue({
      store: this.events,
      commit: context.store.commit,
      bus: context.bus,
      log: this.log,
      config: { maxInstances, queueLength, maxRetryAttempts, retryDelaysSeconds, maxEventAgeSeconds, dlqLength },
      latest: (name) => this.latest.get(name),
      runtime: () => this.runtime(),
    });
    this.metrics = new FunctionMetrics(context.metrics, { queued: () => this.queue.depths(), deadLetters: () => this.events.deadLetterCount() });
    this.triggers = new MqttTriggers(context.bus, (name, message) => this.onTriggerMessage(name, message));
    this.schedules = new Schedules(context.config.functions.scheduleClockScale, this.log, (name, schedule, now) => this.onSchedule(name, schedule, now));
    registerFunctionAdminRoutes(context.admin, this);
  }

  async start(): Promise<void> {
    for (const version of this.latest.values()) {
      await this.triggers.set(version.name, version.spec.topics);
      await this.schedules.set(version.name, version.spec.schedules ?? []);
    }
    this.running = true;
    // Events queued before a stop or crash, those in flight included, run again.
    const recovered = this.queue.recover();
    if (recovered > 0) this.log.info({ events: recovered }, 'asynchronous events recovered');
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.triggers.stop();
    this.schedules.stop();
    this.queue.stop();
    await this.changes.catch(() => undefined);
    if (this.runtimeLoading) await (await this.runtimeLoading).stop(STOP_GRACE_MS);
  }

  health(): ServiceHealth {
    return this.running ? { ok: true } : { ok: false, detail: 'functions service not running' };
  }

  listeners(): Listener[] {
    return [];
  }

  status(): Record<string, unknown> {
    return {
      functions: this.latest.size,
      droppedEvents: this.droppedEvents,
      asyncEvents: this.queue.totals(),
      throttledEvents: this.queue.throttled,
      deadLetters: this.events.deadLetterCount(),
      trimmedDeadLetters: this.queue.trimmedDeadLetters,
    };
  }

  list(): FunctionVersion[] {
    // Byte order, as SQLite sorts them.
    return [...this.latest.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  info(name: string): { latest: FunctionVersion; versions: FunctionVersion[]; instances: { busy: number; idle: number; queued: number }; asyncEvents: number } {
    const latest = this.require(name);
    return {
      latest,
      versions: this.functions.versions(name),
      instances: this.loadedRuntime?.stats(name) ?? { busy: 0, idle: 0, queued: 0 },
      asyncEvents: this.queue.queued(name),
    };
  }

  /** The function's log file (console output and START/END/REPORT lines), for `outpost logs`. */
  logs(name: string, request: { offset?: number; lines: number }): Promise<LogChunk> {
    this.require(name);
    return readLog(join(functionRoot(this.context.dataDir, name), 'logs', 'function.log'), request);
  }

  /** Deploys a directory's template (see deploy.ts); new versions take traffic once committed. */
  deploy(path: string): Promise<DeployOutcome[]> {
    return this.serialized(async () => {
      const [{ deployDirectory }, runtime] = await Promise.all([import('./deploy.js'), this.runtime()]);
      const { outcomes, versions } = await deployDirectory(path, {
        dataDir: this.context.dataDir,
        functions: this.functions,
        commit: this.context.store.commit,
        check: (version) => runtime.check(version),
      });
      for (const version of versions) {
        this.latest.set(version.name, version);
        await this.triggers.set(version.name, version.spec.topics);
        await this.schedules.set(version.name, version.spec.schedules ?? []);
        this.queue.changed(version.name);
        this.log.info({ function: version.name, version: version.version, hash: version.hash }, 'function deployed');
      }
      return outcomes;
    });
  }

  /** Removes a function, its versions, code and logs. */
  remove(name: string): Promise<void> {
    return this.serialized(async () => {
      this.require(name);
      await this.triggers.remove(name);
      this.schedules.remove(name);
      this.latest.delete(name);
      this.loadedRuntime?.remove(name);
      await this.queue.remove(name);
      await this.context.store.commit.run(() => this.functions.remove(name));
      await rm(functionRoot(this.context.dataDir, name), { recursive: true, force: true });
      this.log.info({ function: name }, 'function removed');
    });
  }

  /**
   * RequestResponse runs now (429 beyond the function's concurrency). Event is committed to the
   * durable queue and then answered with its id (429 when the function's queue is full).
   */
  async invoke(name: string, invocation: Invocation, type: 'RequestResponse'): Promise<InvokeResult>;
  async invoke(name: string, invocation: Invocation, type: 'Event', source?: EventSource): Promise<{ eventId: number }>;
  async invoke(name: string, invocation: Invocation, type: InvocationType, source: EventSource = 'invoke'): Promise<InvokeResult | { eventId: number }> {
    if (!this.running) throw apiErrors.stopping();
    const version = this.require(name);
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD : MAX_SYNC_PAYLOAD;
    if (Buffer.byteLength(invocation.event) > limit) throw apiErrors.payloadTooLarge(limit);
    if (type === 'Event') return { eventId: await this.queue.enqueue(version, invocation, source) };
    const runtime = await this.runtime();
    return runtime.invoke(version, invocation);
  }

  exists(name: string): boolean {
    return this.latest.has(name);
  }

  invokeAsync(name: string, event: string, source: EventSource): Promise<{ eventId: number }> {
    return this.invoke(name, { event }, 'Event', source);
  }

  /** Dead letters, oldest first (at most DEAD_LETTER_PAGE). */
  deadLetters(name: string | undefined): DeadLetter[] {
    return this.events.deadLetters(name, DEAD_LETTER_PAGE);
  }

  /** Replays one dead letter by id, or all of them (of one function). */
  async replay(selection: { id: number } | { all: true; name?: string }): ReturnType<AsyncQueue['replay']> {
    if (!this.running) throw apiErrors.stopping();
    let letters: DeadLetter[];
    if ('id' in selection) {
      const letter = this.events.getDeadLetter(selection.id);
      if (!letter) throw apiErrors.deadLetterNotFound(selection.id);
      this.require(letter.function);
      letters = [letter];
    } else {
      letters = this.events.deadLetters(selection.name, DEAD_LETTER_PAGE);
    }
    const outcome = await this.queue.replay(letters);
    if ('id' in selection && outcome.replayed.length === 0) {
      throw outcome.skipped[0]?.reason.includes('full') ? apiErrors.tooManyRequests() : apiErrors.deadLetterNotFound(selection.id);
    }
    return outcome;
  }

  /** Deletes the dead letters of one function, or all. */
  purgeDeadLetters(name: string | undefined): Promise<number> {
    return this.context.store.commit.run(() => this.events.purge(name));
  }

  /**
   * Resolves once the event is committed to the durable queue, and only then does the device get its
   * PUBACK. A refusal (the function's queue is full, the service stopping) drops the event and counts
   * it: withholding the PUBACK would make the device resend into the same full queue. A failed commit
   * rejects, so the PUBACK is withheld and the device resends.
   */
  private async onTriggerMessage(name: string, message: BusMessage): Promise<void> {
    // The topic reaches the handler as context.clientContext.Custom.subject.
    const invocation = { event: eventOf(message.payload), clientContext: { Custom: { subject: message.topic } } };
    try {
      await this.invoke(name, invocation, 'Event', 'mqtt');
    } catch (error) {
      if (!(error instanceof FunctionApiError)) throw error;
      this.droppedEvents++;
      this.log.warn({ function: name, topic: message.topic, reason: error.message }, 'MQTT event dropped');
    }
  }

  /** A schedule fired: the Scheduled Event (or the rule's Input) goes through the durable queue. */
  private onSchedule(name: string, schedule: ScheduleSpec, now: Date): void {
    if (!this.running) return;
    const invocation = { event: schedule.input ?? scheduledEvent(schedule.rule, now, REGION, ACCOUNT) };
    this.invoke(name, invocation, 'Event', 'schedule').catch((error: Error) => {
      this.droppedEvents++;
      this.log.warn({ function: name, schedule: schedule.expression, reason: error.message }, 'scheduled event dropped');
    });
  }

  private require(name: string): FunctionVersion {
    const version = this.latest.get(name);
    if (!version) throw apiErrors.notFound(name);
    return version;
  }

  private runtime(): Promise<FunctionRuntime> {
    const { maxInstances, idleTimeoutSeconds, queueLength, logFileBytes, pythonPath } = this.context.config.functions;
    this.runtimeLoading ??= import('./runtime/runtime.js').then(({ FunctionRuntime }) => {
      this.loadedRuntime = new FunctionRuntime(this.context.dataDir, { maxInstances, idleTimeoutMs: idleTimeoutSeconds * 1000, queueLength, logFileBytes, pythonPath }, this.log, this.metrics);
      return this.loadedRuntime;
    });
    return this.runtimeLoading;
  }

  private serialized<T>(change: () => Promise<T>): Promise<T> {
    const result = this.changes.then(change);
    this.changes = result.catch(() => undefined);
    return result;
  }
}
