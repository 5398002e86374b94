import type { Logger } from 'pino';
import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';
import { registerShadowAdminRoutes } from './admin-routes.js';
import { registerShadowHttpRoutes } from './http.js';
import { publishDeleted, publishUpdate, ShadowMqtt } from './mqtt.js';
import { ShadowStore } from './store.js';
import type { OperationContext } from './operations/context.js';
import { VERSION_KEPT_AFTER_DELETE_SECONDS } from './document.js';

const PURGE_INTERVAL_MS = 3600_000;

/**
 * Device shadows compatible with the AWS IoT Device Shadow service: the reserved `$aws/things/…/shadow`
 * topics on the local bus, the data-plane HTTP routes, and `/v1/shadows` for the CLI, over one
 * SQLite table written through group commit.
 */
export class ShadowService implements Service {
  readonly name = 'shadows';
  private readonly mqtt: ShadowMqtt;
  private readonly log: Logger;
  private running = false;
  private readonly operations: OperationContext;
  private purgeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly context: ServiceContext) {
    const { config, store, bus } = context;
    this.log = context.log.child({ service: 'shadows' });
    const { maxInFlightPerClient, ...limits } = config.shadows;
    const operations: OperationContext = {
      shadows: new ShadowStore(store),
      commit: store.commit,
      limits,
      now: () => Math.floor(Date.now() / 1000),
      announce: {
        updated: (address, result) => publishUpdate(bus, address, result).catch((error) => this.log.warn({ err: error, thing: address.thing }, 'could not publish a shadow update')),
        deleted: (address, document) => publishDeleted(bus, address, document).catch((error) => this.log.warn({ err: error, thing: address.thing }, 'could not publish a shadow delete')),
      },
    };
    this.operations = operations;
    this.mqtt = new ShadowMqtt(bus, operations, maxInFlightPerClient, this.log);
    registerShadowHttpRoutes(context.http, operations, context.dataPlaneAuth, this.log);
    registerShadowAdminRoutes(context.admin, operations);
  }

  async start(): Promise<void> {
    await this.mqtt.start();
    this.running = true;
    await this.forgetOldDeletes();
    this.purgeTimer = setInterval(() => void this.forgetOldDeletes(), PURGE_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.purgeTimer);
    await this.mqtt.stop();
    await this.context.store.commit.drain();
  }

  /**
   * A deleted shadow's row is kept so that one re-created within 48 hours continues its version (AWS);
   * after that it is forgotten, or a device making and deleting shadows of new names would grow the
   * database for good.
   */
  private async forgetOldDeletes(): Promise<void> {
    const { shadows, commit, now } = this.operations;
    try {
      const forgotten = await commit.run(() => shadows.forgetDeletedBefore(now() - VERSION_KEPT_AFTER_DELETE_SECONDS));
      if (forgotten > 0) this.log.info({ forgotten }, 'forgot shadows deleted over 48 hours ago');
    } catch (error) {
      this.log.warn({ err: error }, 'could not forget old deleted shadows; trying again in an hour');
    }
  }

  health(): ServiceHealth {
    return this.running ? { ok: true } : { ok: false, detail: 'shadow service not running' };
  }

  listeners(): Listener[] {
    return [];
  }

  status(): Record<string, unknown> {
    return { inFlightRequests: this.mqtt.inFlightRequests() };
  }
}
