import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Store } from './store/store.js';
import type { AdminRouter } from './admin/router.js';
import type { Registry } from 'prom-client';
import type { LocalBus } from './bus.js';
import type { Router } from './http/router.js';
import type { HttpHandler } from './http/server.js';
import type { AccessKeys } from './auth/access-keys.js';
import type { DataPlaneAuth } from './http/data-plane-auth.js';
import type { BodyMemory } from './http/body-memory.js';

export interface Listener {
  name: string;
  protocol: string;
  host: string;
  /** The port actually bound (differs from the configured one when that was 0). */
  port: number;
}

/** The URL a local client reaches a listener at: a wildcard bind address is reached on loopback. */
export function localUrl(listener: Listener): string {
  const host = listener.host === '0.0.0.0' || listener.host === '::' ? '127.0.0.1' : listener.host;
  return `${listener.protocol}://${host.includes(':') ? `[${host}]` : host}:${listener.port}`;
}

export interface ServiceHealth {
  ok: boolean;
  detail?: string;
}

/** What a service needs from the daemon; the composition root builds one per service. */
export interface ServiceContext {
  config: Config;
  dataDir: string;
  store: Store;
  log: Logger;
  admin: AdminRouter;
  metrics: Registry;
  /** Routes on the public HTTP port (`http.port`). */
  http: Router<HttpHandler>;
  /** The local MQTT bus; services other than the broker get it from the broker. */
  bus: LocalBus;
  /** Access keys of the AWS-compatible APIs (SigV4). */
  accessKeys: AccessKeys;
  /** The memory request bodies held whole may take, shared by every listener. */
  bodyMemory: BodyMemory;
  /** Who may use the IoT data plane routes on the HTTP port (shadows, publish, invoke). */
  dataPlaneAuth: DataPlaneAuth;
  /** The daemon's listeners as bound (a port configured as 0 is the one chosen); each appears once it is up. */
  listeners(): Listener[];
  /** The function runtime, for services that trigger functions (objects); absent for the broker and the runtime itself. */
  functions?: FunctionInvoker;
}

/** What other services may ask of the function runtime. */
export interface FunctionInvoker {
  /** Whether a function of this name is deployed. */
  exists(name: string): boolean;
  /**
   * An Event (asynchronous) invocation: resolves once the event is committed to the function's
   * durable queue; rejects when the function does not exist or its queue is full.
   */
  invokeAsync(name: string, event: string, source: 's3'): Promise<{ eventId: number }>;
}

/** A part of the daemon with its own folder under src/ and this small surface. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /**
   * Once every service has started: opens listeners whose clients other services serve through
   * the local bus (the MQTT ports), so that nothing is acknowledged before its subscribers are
   * there (a device's QoS 1 message PUBACKed before sync or a function trigger subscribed was lost).
   */
  listen?(): Promise<void>;
  /**
   * Before any service stops: ends the work that leans on services stopped before this one (sync's
   * uploads read the local object store, which stops first), so that their wait does not eat the
   * daemon's stop deadline.
   */
  beforeStop?(): Promise<void>;
  /** Stops accepting new work and drains what is in flight. */
  stop(): Promise<void>;
  health(): ServiceHealth;
  listeners(): Listener[];
  /**
   * SIGHUP: reads the files its listeners loaded at start again (TLS certificate, key, CA, CRL),
   * for the connections from now on; throws, keeping those in use, when one does not load. Returns
   * the listeners reloaded. The configuration itself is read only at start.
   */
  reloadFiles?(): string[];
  /** Service-specific figures for `outpost status`. */
  status?(): Record<string, unknown>;
}
