import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BusMessage } from '../bus.js';
import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';
import { registerFunctionAdminRoutes } from './admin-routes.js';
import { functionRoot } from './bundle.js';
import { apiErrors } from './errors.js';
import type { DeployOutcome } from './deploy.js';
import type { Invocation, InvokeResult } from './runtime/pool.js';
import type { FunctionRuntime } from './runtime/runtime.js';
import { FunctionStore, type FunctionVersion } from './store.js';
import { eventOf, MqttTriggers } from './triggers.js';

// Lambda's payload limits: 6 MB for a synchronous request, 1 MB for an asynchronous event.
const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD = 1024 * 1024;
// How long running invocations get to finish when the daemon stops (it forces exit after 5 s).
const STOP_GRACE_MS = 3000;

export type InvocationType = 'RequestResponse' | 'Event';

/**
 * A local Lambda runtime: functions deployed from SAM templates as immutable versions, run in
 * worker threads, invoked through the admin API or by MQTT messages on the local bus.
 *
 * The worker and deploy code is loaded on first use, so a gateway without functions pays
 * nothing for them but this file, the store and the routes.
 */
export class FunctionService implements Service {
  readonly name = 'functions';
  private readonly functions: FunctionStore;
  /** `$LATEST` of every function, read from SQLite at construction and kept current by deploys. */
  private readonly latest = new Map<string, FunctionVersion>();
  private readonly triggers: MqttTriggers;
  private readonly log: Logger;
  private runtimeLoading: Promise<FunctionRuntime> | undefined;
  private loadedRuntime: FunctionRuntime | undefined;
  /** Deploys and removals run one at a time. */
  private changes: Promise<unknown> = Promise.resolve();
  private running = false;
  private droppedEvents = 0;

  constructor(private readonly context: ServiceContext) {
    this.log = context.log.child({ service: 'functions' });
    this.functions = new FunctionStore(context.store);
    for (const version of this.functions.allLatest()) this.latest.set(version.name, version);
    this.triggers = new MqttTriggers(context.bus, (name, message) => this.onTriggerMessage(name, message));
    registerFunctionAdminRoutes(context.admin, this);
  }

  async start(): Promise<void> {
    for (const version of this.latest.values()) await this.triggers.set(version.name, version.spec.topics);
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.triggers.stop();
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
    return { functions: this.latest.size, droppedEvents: this.droppedEvents };
  }

  list(): FunctionVersion[] {
    // Byte order, as SQLite sorts them.
    return [...this.latest.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  info(name: string): { latest: FunctionVersion; versions: FunctionVersion[]; instances: { busy: number; idle: number; queued: number } } {
    const latest = this.require(name);
    return { latest, versions: this.functions.versions(name), instances: this.loadedRuntime?.stats(name) ?? { busy: 0, idle: 0, queued: 0 } };
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
      this.latest.delete(name);
      this.loadedRuntime?.remove(name);
      await this.context.store.commit.run(() => this.functions.remove(name));
      await rm(functionRoot(this.context.dataDir, name), { recursive: true, force: true });
      this.log.info({ function: name }, 'function removed');
    });
  }

  /** RequestResponse runs now (429 beyond the function's concurrency); Event is queued and answered at once. */
  async invoke(name: string, invocation: Invocation, type: InvocationType): Promise<InvokeResult | undefined> {
    if (!this.running) throw apiErrors.stopping();
    const version = this.require(name);
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD : MAX_SYNC_PAYLOAD;
    if (Buffer.byteLength(invocation.event) > limit) throw apiErrors.payloadTooLarge(limit);
    const runtime = await this.runtime();
    if (type === 'Event') {
      runtime.enqueue(version, invocation);
      return undefined;
    }
    return runtime.invoke(version, invocation);
  }

  private onTriggerMessage(name: string, message: BusMessage): void {
    // The topic reaches the handler as context.clientContext.Custom.subject.
    const invocation = { event: eventOf(message.payload), clientContext: { Custom: { subject: message.topic } } };
    this.invoke(name, invocation, 'Event').catch((error: Error) => {
      this.droppedEvents++;
      this.log.warn({ function: name, topic: message.topic, reason: error.message }, 'MQTT event dropped');
    });
  }

  private require(name: string): FunctionVersion {
    const version = this.latest.get(name);
    if (!version) throw apiErrors.notFound(name);
    return version;
  }

  private runtime(): Promise<FunctionRuntime> {
    const { maxInstances, idleTimeoutSeconds, queueLength, logFileBytes } = this.context.config.functions;
    this.runtimeLoading ??= import('./runtime/runtime.js').then(({ FunctionRuntime }) => {
      this.loadedRuntime = new FunctionRuntime(this.context.dataDir, { maxInstances, idleTimeoutMs: idleTimeoutSeconds * 1000, queueLength, logFileBytes }, this.log);
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
