import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BusMessage } from '../bus.js';
import { localUrl, type FunctionInvoker, type Listener, type Service, type ServiceContext, type ServiceHealth } from '../service.js';
import { registerFunctionAdminRoutes } from './admin-routes.js';
import { registerLambdaInvokeRoute } from './http-invoke.js';
import { AsyncQueue } from './async-queue.js';
import { AsyncEventStore, type DeadLetter, type EventSource } from './async-store.js';
import { GATEWAY_ACCOUNT, GATEWAY_REGION } from '../gateway-identity.js';
import { functionRoot, sweepLeftoverCode } from './bundle.js';
import { readLog, type LogChunk } from './logs.js';
import { FunctionMetrics } from './metrics.js';
import { apiErrors, FunctionApiError } from './errors.js';
import type { DeployOutcome } from './deploy.js';
import type { Invocation, InvokeResult, PoolStats } from './runtime/pool.js';
import type { FunctionRuntime, Target } from './runtime/runtime.js';
import { removeStaleSocketDirs } from './runtime/socket-dirs.js';
import { FunctionStore, type Alias, type FunctionVersion } from './store.js';
import { Schedules, scheduledEvent, type ScheduleSpec } from './schedules.js';
import { checkReservations, MIN_UNRESERVED, reservationsOf, reservedTotal, setAside, unreservedPool } from './reservations.js';
import { eventOf, MqttTriggers } from './triggers.js';
import { MAX_ASYNC_PAYLOAD } from './async-queue.js';

/** Lambda's limit of a synchronous request (an Event's, MAX_ASYNC_PAYLOAD, is smaller). */
export const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;
/** The most dead letters one page of the listing (and one step of a replay of all) holds… */
const DEAD_LETTER_PAGE = 1000;
/**
 * …and of their events, as stored: 1,000 of 1 MiB would take a gigabyte. A replay holds a page three
 * times over (rows, events, the events queued again) while the replayed events already run.
 */
const DEAD_LETTER_PAGE_BYTES = MAX_ASYNC_PAYLOAD;
// How long running invocations get to finish when the daemon stops (it forces exit after 5 s).
const STOP_GRACE_MS = 3000;

export type InvocationType = 'RequestResponse' | 'Event';

/** A URL a function reaches a listener at: loopback for a wildcard address. */
/**
 * Lambda's FunctionName forms: `NAME`, `NAME:QUALIFIER`, the ARN `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`
 * and the partial ARN `ACCOUNT:function:NAME[:QUALIFIER]`.
 */
export function parseFunctionName(text: string): { name: string; qualifier?: string } {
  // A plain name, as every trigger names its function: no pattern to run per event.
  if (!text.includes(':')) return { name: text };
  const arn = /^(?:arn:aws[a-z-]*:lambda:[^:]*:[^:]*|\d{12}):function:(.+)$/.exec(text);
  const [name, qualifier, ...rest] = (arn ? arn[1] : text).split(':');
  if (rest.length > 0 || qualifier === '') throw apiErrors.invalidParameter(`${text}: expected NAME, NAME:QUALIFIER, a function ARN or a partial ARN (ACCOUNT:function:NAME)`);
  return qualifier === undefined ? { name } : { name, qualifier };
}

/** The version an invocation of the alias runs: its additional version for `weight` of them, drawn at random. */
function routedVersion(alias: Alias | undefined): number | undefined {
  if (!alias) return undefined;
  const [additional] = Object.entries(alias.additionalVersionWeights ?? {});
  return additional && Math.random() < additional[1] ? Number(additional[0]) : alias.version;
}

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
    const { maxInstances, queueLength, maxRetryAttempts, retryDelaysSeconds, maxEventAgeSeconds, dlqLength, maxEventBytesInFlight } = context.config.functions;
    this.queue = new AsyncQueue({
      store: this.events,
      commit: context.store.commit,
      bus: context.bus,
      log: this.log,
      config: { maxInstances, queueLength, maxRetryAttempts, retryDelaysSeconds, maxEventAgeSeconds, dlqLength, maxEventBytesInFlight },
      latest: (name) => this.latest.get(name),
      resolve: (name, qualifier) => this.resolveVersion(name, qualifier),
      runtime: () => this.runtime(),
      invokeDestination: (functionName, record, hops) => this.invoke(functionName, { event: record, hops }, 'Event', 'destination'),
    });
    this.metrics = new FunctionMetrics(context.metrics, { queued: () => this.queue.depths(), deadLetters: () => this.events.deadLetterCount() });
    this.triggers = new MqttTriggers(context.bus, (name, message) => this.onTriggerMessage(name, message));
    this.schedules = new Schedules(context.config.functions.scheduleClockScale, this.log, (name, schedule, now) => this.onSchedule(name, schedule, now));
    registerFunctionAdminRoutes(context.admin, this);
    registerLambdaInvokeRoute(context.http, this, context.dataPlaneAuth, context.bodyMemory, this.log);
  }

  async start(): Promise<void> {
    const leftovers = await sweepLeftoverCode(this.context.dataDir, (name) => {
      const versions = this.functions.versions(name);
      return versions.length > 0 ? new Set(versions.map((version) => version.hash)) : undefined;
    });
    if (leftovers.length > 0) this.log.info({ removed: leftovers }, 'removed code a deploy or removal cut short left behind');
    const socketDirs = await removeStaleSocketDirs();
    if (socketDirs.length > 0) this.log.info({ removed: socketDirs }, 'removed the Python runtime sockets of daemons no longer running');
    // Events queued before a stop or crash, those in flight included, run again; recovered before
    // any is taken, so none is loaded twice, and taken before the triggers subscribe.
    const recovered = this.queue.recover();
    if (recovered > 0) this.log.info({ events: recovered }, 'asynchronous events recovered');
    this.warnOfReservationsBeyondTheBound();
    this.running = true;
    for (const version of this.latest.values()) {
      await this.triggers.set(version.name, version.spec.topics);
      await this.schedules.set(version.name, version.spec.schedules ?? []);
    }
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
      environments: this.loadedRuntime?.environments ?? { warm: 0, max: this.maxConcurrency, unreserved: unreservedPool(this.reservations(), this.maxConcurrency) },
    };
  }

  list(): FunctionVersion[] {
    // Byte order, as SQLite sorts them.
    return [...this.latest.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  info(name: string): { latest: FunctionVersion; versions: FunctionVersion[]; instances: PoolStats; asyncEvents: number } {
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

  /** Deploys a directory's template or a .zip of one (see deploy.ts); new versions take traffic once committed. */
  deploy(path: string): Promise<DeployOutcome[]> {
    return this.serialized(async () => {
      const [{ deployPackage }, runtime] = await Promise.all([import('./deploy.js'), this.runtime()]);
      const { outcomes, versions } = await deployPackage(path, {
        dataDir: this.context.dataDir,
        functions: this.functions,
        commit: this.context.store.commit,
        check: (version) => runtime.check(version),
        checkReservations: (specs) => checkReservations(specs, this.reservations(), this.maxConcurrency),
        discardNew: async (name) => {
          runtime.remove(name);
          await rm(functionRoot(this.context.dataDir, name), { recursive: true, force: true });
        },
      });
      for (const version of versions) {
        await this.activate(version);
        this.log.info({ function: version.name, version: version.version, hash: version.hash }, 'function deployed');
      }
      return outcomes;
    });
  }

  /**
   * Points `$LATEST` back at an earlier version (`to`, or the one before the current), once it is
   * loaded and checked like a deploy; its triggers and schedules replace the current ones.
   */
  rollback(name: string, to?: number): Promise<{ name: string; from: number; to: number }> {
    return this.serialized(async () => {
      const current = this.require(name);
      const target = to ?? current.version - 1;
      const version = this.functions.version(name, target);
      if (!version) throw apiErrors.invalidParameter(to === undefined ? `${name}: version ${current.version} is the first; there is nothing to roll back to` : `${name}: no version ${to}`);
      if (target === current.version) throw apiErrors.invalidParameter(`${name}: $LATEST is already version ${target}`);
      checkReservations([version.spec], this.reservations(), this.maxConcurrency);
      const [{ checkVersion }, runtime] = await Promise.all([import('./deploy.js'), this.runtime()]);
      await checkVersion(version, current, (candidate) => runtime.check(candidate));
      await this.context.store.commit.run(() => this.functions.setLatest(name, target, Date.now()));
      await this.activate(version);
      this.log.info({ function: name, from: current.version, to: target }, 'function rolled back');
      return { name, from: current.version, to: target };
    });
  }

  /**
   * Creates or moves an alias (Lambda's CreateAlias/UpdateAlias): invocations of NAME:ALIAS run that
   * version, or with `additionalVersionWeights` ({"V": weight}, RoutingConfig) version V for that share of them.
   */
  setAlias(name: string, alias: string, version: number, additionalVersionWeights?: Record<string, number>): Promise<Alias & { name: string }> {
    return this.serialized(async () => {
      this.require(name);
      // Lambda's alias names: letters, digits, - and _, not all digits (those are versions), up to 128.
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(alias) || /^\d+$/.test(alias)) {
        throw apiErrors.invalidParameter(`${alias}: expected an alias name of up to 128 letters, digits, - and _, not only digits`);
      }
      if (!this.functions.version(name, version)) throw apiErrors.notFound(`${name}:${version}`);
      const additional = this.additionalVersion(name, version, additionalVersionWeights);
      await this.context.store.commit.run(() => this.functions.setAlias(name, alias, version, additional, Date.now()));
      this.log.info({ function: name, alias, version, additional }, 'alias set');
      return { name, ...this.functions.alias(name, alias)! };
    });
  }

  /** RoutingConfig.AdditionalVersionWeights: at most one other existing version, with a weight from 0 to 1. */
  private additionalVersion(name: string, version: number, weights: Record<string, number> | undefined): { version: number; weight: number } | undefined {
    const entries = Object.entries(weights ?? {});
    if (entries.length === 0) return undefined;
    if (entries.length > 1) throw apiErrors.invalidParameter('AdditionalVersionWeights: an alias routes to at most one additional version');
    const [[key, weight]] = entries;
    if (!/^[1-9]\d*$/.test(key)) throw apiErrors.invalidParameter(`AdditionalVersionWeights: ${key}: expected a version number`);
    if (typeof weight !== 'number' || !(weight >= 0 && weight <= 1)) throw apiErrors.invalidParameter(`AdditionalVersionWeights: ${key}: expected a weight from 0.0 to 1.0`);
    const additional = Number(key);
    if (additional === version) throw apiErrors.invalidParameter(`AdditionalVersionWeights: version ${key} is the alias's own version`);
    if (!this.functions.version(name, additional)) throw apiErrors.notFound(`${name}:${key}`);
    return { version: additional, weight };
  }

  removeAlias(name: string, alias: string): Promise<void> {
    return this.serialized(async () => {
      this.require(name);
      const removed = await this.context.store.commit.run(() => this.functions.removeAlias(name, alias));
      if (!removed) throw apiErrors.notFound(`${name}:${alias}`);
    });
  }

  /** `$LATEST` now points at `version`: it takes traffic, triggers and schedules. */
  private async activate(version: FunctionVersion): Promise<void> {
    this.latest.set(version.name, version);
    this.loadedRuntime?.prepare(version);
    await this.triggers.set(version.name, version.spec.topics);
    await this.schedules.set(version.name, version.spec.schedules ?? []);
    this.queue.changed(version.name);
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
  async invoke(name: string, invocation: Invocation, type: 'Event', source?: EventSource): Promise<{ eventId: number; requestId: string }>;
  async invoke(name: string, invocation: Invocation, type: InvocationType, source: EventSource = 'invoke'): Promise<InvokeResult | { eventId: number; requestId: string }> {
    if (!this.running) throw apiErrors.stopping();
    const { version, target, qualifier } = this.resolveVersion(name, invocation.qualifier);
    if (qualifier !== undefined) invocation = { ...invocation, qualifier };
    const size = Buffer.byteLength(invocation.event);
    if (type === 'Event' && size > MAX_ASYNC_PAYLOAD) throw apiErrors.eventTooLarge(size, MAX_ASYNC_PAYLOAD);
    if (size > MAX_SYNC_PAYLOAD) throw apiErrors.requestTooLarge(MAX_SYNC_PAYLOAD);
    if (type === 'Event') {
      // The queue keeps the qualifier: an alias is resolved when the event runs (and each retry).
      return this.queue.enqueue(version, invocation, source);
    }
    const runtime = await this.runtime();
    return runtime.invoke(version, invocation, target);
  }

  /**
   * The version an invocation runs, as Lambda resolves FunctionName and Qualifier: `NAME`, `NAME:QUALIFIER`
   * or the function's ARN; the qualifier `$LATEST`, a version number or an alias.
   */
  resolveVersion(name: string, qualifier: string | undefined): { version: FunctionVersion; target: Target; qualifier?: string } {
    const parsed = parseFunctionName(name);
    if (parsed.qualifier !== undefined && qualifier !== undefined && parsed.qualifier !== qualifier) {
      throw apiErrors.invalidParameter('The derived qualifier from the function name does not match the specified qualifier.');
    }
    const wanted = parsed.qualifier ?? qualifier;
    const latest = this.require(parsed.name);
    if (wanted === undefined) return { version: latest, target: '$LATEST' };
    if (wanted === '$LATEST') return { version: latest, target: '$LATEST', qualifier: wanted };
    const number = /^\d+$/.test(wanted) ? Number(wanted) : routedVersion(this.functions.alias(parsed.name, wanted));
    const version = number === undefined ? undefined : this.functions.version(parsed.name, number);
    if (!version) throw apiErrors.notFound(`${parsed.name}:${wanted}`);
    return { version, target: version.version, qualifier: wanted };
  }

  /** Aliases of a function, for `outpost functions info`. */
  aliases(name: string): Alias[] {
    this.require(name);
    return this.functions.aliases(name);
  }

  exists(name: string): boolean {
    return this.latest.has(name);
  }

  invokeAsync(name: string, event: string, source: EventSource): Promise<{ eventId: number }> {
    return this.invoke(name, { event }, 'Event', source);
  }

  /**
   * A page of dead letters after `afterId`, oldest first (of one function), their total, and the id
   * to read the next page after while more are left.
   */
  deadLetters(name: string | undefined, afterId = 0): { deadLetters: DeadLetter[]; total: number; next?: number } {
    this.requireKnown(name);
    const { letters, more } = this.events.deadLetterPage(name, afterId, DEAD_LETTER_PAGE, DEAD_LETTER_PAGE_BYTES);
    return { deadLetters: letters, total: this.events.deadLetterCount(name), ...(more ? { next: letters.at(-1)!.id } : {}) };
  }

  /** Replays one dead letter by id, or all of them (of one function). */
  async replay(selection: { id: number } | { all: true; name?: string }): ReturnType<AsyncQueue['replay']> {
    if (!this.running) throw apiErrors.stopping();
    if (!('id' in selection)) {
      this.requireKnown(selection.name);
      return this.replayAll(selection.name);
    }
    const letter = this.events.getDeadLetter(selection.id);
    if (!letter) throw apiErrors.deadLetterNotFound(selection.id);
    this.require(letter.function);
    const outcome = await this.queue.replay([letter]);
    if (outcome.replayed.length === 0) {
      throw outcome.skipped[0]?.reason.includes('full') ? apiErrors.tooManyRequests() : apiErrors.deadLetterNotFound(selection.id);
    }
    return outcome;
  }

  /**
   * Page by page, the dead letters there were when it was asked: a replayed event that fails again
   * is a new letter, left for the next replay rather than replayed round and round.
   */
  private async replayAll(name: string | undefined): ReturnType<AsyncQueue['replay']> {
    const newest = this.events.newestDeadLetterId(name);
    const outcome: Awaited<ReturnType<AsyncQueue['replay']>> = { replayed: [], skipped: [] };
    let afterId = 0;
    while (afterId < newest) {
      const page = this.events.deadLetterPage(name, afterId, DEAD_LETTER_PAGE, DEAD_LETTER_PAGE_BYTES);
      const letters = page.letters.filter((letter) => letter.id <= newest);
      if (letters.length === 0) break;
      const { replayed, skipped } = await this.queue.replay(letters);
      outcome.replayed.push(...replayed);
      outcome.skipped.push(...skipped);
      afterId = letters.at(-1)!.id;
      if (!page.more) break;
    }
    return outcome;
  }

  /** Deletes the dead letters of one function, or all. */
  purgeDeadLetters(name: string | undefined): Promise<number> {
    this.requireKnown(name);
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
      // stopping (503): refused, so the device gets no PUBACK and sends it again to the next start
      if (!(error instanceof FunctionApiError) || error.status === 503) throw error;
      this.droppedEvents++;
      this.log.warn({ function: name, topic: message.topic, reason: error.message }, 'MQTT event dropped');
    }
  }

  /** A schedule fired: the Scheduled Event (or the rule's Input) goes through the durable queue. */
  private onSchedule(name: string, schedule: ScheduleSpec, now: Date): void {
    if (!this.running) return;
    const invocation = { event: schedule.input ?? scheduledEvent(schedule.rule, now, GATEWAY_REGION, GATEWAY_ACCOUNT) };
    this.invoke(name, invocation, 'Event', 'schedule').catch((error: Error) => {
      this.droppedEvents++;
      this.log.warn({ function: name, schedule: schedule.expression, reason: error.message }, 'scheduled event dropped');
    });
  }

  private get maxConcurrency(): number {
    return this.context.config.functions.maxConcurrency;
  }

  /** The functions' ReservedConcurrentExecutions, as their `$LATEST` set them. */
  private reservations(): Map<string, number> {
    return reservationsOf(this.latest.values());
  }

  /**
   * A functions.maxConcurrency lowered below the deployed reservations does not keep the daemon or
   * the functions from starting: the reservations that do not fit are their function's maximum only.
   */
  private warnOfReservationsBeyondTheBound(): void {
    const reservations = this.reservations();
    const kept = setAside(reservations, this.maxConcurrency);
    const maximaOnly = [...reservations.keys()].filter((name) => !kept.has(name)).sort();
    if (maximaOnly.length === 0) return;
    this.log.warn({ reserved: reservedTotal(reservations), maxConcurrency: this.maxConcurrency, minUnreserved: MIN_UNRESERVED, maximaOnly },
      'the functions\' ReservedConcurrentExecutions add up to more than functions.maxConcurrency leaves them: those of maximaOnly are not set aside, only their function\'s maximum, until a deploy lowers them or the bound is raised');
  }

  /**
   * A function the dead-letter operations may name: one that exists, or one removed whose dead
   * letters are still kept. Another is a typo (or an ID taken for a name): 404, not an empty answer.
   */
  private requireKnown(name: string | undefined): void {
    if (name !== undefined && !this.latest.has(name) && this.events.deadLetterCount(name) === 0) throw apiErrors.notFound(name);
  }

  private require(name: string): FunctionVersion {
    const version = this.latest.get(name);
    if (!version) throw apiErrors.notFound(name);
    return version;
  }

  private runtime(): Promise<FunctionRuntime> {
    const { maxInstances, maxSpareThreads, maxConcurrency, idleTimeoutSeconds, queueLength, logFileBytes, pythonPath } = this.context.config.functions;
    this.runtimeLoading ??= Promise.all([import('./runtime/runtime.js'), this.gatewayEnvironment()]).then(([{ FunctionRuntime }, gatewayEnvironment]) => {
      const limits = { maxInstances, maxSpareThreads, maxConcurrency, idleTimeoutMs: idleTimeoutSeconds * 1000, queueLength, logFileBytes, pythonPath, gatewayEnvironment };
      this.loadedRuntime = new FunctionRuntime(this.context.dataDir, limits, this.log, this.metrics, this.reservations());
      return this.loadedRuntime;
    });
    return this.runtimeLoading;
  }

  /**
   * What lets an unmodified AWS SDK v3 client inside a function reach the gateway's own services: the
   * SDK's service-specific endpoint variables, from the listeners as bound (so a port configured as 0
   * is the port chosen), and the functions' service key. Read at each instance start; a listener not
   * up yet is left out.
   */
  private async gatewayEnvironment(): Promise<() => Record<string, string>> {
    const credentials: Record<string, string> = {};
    try {
      const key = await this.context.accessKeys.serviceKey('functions');
      credentials.AWS_ACCESS_KEY_ID = key.accessKeyId;
      credentials.AWS_SECRET_ACCESS_KEY = key.secretAccessKey;
    } catch (error) {
      this.log.warn({ err: error }, 'no access key for functions: AWS SDK clients in functions have no credentials');
    }
    return () => {
      const environment = { ...credentials };
      for (const listener of this.context.listeners()) {
        if (listener.name === 'http') {
          environment.AWS_ENDPOINT_URL_IOT_DATA_PLANE = localUrl(listener);
          environment.AWS_ENDPOINT_URL_LAMBDA = environment.AWS_ENDPOINT_URL_IOT_DATA_PLANE;
        } else if (listener.name === 's3') {
          environment.AWS_ENDPOINT_URL_S3 = localUrl(listener);
        }
      }
      return environment;
    };
  }

  private serialized<T>(change: () => Promise<T>): Promise<T> {
    const result = this.changes.then(change);
    this.changes = result.catch(() => undefined);
    return result;
  }
}
