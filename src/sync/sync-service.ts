import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { localUrl, type Listener, type Service, type ServiceContext, type ServiceHealth } from '../service.js';
import { systemClock, type SyncClock } from './clock.js';
import { CloudLink, type CloudLimits } from './cloud-link.js';
import { installationClientId } from './client-id.js';
import { syncMigrations } from './migrations.js';
import { Outbox, type DeadLetter } from './outbox.js';
import { cloudTopicOf, messageId, Sender } from './sender.js';
import { Backoff } from './backoff.js';
import { EchoGuard, InboundBridge, OutboundBridge } from './bridge.js';
import { RuleActivity } from './activity.js';
import { ShadowSync } from './shadow-sync.js';
import { DrainRates, syncStatus, type SyncStatus } from './status.js';
import { registerSyncMetrics } from './metrics.js';
import { registerSyncAdminRoutes } from './admin-routes.js';
import { ObjectBridge, objectRoutes } from './objects/object-bridge.js';
import { ObjectUploader } from './objects/uploader.js';
import { UploadState } from './objects/upload-state.js';
import { LocalUnavailable } from './objects/upload-object.js';
import { connectS3, type LocalS3, type S3Endpoints } from './objects/s3-endpoints.js';

const SWEEP_INTERVAL_MS = 1000;
/** Every this many sweeps this boot's monotonic time is recorded: at most 5 s of an item's age is lost to a power cut. */
const SWEEPS_PER_HEARTBEAT = 5;

/**
 * The sync agent (issue 6): a durable outbox in SQLite between the local bus and the cloud MQTT
 * broker and S3 store. Bridged messages are committed before the device is acknowledged, delivered
 * live-first with the backlog draining at a set rate, and deleted only after the cloud's PUBACK;
 * objects are uploaded after each local write, verified, and deleted from the outbox only then.
 */
export class SyncService implements Service {
  readonly name = 'sync';
  private readonly log: Logger;
  private readonly clock: SyncClock;
  /** cloud.mqtt.clientId, else this installation's (see installationClientId). */
  private readonly clientId: string;
  private readonly outbox: Outbox;
  private readonly activity: RuleActivity;
  private readonly inboundActivity: RuleActivity;
  private readonly sender: Sender;
  private readonly link: CloudLink;
  private readonly outbound: OutboundBridge;
  private readonly inbound: InboundBridge;
  private readonly shadows: ShadowSync;
  /** Only with sync.objects rules. */
  private readonly objects: { bridge: ObjectBridge; uploader: ObjectUploader } | undefined;
  private readonly rates = new DrainRates();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeps = 0;
  private running = false;

  constructor(private readonly context: ServiceContext) {
    const { config, store, bus } = context;
    const { sync, cloud } = config;
    this.log = context.log.child({ service: 'sync' });
    this.clock = systemClock();
    const upgraded = store.db.prepare("SELECT 1 FROM schema_migrations WHERE service = 'sync'").get() !== undefined;
    store.migrate('sync', syncMigrations);
    // made on the first start even when configured: a version upgraded from is told from a new installation only then
    const installationId = installationClientId(store.db, upgraded, this.log, cloud.mqtt.clientId === undefined && cloud.mqtt.url !== undefined);
    this.clientId = cloud.mqtt.clientId ?? installationId;
    this.outbox = new Outbox(store, this.clock, { maxBytes: sync.maxBytes, maxAgeMs: sync.maxAgeSeconds * 1000, dlqLength: sync.dlqLength, dlqMaxBytes: sync.dlqMaxBytes });
    this.activity = new RuleActivity(this.clock.wallMs);
    // apart: an inbound rule may bear the name of an outbound one
    this.inboundActivity = new RuleActivity(this.clock.wallMs);
    this.sender = new Sender(this.outbox, store.commit, this.activity, {
      clientId: this.clientId, maxInFlight: cloud.mqtt.maxInFlight, maxInFlightBytes: cloud.mqtt.maxInFlightBytes, maxMessageBytes: cloud.mqtt.maxMessageBytes,
      drainRate: sync.drainRate, maxAttempts: sync.maxAttempts,
    }, this.log);
    const echoes = new EchoGuard();
    this.outbound = new OutboundBridge(bus, sync.outbound, this.outbox, store.commit, echoes, this.activity, (live) => this.sender.wake(live), this.log);
    const subscribeBackoff = new Backoff({ minMs: cloud.mqtt.reconnectMinMs, maxMs: cloud.mqtt.reconnectMaxMs, refusedMaxMs: cloud.mqtt.refusedRetryMaxMs }, this.clock.wallMs);
    this.inbound = new InboundBridge(bus, sync.inbound, echoes, this.inboundActivity, subscribeBackoff, this.log);
    this.shadows = new ShadowSync(bus, store, sync.shadows, cloud.mqtt, this.clock.wallMs, this.log);
    this.link = new CloudLink({ ...cloud.mqtt, clientId: this.clientId }, {
      onUp: (client, sessionPresent, limits) => {
        this.noteQosDowngrade(limits);
        // The configured shadows' topics answer shadow sync; everything else, other `$aws/things/…`
        // topics such as AWS IoT Jobs included, is for the inbound rules (PUBACK once delivered).
        client.handleMessage = (packet, done) => {
          if (!this.shadows.handles(packet.topic)) return this.inbound.deliver(packet, done);
          this.shadows.fromCloud(packet.topic, Buffer.from(packet.payload));
          done();
        };
        this.inbound.connected(client, sessionPresent);
        this.shadows.connected(client, limits);
        this.sender.connected(client, limits);
      },
      onDown: (byPeer) => {
        this.sender.disconnected(byPeer);
        this.inbound.disconnected();
        this.shadows.disconnected();
      },
    }, this.log, this.clock.wallMs);
    if (sync.objects.length > 0) {
      const uploader = new ObjectUploader(this.outbox, new UploadState(store.db), store.commit, this.activity,
        { cloud: cloud.s3, maxAttempts: sync.maxAttempts }, () => this.connectS3(), this.log, this.clock.wallMs);
      const bridge = new ObjectBridge(bus, objectRoutes(sync.objects, cloud.s3), this.outbox, store.commit, this.activity, () => uploader.wake(), this.log);
      this.objects = { bridge, uploader };
    }
    registerSyncAdminRoutes(context.admin, this);
    registerSyncMetrics(context.metrics, () => this.syncStatus());
  }

  async start(): Promise<void> {
    this.outbox.open();
    this.sender.paused = this.context.store.db.prepare("SELECT value FROM sync_state WHERE key = 'paused'").pluck().get() === 'true';
    await this.outbound.start();
    await this.shadows.start();
    await this.objects?.bridge.start();
    if (this.objects) {
      this.objects.uploader.paused = this.sender.paused;
      this.objects.uploader.start();
    }
    this.link.start();
    this.running = true;
    this.outbox.onItems = () => this.startSweeping();
    if (this.outbox.totalCount > 0) this.startSweeping();
  }

  /** Object uploads end (those under way aborted, their confirmed parts kept) while the local object store still answers. */
  async beforeStop(): Promise<void> {
    await this.objects?.uploader.stop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSweeping();
    await this.outbound.stop();
    await this.objects?.bridge.stop();
    await this.objects?.uploader.stop();
    await this.shadows.stop();
    await this.link.stop();
    await this.sender.flushAcks();
    await this.context.store.commit.run(() => this.outbox.heartbeat()).catch(() => undefined);
  }

  health(): ServiceHealth {
    return this.running ? { ok: true } : { ok: false, detail: 'sync agent not running' };
  }

  listeners(): Listener[] {
    return [];
  }

  status(): Record<string, unknown> {
    return { online: this.link.state.online, outboxItems: this.outbox.totalCount, outboxBytes: this.outbox.totalBytes };
  }

  syncStatus(): SyncStatus {
    const { config } = this.context;
    return syncStatus({
      enabled: config.cloud.mqtt.url !== undefined, clientId: this.clientId, link: this.link.state, sender: this.sender, outbox: this.outbox,
      activity: this.activity, rates: this.rates, maxBytes: config.sync.maxBytes,
      ruleNames: [...config.sync.outbound, ...config.sync.objects].map((rule) => rule.name),
      inbound: config.sync.inbound.map((rule) => ({ rule: rule.name, ...this.inboundActivity.of(rule.name) })),
      shadows: this.shadows.status(), uploads: this.objects?.uploader.status ?? null,
    });
  }

  /**
   * A cloud that takes QoS 0 only (MQTT 5 CONNACK Maximum QoS 0) gets the QoS 1 rules' messages and
   * the shadow requests at QoS 0: said once per connection, as sync status says it while it lasts.
   */
  private noteQosDowngrade(limits: CloudLimits): void {
    const { outbound, shadows } = this.context.config.sync;
    if (limits.maximumQoS > 0 || (!outbound.some((rule) => rule.qos === 1) && shadows.length === 0)) return;
    this.log.warn("the cloud's Maximum QoS is 0: QoS 1 rules and shadow requests are sent at QoS 0, at most once (an item leaves the outbox once written)");
  }

  /** Pausing stops sending (the link stays up for inbound rules); it survives restarts. */
  async setPaused(paused: boolean): Promise<boolean> {
    await this.context.store.commit.run(() => this.context.store.db
      .prepare("INSERT INTO sync_state (key, value) VALUES ('paused', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
      .run(String(paused)));
    if (paused) this.sender.pause();
    else this.sender.resume();
    if (this.objects) {
      this.objects.uploader.paused = paused;
      this.objects.uploader.wake();
    }
    return paused;
  }

  /** A message's topic as it was tried (`${id}` filled in, as sent). */
  deadLetters(limit: number): DeadLetter[] {
    return this.outbox.deadLetters(limit).map((letter) => letter.kind === 'message'
      ? { ...letter, cloudTopic: cloudTopicOf(letter.cloudTopic, messageId(this.clientId, letter.itemId)) }
      : letter);
  }

  async retry(ids: number[] | 'all'): Promise<{ retried: number[]; skipped: Array<{ id: number; reason: string }> }> {
    const { lastItemId, ...outcome } = await this.context.store.commit.run(() => this.outbox.retry(ids));
    this.outbox.markDurable(lastItemId);
    if (outcome.retried.length > 0) {
      this.sender.wake(true);
      this.sender.wake(false);
      this.objects?.uploader.wake();
    }
    return outcome;
  }

  /**
   * The two S3 clients of the uploader, made on the first upload. The local object store is read
   * through its own S3 API, at its listener as bound (the port may be 0 in the config), with the
   * sync agent's service key.
   */
  private async connectS3(): Promise<S3Endpoints> {
    const listener = this.context.listeners().find((candidate) => candidate.name === 's3');
    // (at start-up the sync agent starts before the object store listens): a local wait, not the cloud's absence
    if (!listener) throw new LocalUnavailable('the object store of this daemon is not listening (s3)');
    const { region, tls } = this.context.config.s3;
    const local: LocalS3 = {
      endpoint: localUrl(listener), region, credentials: await this.context.accessKeys.serviceKey('sync'),
      // its own certificate (the file's first: the rest is its chain), which need not name the loopback address it is reached at
      ...(tls.enabled && tls.cert ? { certificate: /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(await readFile(tls.cert, 'utf8'))?.[0] } : {}),
    };
    return connectS3(this.context.config.cloud.s3, local);
  }

  /**
   * The sweep runs only while the outbox holds items or its drain rates are still falling: an idle
   * gateway's event loop sleeps, and it writes nothing every few seconds (SD card wear).
   */
  private startSweeping(): void {
    if (!this.running || this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  private stopSweeping(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Once a second: sample the drain rates, record the heartbeat now and then, drop what outlived its TTL. */
  private sweep(): void {
    this.rates.sample(this.sender, SWEEP_INTERVAL_MS / 1000);
    if (this.outbox.totalCount === 0) {
      if (this.rates.settled) this.stopSweeping();
      return;
    }
    if (++this.sweeps % SWEEPS_PER_HEARTBEAT === 0) {
      this.context.store.commit.run(() => this.outbox.heartbeat()).catch((error) => this.log.warn({ err: error }, 'could not record the sync heartbeat'));
    }
    if (!this.outbox.hasExpired()) return;
    this.context.store.commit.run(() => this.outbox.expire()).then(
      (expired) => { if (expired > 0) this.log.info({ expired }, 'sync items expired'); },
      (error) => {
        this.log.error({ err: error }, 'could not expire sync items');
        this.outbox.reloadFigures();
      },
    );
  }
}
