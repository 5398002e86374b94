import { randomUUID } from 'node:crypto';
import { MAX_TIMER_MS, steadyNow } from '../steady-clock.js';
import type { Logger } from 'pino';
import type { LocalBus } from '../bus.js';
import { topicMatches } from '../broker/topic.js';
import type { GroupCommit } from '../store/group-commit.js';
import { AsyncEventStore, type DeadLetter, type DeadLetterReason, type ErrorSummary, type EventSource, type QueuedEvent } from './async-store.js';
import { DueLine } from './due-line.js';
import { TickBatch } from './tick-batch.js';
import { apiErrors, FunctionApiError } from './errors.js';
import type { Invocation, InvokeResult } from './runtime/pool.js';
import { NODE_EVENTS_IN_FLIGHT } from './runtime/protocol.js';
import type { FunctionRuntime, Target } from './runtime/runtime.js';
import type { FunctionVersion } from './store.js';
import { functionArn } from './arn.js';
import type { Destination } from './template.js';
import { responseValue } from './json.js';

/** Lambda's limit of an asynchronous event (1 MB; a synchronous request's is 6 MB). */
export const MAX_ASYNC_PAYLOAD = 1024 * 1024;
/** Room an invocation record takes besides its request and response payloads (its context, the ARN). */
const RECORD_OVERHEAD_BYTES = 2048;
/** A handler's answer of undefined or null, which publishes no output. */
const NULL_RESULT = Buffer.from('null');

export interface AsyncQueueConfig {
  maxInstances: number;
  queueLength: number;
  maxRetryAttempts: number;
  retryDelaysSeconds: number[];
  maxEventAgeSeconds: number;
  dlqLength: number;
  /** Payload bytes of the events running at once, every function's together (one always runs). */
  maxEventBytesInFlight: number;
}

export interface AsyncQueueDeps {
  store: AsyncEventStore;
  commit: GroupCommit;
  bus: LocalBus;
  log: Logger;
  config: AsyncQueueConfig;
  /** `$LATEST` of a function, undefined once removed. */
  latest: (name: string) => FunctionVersion | undefined;
  /** The version an event invoked with `qualifier` runs now (an alias may have moved); throws a 404 FunctionApiError when it is gone. */
  resolve: (name: string, qualifier: string | undefined) => { version: FunctionVersion; target: Target };
  runtime: () => Promise<FunctionRuntime>;
  /** Invokes a destination function (NAME, NAME:QUALIFIER or ARN) asynchronously with an invocation record, `hops` into its chain. */
  invokeDestination: (functionName: string, record: string, hops: number) => Promise<unknown>;
}

/** A queued event's place in line; a fresh one carries the event itself, so its first attempt need not read it back. */
interface Waiting {
  id: number;
  due: number;
  enqueuedAt: number;
  event?: QueuedEvent;
}

// What a function with ReservedConcurrentExecutions: 0 answers its events with, as Lambda's throttle.
const THROTTLED: ErrorSummary = { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' };

/** One function's events: ids in the order they are due, and what runs or is being accepted now. */
interface Lane {
  waiting: DueLine<Waiting>;
  running: number;
  /** Accepted but not yet committed: counted against the queue length. */
  accepting: number;
  timer?: NodeJS.Timeout;
  timerDue?: number;
}

/**
 * Lambda's recursive loop detection: an event is not run when this many invocations came before it in
 * its chain of destination records (A's OnSuccess invokes B, whose OnSuccess invokes A, …); it goes
 * to the dead-letter queue and the OnFailure destination instead, as Lambda stops a loop after 16.
 */
export const MAX_CHAIN_INVOCATIONS = 16;
const RECURSIVE_LOOP: ErrorSummary = {
  errorType: 'RecursiveInvocationException',
  errorMessage: 'Lambda has detected your function being invoked in a recursive loop with other AWS resources and stopped your function\'s invocation.',
};

// A dispatch that failed for a reason other than the function (a commit error): try again after this.
const HICCUP_DELAY_MS = 1000;

/** The topic a dead letter is published on, as JSON. */
export const dlqTopic = (name: string) => `$outpost/dlq/${name}`;

/**
 * The durable asynchronous queue: an Event invocation is a row of `function_events`, committed
 * before it is accepted. The dispatcher runs due events within the function's concurrency,
 * deletes them on success, and on error records the attempt and schedules a retry after the
 * configured delay, or moves the event to the dead-letter queue when its retries are exhausted
 * or its next attempt would be past the maximum event age. Only ids and due times are held in
 * memory; each event's payload is read from SQLite when it runs.
 *
 * At start every row is due again: events in flight at a crash run once more (at least once).
 */
export class AsyncQueue {
  private readonly lanes = new Map<string, Lane>();
  private stopped = false;
  /** Payload bytes of the events running now, and the functions whose next event waits for room in them. */
  private runningBytes = 0;
  private readonly waitingForBytes = new Set<string>();
  /** Events refused because their function's queue was full. */
  throttled = 0;
  /** Dead letters deleted because a function had `dlqLength` of them. */
  trimmedDeadLetters = 0;
  /** New events and succeeded ones: each tick's inserts and deletes are one write each. */
  private readonly inserts: TickBatch<{ name: string; invocation: Invocation; source: EventSource; now: number; requestId: string }, number | null>;
  private readonly deletes: TickBatch<number, void>;

  constructor(private readonly deps: AsyncQueueDeps) {
    const { store, commit } = deps;
    // a function removed while its event waited for the batch gets none (null): its removal deleted the queued ones
    this.inserts = new TickBatch(commit, (rows) => rows.map(({ name, invocation, source, now, requestId }) => (deps.latest(name)
      ? store.insert(name, invocation.event, invocation.clientContext, invocation.qualifier, source, now, requestId, invocation.hops)
      : null)));
    this.deletes = new TickBatch(commit, (ids) => ids.map((id) => store.delete(id)));
  }

  /** Loads the queued events of the previous run; returns how many. Events of unknown functions are deleted. */
  recover(): number {
    let count = 0;
    const orphans = new Set<string>();
    // a retry stored by a run whose clock was ahead (a board's stale or stepped time) waits no
    // longer than the longest retry delay from now
    const latestDue = steadyNow() + Math.max(...this.deps.config.retryDelaysSeconds) * 1000;
    for (const { id, name, due, enqueuedAt } of this.deps.store.pending()) {
      if (!this.deps.latest(name)) { orphans.add(name); continue; }
      this.lane(name).waiting.insert({ id, due: Math.min(due, latestDue), enqueuedAt });
      count++;
    }
    for (const name of orphans) void this.deps.commit.run(() => this.deps.store.removeFunction(name)).catch(() => undefined);
    for (const name of this.lanes.keys()) this.pump(name);
    return count;
  }

  /**
   * Commits the event, then accepts it (resolves with its id and request id, which each of its
   * attempts keeps, as on Lambda); 429 when the function's queue is full.
   */
  async enqueue(version: FunctionVersion, invocation: Invocation, source: EventSource): Promise<{ eventId: number; requestId: string }> {
    if (this.stopped) throw apiErrors.stopping();
    const lane = this.lane(version.name);
    if (this.size(lane) >= this.deps.config.queueLength) {
      this.throttled++;
      throw apiErrors.tooManyRequests();
    }
    lane.accepting++;
    let id: number | null;
    // whole milliseconds, as Date.now(): the event's enqueuedAt, shown by dlq ls and on the DLQ topic
    const now = Math.round(steadyNow());
    const requestId = randomUUID();
    try {
      id = await this.inserts.add({ name: version.name, invocation, source, now, requestId });
    } finally {
      lane.accepting--;
    }
    if (id === null) {
      this.pump(version.name);
      throw apiErrors.notFound(version.name);
    }
    const latest = this.deps.latest(version.name);
    if (latest) {
      // The payload is kept only for an event that runs at once; one that waits is read back from
      // SQLite when its turn comes, so a full queue (queueLength events of up to 1 MiB each) costs ids only.
      // as pump admits it, which runs next
      const runsNow = lane.waiting.length === 0 && lane.running < this.inFlightLimit(latest);
      const event: QueuedEvent | undefined = runsNow ? {
        id, name: version.name, event: invocation.event, source, enqueuedAt: now, attempts: 0, nextAttemptAt: now, hops: invocation.hops ?? 0, requestId,
        ...(invocation.clientContext !== undefined ? { clientContext: invocation.clientContext } : {}),
        ...(invocation.qualifier !== undefined ? { qualifier: invocation.qualifier } : {}),
      } : undefined;
      lane.waiting.insert({ id, due: steadyNow(), enqueuedAt: now, ...(event ? { event } : {}) });
    }
    // also for a function removed since the write: its lane goes
    this.pump(version.name);
    return { eventId: id, requestId };
  }

  /** Events of the function not yet run to success or dead-lettered. */
  queued(name: string): number {
    const lane = this.lanes.get(name);
    return lane ? lane.waiting.length + lane.running : 0;
  }

  /** `queued` for every function with events, for the metrics. */
  depths(): Map<string, number> {
    const depths = new Map<string, number>();
    for (const name of this.lanes.keys()) depths.set(name, this.queued(name));
    return depths;
  }

  totals(): { queued: number; running: number } {
    let queued = 0;
    let running = 0;
    for (const lane of this.lanes.values()) {
      queued += lane.waiting.length;
      running += lane.running;
    }
    return { queued, running };
  }

  /** Puts dead letters back on their functions' queues, as far as each queue has room. */
  async replay(letters: DeadLetter[]): Promise<{ replayed: Array<{ id: number; eventId: number }>; skipped: Array<{ id: number; reason: string }> }> {
    if (this.stopped) throw apiErrors.stopping();
    const accepted: DeadLetter[] = [];
    const skipped: Array<{ id: number; reason: string }> = [];
    const room = new Map<string, number>();
    for (const letter of letters) {
      if (!this.deps.latest(letter.function)) { skipped.push({ id: letter.id, reason: `Function not found: ${letter.function}` }); continue; }
      const free = room.get(letter.function) ?? this.deps.config.queueLength - this.size(this.lane(letter.function));
      if (free <= 0) { skipped.push({ id: letter.id, reason: 'the function\'s queue is full' }); continue; }
      room.set(letter.function, free - 1);
      accepted.push(letter);
    }
    for (const letter of accepted) this.lane(letter.function).accepting++;
    let ids: Array<number | 'removed' | undefined>;
    try {
      // the function is looked up again inside the write: one removed meanwhile gets no events
      ids = await this.deps.commit.run(() => accepted.map((letter) => (this.deps.latest(letter.function) ? this.deps.store.replay(letter, steadyNow()) : 'removed')));
    } finally {
      for (const letter of accepted) this.lane(letter.function).accepting--;
    }
    const replayed: Array<{ id: number; eventId: number }> = [];
    accepted.forEach((letter, i) => {
      const eventId = ids[i];
      if (eventId === 'removed') { skipped.push({ id: letter.id, reason: `Function not found: ${letter.function}` }); return; }
      if (eventId === undefined) { skipped.push({ id: letter.id, reason: 'already replayed or purged' }); return; }
      replayed.push({ id: letter.id, eventId });
      // removed since the write: its removal deleted the event
      if (this.deps.latest(letter.function)) this.lane(letter.function).waiting.insert({ id: eventId, due: steadyNow(), enqueuedAt: steadyNow() });
    });
    for (const name of new Set(accepted.map((letter) => letter.function))) this.pump(name);
    return { replayed, skipped };
  }

  /** A removed function: its queued events are deleted; attempts running now finish and find nothing. */
  async remove(name: string): Promise<void> {
    const lane = this.lanes.get(name);
    if (lane) {
      clearTimeout(lane.timer);
      lane.waiting.clear();
      lane.timer = undefined;
      if (lane.running === 0 && lane.accepting === 0) this.lanes.delete(name);
    }
    await this.deps.commit.run(() => this.deps.store.removeFunction(name));
  }

  /** A new version may have another concurrency: let it take what it can. */
  changed(name: string): void {
    if (this.lanes.has(name)) this.pump(name);
  }

  /** Stops dispatching; what is queued or running stays in SQLite and runs after the restart. */
  stop(): void {
    this.stopped = true;
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
  }

  private size(lane: Lane): number {
    return lane.waiting.length + lane.running + lane.accepting;
  }

  private lane(name: string): Lane {
    let lane = this.lanes.get(name);
    if (!lane) {
      lane = { waiting: new DueLine(), running: 0, accepting: 0 };
      this.lanes.set(name, lane);
    }
    return lane;
  }

  /** Starts the due events the function has room for (a batch per instance), then arms a timer for the next. */
  private pump(name: string): void {
    const lane = this.lanes.get(name);
    const version = this.deps.latest(name);
    if (!lane || this.stopped) return;
    if (!version) {
      // a removed function's lane, kept by the work that was under way, goes with the last of it
      if (lane.running === 0 && lane.accepting === 0) this.lanes.delete(name);
      return;
    }
    const limit = this.inFlightLimit(version);
    if (limit === 0) return this.ageOutThrottled(name, lane, version);
    const now = steadyNow();
    while (lane.running < limit && lane.waiting.length > 0 && lane.waiting.first()!.due <= now) {
      const bytes = this.payloadBytes(lane.waiting.first()!);
      // each is held in the daemon and copied into its environment: 80 events of 1 MB took RSS to 180 MB
      if (this.runningBytes > 0 && this.runningBytes + bytes > this.deps.config.maxEventBytesInFlight) {
        this.waitingForBytes.add(name);
        break;
      }
      const { id, event, due } = lane.waiting.shift()!;
      lane.running++;
      this.runningBytes += bytes;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        lane.running--;
        this.runningBytes -= bytes;
        this.pump(name);
        this.pumpWaitingForBytes();
      };
      // counted from when it was due: an event that waited here behind others does not wait again in its pool (waitForBusyMs)
      const dueSince = performance.now() - Math.max(0, now - due);
      void this.attempt(name, id, release, event, dueSince).finally(release);
    }
    const next = lane.waiting.first();
    if (next && next.due > now && lane.running < limit && lane.timerDue !== next.due) {
      clearTimeout(lane.timer);
      lane.timerDue = next.due;
      lane.timer = setTimeout(() => {
        lane.timer = undefined;
        lane.timerDue = undefined;
        this.pump(name);
      }, Math.min(MAX_TIMER_MS, next.due - now)).unref();
    }
  }

  private payloadBytes(waiting: Waiting): number {
    return waiting.event ? Buffer.byteLength(waiting.event.event) : this.deps.store.eventBytes(waiting.id) ?? 0;
  }

  private pumpWaitingForBytes(): void {
    const names = [...this.waitingForBytes];
    this.waitingForBytes.clear();
    for (const name of names) this.pump(name);
  }

  /** Events of the function run at once: each instance is handed a batch (runtime/pool.ts); a Python one takes them one by one from its pool's queue. */
  private inFlightLimit(version: FunctionVersion): number {
    return (version.spec.reservedConcurrency ?? this.deps.config.maxInstances) * NODE_EVENTS_IN_FLIGHT;
  }

  /**
   * One attempt of one event; never rejects. `release` frees the event's
   * instance slot as soon as the function answered: removing a succeeded
   * event then commits while the next one already runs (a crash before that
   * commit runs it again — at least once).
   */
  private async attempt(name: string, id: number, release: () => void, fresh: QueuedEvent | undefined, dueSince: number): Promise<void> {
    const { store, commit, log } = this.deps;
    try {
      const event = fresh ?? store.get(id);
      if (!event || !this.deps.latest(name)) return;
      let resolved: { version: FunctionVersion; target: Target };
      try {
        resolved = this.deps.resolve(name, event.qualifier);
      } catch (error) {
        // Its alias or version was removed since: it cannot run any more.
        if (!(error instanceof FunctionApiError) || error.status !== 404) throw error;
        await this.deadLetter(event, 'RetriesExhausted', { errorType: error.type, errorMessage: error.message });
        return;
      }
      const { version, target } = resolved;
      if (event.hops >= MAX_CHAIN_INVOCATIONS) {
        await this.deadLetter(event, 'RecursiveLoop', RECURSIVE_LOOP, version);
        return;
      }
      const maxRetries = version.spec.maxRetryAttempts ?? this.deps.config.maxRetryAttempts;
      const maxAgeMs = (version.spec.maxEventAgeSeconds ?? this.deps.config.maxEventAgeSeconds) * 1000;
      if (steadyNow() - event.enqueuedAt > maxAgeMs) {
        await this.deadLetter(event, 'EventAgeExceeded', event.lastError ?? ageError(maxAgeMs), version);
        return;
      }
      const runtime = await this.deps.runtime();
      const invocation: Invocation = {
        event: event.event,
        requestId: event.requestId,
        dueSince,
        ...(event.clientContext !== undefined ? { clientContext: event.clientContext } : {}),
        ...(event.qualifier !== undefined ? { qualifier: event.qualifier } : {}),
      };
      const result = await runtime.enqueue(version, invocation, target);
      if (!result.functionError) {
        release();
        // Published before the event is removed: a crash in between publishes it again (at least once).
        await this.publishOutputs(version, event, result);
        await this.sendRecord(version.spec.destinations?.onSuccess, event, 'Success', event.attempts + 1, result);
        await this.deletes.add(id);
        return;
      }
      const error = errorOf(result);
      const attempts = event.attempts + 1;
      log.warn({ function: name, eventId: id, requestId: result.requestId, attempt: attempts, error }, 'asynchronous invocation failed');
      const failed = { ...event, attempts, lastError: error };
      if (attempts > maxRetries) {
        await this.deadLetter(failed, 'RetriesExhausted', error, version, result);
        return;
      }
      const delays = this.deps.config.retryDelaysSeconds;
      const due = steadyNow() + delays[Math.min(attempts, delays.length) - 1] * 1000;
      if (due - event.enqueuedAt > maxAgeMs) {
        await this.deadLetter(failed, 'EventAgeExceeded', error, version, result);
        return;
      }
      await commit.run(() => store.failed(id, attempts, due, error));
      this.requeue(name, id, due, event.enqueuedAt);
    } catch (error) {
      if (this.stopped || (error instanceof FunctionApiError && error.status === 503)) return;
      // Not the function's fault (a commit that failed): the attempt does not count.
      log.error({ err: error, function: name, eventId: id }, 'cannot dispatch an asynchronous event; trying again');
      this.requeue(name, id, steadyNow() + HICCUP_DELAY_MS, fresh?.enqueuedAt ?? steadyNow());
    }
  }

  /**
   * DestinationConfig: the invocation record (Lambda's shape, version 1.0) goes to a function as an
   * asynchronous event, or to an MQTT topic at QoS 1. `result` is the last attempt's, if one ran.
   * A destination that cannot take it (a removed function, a full queue) is logged: the event itself
   * is done either way, as on Lambda.
   */
  private async sendRecord(destination: Destination | undefined, event: QueuedEvent, condition: 'Success' | DeadLetterReason,
    invokeCount: number, result: InvokeResult | undefined, error?: ErrorSummary): Promise<void> {
    if (!destination) return;
    // A loop stopped here: its record would only be stopped in turn at the next function.
    if (destination.type === 'Lambda' && event.hops >= MAX_CHAIN_INVOCATIONS) return;
    // As Lambda drops the payloads of a record its destination cannot take (SNS: 256 KB), rather than
    // build, for nothing, a record of up to 7 MB on the daemon's heap: an MQTT destination takes what
    // an MQTT client may, a function what an asynchronous event may.
    const limit = destination.type === 'MQTT' ? this.deps.bus.maxPacketBytes : MAX_ASYNC_PAYLOAD;
    const payloadsFit = Buffer.byteLength(event.event) + (result?.payload.length ?? 0) + RECORD_OVERHEAD_BYTES <= limit;
    const record = JSON.stringify({
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: event.requestId,
        functionArn: functionArn(event.name, event.qualifier ?? '$LATEST'),
        condition,
        approximateInvokeCount: invokeCount,
      },
      ...(payloadsFit ? { requestPayload: JSON.parse(event.event) as unknown } : {}),
      // Without a result the function never ran (throttled, or too old before its turn): the error says why.
      ...(result
        ? {
          responseContext: { statusCode: 200, executedVersion: result.executedVersion, ...(result.functionError ? { functionError: result.functionError } : {}) },
          ...(payloadsFit ? { responsePayload: responseValue(result.payload) } : {}),
        }
        : { responsePayload: error }),
    });
    try {
      if (destination.type === 'MQTT') await this.deps.bus.publish({ topic: destination.destination, payload: record, qos: 1 });
      else await this.deps.invokeDestination(destination.destination, record, event.hops + 1);
    } catch (deliveryError) {
      this.deps.log.warn({ err: deliveryError, function: event.name, eventId: event.id, destination }, 'cannot deliver an invocation record to its destination');
    }
  }

  /**
   * Outputs: the result of an MQTT-triggered event goes to the OutputTopic of each trigger whose
   * filter matched the message's topic, as JSON at QoS 1; a null result publishes nothing.
   */
  private async publishOutputs(version: FunctionVersion, event: QueuedEvent, result: InvokeResult): Promise<void> {
    const subject = (event.clientContext as { Custom?: { subject?: unknown } } | undefined)?.Custom?.subject;
    if (!version.spec.outputs || typeof subject !== 'string' || result.payload.equals(NULL_RESULT)) return;
    for (const { filter, topic } of version.spec.outputs) {
      if (!topicMatches(filter, subject)) continue;
      // no MQTT client could take it (and each would be copied to every durable subscriber)
      if (result.payload.length + Buffer.byteLength(topic) + 16 > this.deps.bus.maxPacketBytes) {
        this.deps.log.warn({ function: version.name, topic, bytes: result.payload.length, maxPacketSize: this.deps.bus.maxPacketBytes },
          'a function\'s output is larger than an MQTT packet may be (mqtt.maxPacketSize): not published');
        continue;
      }
      await this.deps.bus.publish({ topic, payload: result.payload, qos: 1 })
        .catch((error: unknown) => this.deps.log.warn({ err: error, function: version.name, topic }, 'cannot publish a function\'s output'));
    }
  }

  private requeue(name: string, id: number, due: number, enqueuedAt: number): void {
    if (this.stopped || !this.deps.latest(name)) return;
    this.lane(name).waiting.insert({ id, due, enqueuedAt });
  }

  /**
   * ReservedConcurrentExecutions: 0 runs nothing: as on Lambda, the events stay throttled until the
   * function gets concurrency again (a deploy) or they reach their maximum age, when they go to the
   * dead-letter queue with TooManyRequestsException.
   */
  private ageOutThrottled(name: string, lane: Lane, version: FunctionVersion): void {
    const maxAgeMs = (version.spec.maxEventAgeSeconds ?? this.deps.config.maxEventAgeSeconds) * 1000;
    const now = steadyNow();
    const expired = lane.waiting.remove((waiting) => now - waiting.enqueuedAt >= maxAgeMs);
    for (const { id, event } of expired) {
      const queued = event ?? this.deps.store.get(id);
      if (queued) {
        this.deadLetter(queued, 'EventAgeExceeded', THROTTLED, version)
          .catch((error: unknown) => this.deps.log.error({ err: error, function: name, eventId: id }, 'cannot dead-letter a throttled event'));
      }
    }
    if (lane.waiting.length === 0) return;
    let oldest = Infinity;
    for (const waiting of lane.waiting) oldest = Math.min(oldest, waiting.enqueuedAt);
    const nextExpiry = oldest + maxAgeMs;
    clearTimeout(lane.timer);
    lane.timerDue = nextExpiry;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      lane.timerDue = undefined;
      this.pump(name);
    }, Math.min(MAX_TIMER_MS, Math.max(0, nextExpiry - now))).unref();
  }

  /**
   * Sends the invocation record to the OnFailure destination of `version` (the one that ran it; else
   * `$LATEST`), then moves the event to the DLQ and publishes the dead letter on
   * `$outpost/dlq/{function}`. The record goes first, as OnSuccess's does: a crash before the move
   * sends it again (at least once), where one after a move made first would lose it.
   */
  private async deadLetter(event: QueuedEvent, reason: DeadLetterReason, error: ErrorSummary, version?: FunctionVersion, result?: InvokeResult): Promise<void> {
    const { store, commit, bus, log, config } = this.deps;
    const onFailure = (version ?? this.deps.latest(event.name))?.spec.destinations?.onFailure;
    // an event removed meanwhile (with its function) gets no record
    if (store.get(event.id)) await this.sendRecord(onFailure, event, reason, event.attempts, result, error);
    const moved = await commit.run(() => store.deadLetter(event, reason, error, config.dlqLength, Date.now()));
    if (!moved) return;
    this.trimmedDeadLetters += moved.trimmed;
    log.warn({ function: event.name, eventId: event.id, deadLetter: moved.letter.id, reason, attempts: event.attempts, error }, 'asynchronous event sent to the dead-letter queue');
    await bus.publish({ topic: dlqTopic(event.name), payload: JSON.stringify(moved.letter), qos: 1 })
      .catch((publishError: unknown) => log.warn({ err: publishError, function: event.name }, 'cannot publish a dead letter'));
  }
}

function errorOf(result: InvokeResult): ErrorSummary {
  try {
    const payload = JSON.parse(result.payload.toString()) as { errorType?: unknown; errorMessage?: unknown };
    return { errorType: String(payload.errorType ?? 'Error'), errorMessage: String(payload.errorMessage ?? '') };
  } catch {
    return { errorType: 'Error', errorMessage: result.payload.toString('utf8', 0, 1000) };
  }
}

function ageError(maxAgeMs: number): ErrorSummary {
  return { errorType: 'EventAgeExceeded', errorMessage: `Event older than the maximum event age (${maxAgeMs / 1000} s)` };
}
