import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { shareRootPath } from '../config/load.js';
import { freeBytes } from '../metrics/registry.js';
import { localUrl, type Listener, type Service, type ServiceContext, type ServiceHealth } from '../service.js';
import { registerObjectAdminRoutes } from './admin-routes.js';
import { ObjectEvents } from './events.js';
import { LifecycleExpiration } from './lifecycle-expiration.js';
import { objectMigrations, ObjectStore } from './object-store.js';
import { rulesOf } from './operations/notification-rules.js';
import { S3Server } from './s3-server.js';
import { FileShare } from './share/file-share.js';

/**
 * The S3-compatible object store (issue 5): objects are plain files under the share root, their
 * metadata and key index in SQLite, served by the S3 API on `s3.port`; changes become S3 event
 * records for functions and the local bus.
 */
export class ObjectService implements Service {
  readonly name = 'objects';
  private objects: ObjectStore | undefined;
  private events: ObjectEvents | undefined;
  private server: S3Server | undefined;
  private share: FileShare | undefined;
  private uploadSweep: NodeJS.Timeout | undefined;
  private lifecycle: LifecycleExpiration | undefined;
  private lifecycleTimer: NodeJS.Timeout | undefined;
  /** The lifecycle pass under way: stop() waits for it before closing the store. */
  private lifecyclePass: Promise<void> | undefined;
  private stopped = false;
  private readonly requests: Counter<'operation' | 'status'>;
  /**
   * The counter of each operation and status, bound once: prom-client hashes a label object on
   * every inc(). Bounded by the routes' operations times the statuses S3 answers with.
   */
  private readonly requestCounters = new Map<string, Counter.Internal>();

  constructor(private readonly context: ServiceContext) {
    const registers = [context.metrics];
    this.requests = new Counter({ name: 'outpost_s3_requests_total', help: 'S3 API requests by operation and HTTP status', labelNames: ['operation', 'status'], registers });
    const service = this;
    new Gauge({ name: 'outpost_s3_pending_events', help: 'Object events not yet delivered to functions and the bus', registers,
      collect() { this.set(service.events?.pending ?? 0); } });
    new Gauge({ name: 'outpost_s3_bodies_waiting', help: 'Request bodies of 1 MiB or more waiting, paused, for their turn to be read (two are read at a time)', registers,
      collect() { this.set(service.objects?.bodyTurns.waiting ?? 0); } });
    new Gauge({ name: 'outpost_s3_share_copies_pending', help: 'Small objects, held in the database, whose share file is not written yet (a full or read-only share): tried again after 5 s, then less often', registers,
      collect() { this.set(service.objects?.shareCopiesPending() ?? 0); } });
    new Gauge({ name: 'outpost_s3_share_free_bytes', help: "Space left on the share root's filesystem (larger objects, share files): writes get 507 when it runs out", registers,
      collect() { this.set(freeBytes(service.shareRoot)); } });
    registerObjectAdminRoutes(context.admin, {
      objects: () => this.store(),
      functions: context.functions,
      accessKeys: context.accessKeys,
      endpoint: () => localUrl({ name: 's3', protocol: context.config.s3.tls.enabled ? 'https' : 'http', host: context.config.s3.host, port: this.server?.port ?? context.config.s3.port }),
      region: context.config.s3.region,
    });
  }

  /** The share root: `s3.shareRoot`, else `<dataDir>/share`. The file share service works on the same tree. */
  get shareRoot(): string {
    return shareRootPath(this.context.config, this.context.dataDir);
  }

  /** The store, for the file share (importFile, forgetFile, shareFileOwner, list); available once started. */
  store(): ObjectStore {
    if (!this.objects) throw new Error('the object store is not started');
    return this.objects;
  }

  private requestCounter(operation: string, status: number): Counter.Internal {
    const name = `${operation} ${status}`;
    let counter = this.requestCounters.get(name);
    if (!counter) {
      counter = this.requests.labels(operation, String(status));
      this.requestCounters.set(name, counter);
    }
    return counter;
  }

  async start(): Promise<void> {
    const { config, store, log } = this.context;
    const s3 = config.s3;
    store.migrate('objects', objectMigrations);
    const serviceLog = log.child({ service: 'objects' });
    const events = new ObjectEvents(store, (bucket) => rulesOf(this.store(), bucket), s3.region, this.context.bus, this.context.functions, s3.maxPendingEvents, serviceLog);
    const objects = new ObjectStore(store, this.shareRoot, events, { maxObjectBytes: s3.maxObjectBytes, minPartBytes: s3.minPartBytes, smallObjectBytes: s3.smallObjectBytes, writeBufferBytes: s3.writeBufferBytes }, serviceLog);
    await objects.recover();
    this.objects = objects;
    this.events = events;
    // events a crash or stop left undelivered
    events.kick();
    this.server = new S3Server(s3, this.context.accessKeys, { objects, events, config: s3, functions: this.context.functions }, this.context.bodyMemory, serviceLog,
      (operation, status) => this.requestCounter(operation, status).inc());
    await this.server.start();
    this.sweepAbandonedUploads(objects, s3.abortIncompleteUploadsAfterSeconds * 1000, serviceLog);
    this.runLifecycleRules(new LifecycleExpiration(objects, events), s3.lifecycleIntervalSeconds * 1000, serviceLog);
    if (s3.share.watch) {
      this.share = new FileShare(objects, s3.share, serviceLog);
      this.share.start();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.uploadSweep);
    clearTimeout(this.lifecycleTimer);
    this.lifecycle?.stop();
    await this.share?.stop();
    await this.server?.stop();
    await this.lifecyclePass;
    await this.objects?.close();
    this.events?.stop();
  }

  /**
   * Aborts abandoned multipart uploads now and then: every half of their lifetime, at least every
   * second and at most every hour, so an upload outlives its lifetime by at most that much.
   */
  private sweepAbandonedUploads(objects: ObjectStore, lifetimeMs: number, log: Logger): void {
    const everyMs = Math.min(Math.max(lifetimeMs / 2, 1000), 3600_000);
    const sweep = async () => {
      if (this.stopped) return;
      try {
        // The wall clock, which uploads' Initiated times were read from, as the lifecycle passes'
        // (below): on the steady clock, a board without a real-time clock that started on a stale
        // time aborted no upload begun after NTP set the clock until the daemon restarted.
        const aborted = await objects.abortUploadsInitiatedBefore(Date.now() - lifetimeMs);
        if (aborted) log.info({ aborted }, 'aborted multipart uploads left incomplete past s3.abortIncompleteUploadsAfterSeconds');
      } catch (error) {
        log.warn({ err: error }, 'could not abort expired multipart uploads; trying again later');
      }
      if (!this.stopped) this.uploadSweep = setTimeout(sweep, everyMs).unref();
    };
    void sweep();
  }

  /** Carries out the buckets' lifecycle rules now and every `everyMs`, a pass at a time. */
  private runLifecycleRules(lifecycle: LifecycleExpiration, everyMs: number, log: Logger): void {
    this.lifecycle = lifecycle;
    const pass = async () => {
      try {
        // The wall clock, which objects' creation times were read from: on the steady clock, a board
        // without a real-time clock that started on a stale time would expire nothing written after
        // NTP set the clock until the daemon restarts (months, on a gateway left alone).
        const { expired, aborted } = await lifecycle.run(Date.now());
        if (expired || aborted) log.info({ expired, aborted }, 'carried out bucket lifecycle rules: expired objects deleted, incomplete multipart uploads aborted');
      } catch (error) {
        log.warn({ err: error }, 'could not carry out bucket lifecycle rules; trying again later');
      }
      if (!this.stopped) this.lifecycleTimer = setTimeout(() => { this.lifecyclePass = pass(); }, everyMs).unref();
    };
    this.lifecyclePass = pass();
  }

  health(): ServiceHealth {
    // the share's drive not mounted (ShareVolume): the store takes no writes
    if (this.objects && !this.objects.shareAvailable()) return { ok: false, detail: `file share's drive not there (not mounted?): ${this.shareRoot}` };
    return { ok: true };
  }

  status(): Record<string, unknown> {
    return {
      buckets: this.objects?.buckets().length ?? 0, pendingEvents: this.events?.pending ?? 0,
      shareCopiesPending: this.objects?.shareCopiesPending() ?? 0, shareRoot: this.shareRoot,
    };
  }

  reloadFiles(): string[] {
    return this.server?.reloadTls() ? ['s3'] : [];
  }

  listeners(): Listener[] {
    return this.server ? [{ name: 's3', protocol: this.context.config.s3.tls.enabled ? 'https' : 'http', host: this.context.config.s3.host, port: this.server.port }] : [];
  }
}
