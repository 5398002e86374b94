import './log/quiet-debug.js';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { adminSocketPath, type LoadedConfig } from './config/load.js';
import { Store } from './store/store.js';
import { DataDirLock, makeDataDir } from './store/data-dir-lock.js';
import { createMetricsRegistry, freeBytes } from './metrics/registry.js';
import { AdminRouter } from './admin/router.js';
import { AdminServer } from './admin/server.js';
import { HttpServer, sendJson } from './http/server.js';
import { SystemdNotifier } from './systemd/notify.js';
import { BrokerService } from './broker/broker-service.js';
import { ShadowService } from './shadows/shadow-service.js';
import { FunctionService } from './functions/function-service.js';
import { ObjectService } from './objects/object-service.js';
import { SyncService } from './sync/sync-service.js';
import { DeviceService } from './devices/device-service.js';
import { AccessKeys } from './auth/access-keys.js';
import { registerAccessKeyAdminRoutes } from './auth/admin-routes.js';
import { DataPlaneAuth } from './http/data-plane-auth.js';
import { BodyMemory } from './http/body-memory.js';
import { registerDataPlanePublish } from './broker/data-plane-publish.js';
import type { Listener, Service, ServiceContext } from './service.js';
import { VERSION } from './version.js';

type State = 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The composition root: opens the store, builds each service with its
 * context, starts listeners, and tears it all down in reverse.
 */
export class Daemon {
  private state: State = 'starting';
  private readonly startedAt = Date.now();
  private readonly lock: DataDirLock;
  private readonly store: Store;
  private readonly metrics: Registry;
  private readonly admin = new AdminRouter();
  private readonly adminServer: AdminServer;
  private readonly http: HttpServer;
  private readonly services: Service[];
  private readonly notifier: SystemdNotifier;

  constructor(private readonly loaded: LoadedConfig, private readonly log: Logger) {
    const { config, dataDir } = loaded;
    makeDataDir(dataDir);
    // before anything in the data directory is opened: two daemons on one database and one socket
    // would each take the other's clients, and the second would remove the first one's socket
    this.lock = DataDirLock.take(dataDir);
    this.store = new Store({ file: join(dataDir, 'outpost.db'), ...config.store, onSyncFailure: (error) => {
      // EX_IOERR: systemd starts the daemon again, and SQLite recovers what is on disk
      log.fatal({ err: error }, 'the database could not be synced to disk: what was written since may not be there; exiting');
      process.exit(74);
    }, onCheckpointFailure: (error) => {
      log.warn({ err: error }, 'the database log could not be checkpointed; for a minute it is only synced, and SQLite checkpoints it at 16 MiB');
    } });
    this.metrics = createMetricsRegistry(() => this.store.sizeBytes(), dataDir);
    this.notifier = new SystemdNotifier(log);
    this.http = new HttpServer(config.http.host, config.http.port, config.http.maxConnections, log.child({ service: 'http' }));
    const accessKeys = new AccessKeys(this.store);
    const bodyMemory = new BodyMemory(config.http.maxBodyMemoryBytes);
    const base = { config, dataDir, store: this.store, log, admin: this.admin, metrics: this.metrics, http: this.http.routes, accessKeys, bodyMemory, listeners: () => this.listeners() };
    const broker = new BrokerService(base);
    registerAccessKeyAdminRoutes(this.admin, accessKeys, (name) => broker.things.get(name) !== undefined);
    // Every other service is built with this context; those after the runtime may trigger functions.
    const dataPlaneAuth = new DataPlaneAuth({ mode: config.http.auth, accessKeys, bus: broker, bodyMemory });
    const context: ServiceContext = { ...base, bus: broker, dataPlaneAuth };
    registerDataPlanePublish(this.http.routes, broker, dataPlaneAuth, log.child({ service: 'data-plane' }));
    const functions = new FunctionService(context);
    const withFunctions: ServiceContext = { ...context, functions };
    // Sync starts before objects: the object store re-delivers its pending events at start, and
    // sync's durable subscription must be there to take them.
    this.services = [broker, new ShadowService(context), functions, new SyncService(context), new ObjectService(withFunctions), new DeviceService(context)];
    this.adminServer = new AdminServer(this.admin, {
      bodyMemory,
      socketPath: adminSocketPath(config, dataDir),
      group: config.admin.group,
      tcp: config.admin.tcp.enabled
        ? { host: config.admin.tcp.host, port: config.admin.tcp.port, token: config.admin.tcp.token!, maxConnections: config.admin.tcp.maxConnections }
        : undefined,
    }, log.child({ service: 'admin' }));
    this.registerRoutes();
  }

  async start(): Promise<void> {
    for (const service of this.services) await service.start();
    for (const service of this.services) await service.listen?.();
    if (this.loaded.config.http.enabled) await this.http.start();
    await this.adminServer.start();
    this.state = 'running';
    const listeners = this.listeners();
    this.log.info({ version: VERSION, dataDir: this.loaded.dataDir, config: this.loaded.source ?? 'embedded defaults', listeners }, 'outpostd ready');
    this.notifier.ready(listeners.map((l) => `${l.name} ${l.protocol === 'http+unix' ? l.host : `${l.host}:${l.port}`}`).join(', '));
    if (this.loaded.config.systemd.watchdog) this.notifier.startWatchdog();
  }

  /**
   * SIGHUP: the services read their listeners' TLS files again (a renewed certificate, a new CRL);
   * one whose files do not load keeps those in use and says why. Nothing else is reloaded.
   */
  reloadFiles(): void {
    if (this.state !== 'running') return;
    const reloaded: string[] = [];
    for (const service of this.services) {
      try {
        reloaded.push(...service.reloadFiles?.() ?? []);
      } catch (error) {
        this.log.error({ err: error, service: service.name }, `SIGHUP: kept the TLS files in use: ${(error as Error).message}`);
      }
    }
    this.log.info({ listeners: reloaded }, reloaded.length > 0 ? 'SIGHUP: reloaded TLS files' : 'SIGHUP: no TLS files reloaded (the configuration is read at start only)');
  }

  /** Stops accepting, drains services in reverse order, closes the database. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    this.notifier.stopping();
    this.log.info('stopping');
    await this.adminServer.stop();
    await this.http.stop();
    for (const service of this.services) await service.beforeStop?.().catch((error: unknown) => this.log.error({ err: error, service: service.name }, 'service failed to prepare its stop'));
    for (const service of [...this.services].reverse()) {
      try {
        await service.stop();
      } catch (error) {
        this.log.error({ err: error, service: service.name }, 'service failed to stop cleanly');
      }
    }
    await this.store.close();
    this.lock.release();
    this.notifier.close();
    this.state = 'stopped';
    this.log.info('stopped');
  }

  listeners(): Listener[] {
    return [...this.services.flatMap((service) => service.listeners()), ...(this.http.listeners() ?? []), ...this.adminServer.listeners()];
  }

  status(): Record<string, unknown> {
    return {
      version: VERSION,
      state: this.state,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      rssBytes: process.memoryUsage.rss(),
      dataDir: this.loaded.dataDir,
      config: this.loaded.source ?? 'embedded defaults',
      dbSizeBytes: this.store.sizeBytes(),
      // what the store, queues and small objects may still take (null while it cannot be told)
      dataDirFreeBytes: nullIfNaN(freeBytes(this.loaded.dataDir)),
      services: Object.fromEntries(this.services.map((service) => [service.name, { ...service.health(), ...service.status?.() }])),
      listeners: this.listeners(),
    };
  }

  private health(): { ok: boolean; services: Record<string, unknown> } {
    const services = Object.fromEntries(this.services.map((service) => [service.name, service.health()]));
    const ok = this.state === 'running' && Object.values(services).every((health) => health.ok);
    return { ok, services };
  }

  private registerRoutes(): void {
    this.admin.add('GET', '/v1/status', () => ({ body: this.status() }));
    this.http.routes.add('GET', '/healthz', (_req, res) => {
      const health = this.health();
      sendJson(res, health.ok ? 200 : 503, { status: health.ok ? 'ok' : 'unavailable', services: health.services });
    });
    this.http.routes.add('GET', '/metrics', async (_req, res) => {
      const text = await this.metrics.metrics();
      res.writeHead(200, { 'Content-Type': this.metrics.contentType });
      res.end(text);
    });
  }
}

const nullIfNaN = (value: number): number | null => (Number.isNaN(value) ? null : value);
