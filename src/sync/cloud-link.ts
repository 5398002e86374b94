import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { CloudConfig } from './config.js';
import { Backoff } from './backoff.js';
import type { CloudClient, CloudClientOptions, Connack, ServerDisconnect } from './cloud-client.js';

interface ConnectOptions extends CloudClientOptions {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/**
 * The client for one connection attempt: LeanMqttClient over `node:net` / `node:tls` for mqtt://
 * and mqtts://, and over a WebSocket stream (`ws`, which the broker's own WebSocket listener loads)
 * for ws:// and wss://. mqtt.js's client and its streams would cost the idle daemon about 9 MB
 * while connected, and over a WebSocket it handles one cloud packet at a time: a cloud message
 * waiting for its local retry would hold up everything else the cloud sends.
 */
async function clientFactory(url: string): Promise<(options: ConnectOptions) => CloudClient> {
  const { protocol, hostname, port } = new URL(url);
  const { LeanMqttClient } = await import('./cloud-client.js');
  if (protocol === 'ws:' || protocol === 'wss:') {
    const { WebSocket, createWebSocketStream } = await import('ws');
    // MQTT over WebSocket: the "mqtt" subprotocol, binary frames (MQTT 5 §6)
    return (options) => new LeanMqttClient(createWebSocketStream(new WebSocket(url, 'mqtt', {
      cert: options.cert, key: options.key, ca: options.ca, handshakeTimeout: options.connectTimeout, perMessageDeflate: false,
    })), options);
  }
  const host = hostname.replace(/^\[|\]$/g, '');
  if (protocol === 'mqtt:') {
    const { createConnection } = await import('node:net');
    return (options) => new LeanMqttClient(createConnection({ host, port: Number(port || 1883), noDelay: true }), options);
  }
  const [{ connect }, { isIP }] = await Promise.all([import('node:tls'), import('node:net')]);
  // SNI takes host names only (RFC 6066); AWS IoT Core needs it to pick the account's endpoint.
  const servername = isIP(host) ? undefined : host;
  return (options) => new LeanMqttClient(connect({ host, port: Number(port || 8883), servername, cert: options.cert, key: options.key, ca: options.ca }).setNoDelay(true), options);
}

export interface LinkState {
  online: boolean;
  /** Wall-clock ISO time of the last change between online and offline. */
  since: string;
  lastError?: string;
  /** Wall-clock ISO time of the next connection attempt while offline and waiting for it. */
  nextAttempt?: string;
  connectAttempts: number;
  /** What the cloud's CONNACK allows on the current connection; null while offline. */
  limits: CloudLimits | null;
}

/**
 * The limits an MQTT 5 CONNACK announces (§3.2.2.3) that bind what the gateway sends; an absent
 * property (and every MQTT 3.1.1 CONNACK) sets none. Receive Maximum is the client's own to honour
 * (cloud-client.ts); Topic Alias Maximum binds nothing, as the agent sends no topic aliases.
 */
export interface CloudLimits {
  /** MQTT-3.2.2-11: no PUBLISH of a higher QoS (0x9B QoS not supported); AWS IoT Core says 1. */
  maximumQoS: 0 | 1 | 2;
  /** MQTT-3.2.2-14: no PUBLISH with RETAIN set when false; the agent never sets it, so nothing depends on it. */
  retainAvailable: boolean;
  /** MQTT-3.2.2-15: no packet larger (0x95 Packet too large); null: no limit announced. */
  maximumPacketSize: number | null;
}

export function limitsOf(connack: Connack | undefined): CloudLimits {
  const properties = connack?.properties;
  return {
    maximumQoS: properties?.maximumQoS === 0 || properties?.maximumQoS === 1 ? properties.maximumQoS : 2,
    retainAvailable: properties?.retainAvailable !== false,
    maximumPacketSize: properties?.maximumPacketSize ?? null,
  };
}

export interface LinkHandlers {
  /**
   * A connection is up (CONNACK received); `client` is valid until `onDown`. `sessionPresent`: the
   * cloud kept the session of the previous connection (MQTT-3.2.2-2); `limits`: what it takes.
   */
  onUp(client: CloudClient, sessionPresent: boolean, limits: CloudLimits): void;
  /**
   * `byPeer`: the cloud closed the connection, or it broke in a way that may be the cloud's (a reset),
   * rather than this side stopping it or the network failing (a timeout, an unreachable route).
   */
  onDown(byPeer: boolean): void;
}

/**
 * The connection to the cloud broker. Each attempt is a new client, made after a full-jitter
 * exponential backoff (not a fixed reconnect period) — a fleet of
 * gateways coming back after an outage spreads its reconnects instead of stampeding the broker.
 */
export class CloudLink {
  private client: CloudClient | undefined;
  private newClient: ((options: ConnectOptions) => CloudClient) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  /** Connections in a row that the cloud ended within SHORT_CONNECTION_MS of its CONNACK. */
  private shortConnections = 0;
  private stopped = false;
  readonly state: LinkState = { online: false, since: new Date().toISOString(), connectAttempts: 0, limits: null };

  constructor(
    private readonly config: CloudConfig['mqtt'] & { clientId: string },
    private readonly handlers: LinkHandlers,
    private readonly log: Logger,
    private readonly wallMs: () => number,
  ) {
    this.backoff = new Backoff({ minMs: config.reconnectMinMs, maxMs: config.reconnectMaxMs, refusedMaxMs: config.refusedRetryMaxMs }, wallMs);
  }

  start(): void {
    if (this.config.url) this.attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    client?.end(true);
    this.down(false);
  }

  /** One connection attempt; one that fails before a client exists (e.g. an unreadable key file) is retried like any other. */
  private attempt(): void {
    this.connect().catch((error: Error) => {
      this.log.error({ err: error }, 'cannot connect to the cloud broker');
      this.state.lastError = error.message;
      this.scheduleReconnect(isRefusedForGood(error));
    });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // Loaded on the first connection: a gateway without a cloud pays nothing for its MQTT client.
    this.newClient ??= await clientFactory(this.config.url!);
    if (this.stopped) return;
    this.backoff.attempting();
    this.state.nextAttempt = undefined;
    this.state.connectAttempts++;
    const client = this.newClient(this.clientOptions());
    this.client = client;
    let wasUp = false;
    let upSince = 0;
    client.on('connect', (connack) => {
      wasUp = true;
      upSince = performance.now();
      this.state.online = true;
      this.state.since = new Date(this.wallMs()).toISOString();
      const limits = limitsOf(connack);
      this.state.limits = limits;
      this.log.info({ url: this.config.url }, 'cloud link up');
      this.handlers.onUp(client, connack?.sessionPresent === true, limits);
    });
    let refusalRuledOut = false;
    let takenOver = false;
    let refusedForGood = false;
    let connectionError: string | undefined;
    client.on('error', (error) => {
      connectionError = explained(error);
      this.state.lastError = connectionError;
      refusedForGood = isRefusedForGood(error);
      if (isNetworkFailure(error) || isDepartureOfTheCloud(error)) refusalRuledOut = true;
      takenOver ||= error.name === 'ServerDisconnect' && (error as ServerDisconnect).reasonCode === SESSION_TAKEN_OVER;
    });
    client.once('close', () => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end(true);
      // a close without an error of this connection's (an MQTT 3.1.1 cloud hanging up on a message it
      // refuses, a broker restarting) is said as such, not with an earlier connection's error
      const reason = connectionError ?? (wasUp ? 'the cloud broker closed the connection' : 'connection closed before CONNACK');
      this.state.lastError = reason;
      if (wasUp) this.log.warn({ reason }, 'cloud link down');
      if (wasUp) this.noteTakeover(takenOver, !refusalRuledOut && performance.now() - upSince < SHORT_CONNECTION_MS);
      // a dead network, or a cloud that says it goes for reasons of its own, is no refusal: the publish in flight is not to blame
      this.down(!refusalRuledOut);
      // Only a connection that held is a success: one the cloud ends soon after its CONNACK (overloaded,
      // the session taken over by a clone with the same client id) is one more failure in a row, or a
      // fleet would reconnect at reconnectMinMs for as long as it lasts.
      if (wasUp && performance.now() - upSince >= this.config.reconnectMaxMs) this.backoff.succeeded();
      this.scheduleReconnect(refusedForGood);
    });
  }

  /**
   * Two gateways with one client id (cloned from one image, or configured alike) end each other's
   * connection for ever (MQTT-3.1.4-2): said plainly — by MQTT 5's reason code, or by the cloud
   * closing SHORT_CONNECTIONS_FOR_WARNING connections in a row soon after accepting them, without a
   * reason (MQTT 3.1.1 gives none). Logged once per series (each time with the reason code); the
   * status's last error says it after every close of the series, not only the one that began it,
   * which the next close's own reason would hide within a reconnect's time.
   */
  private noteTakeover(takenOver: boolean, closedSoonWithoutReason: boolean): void {
    this.shortConnections = closedSoonWithoutReason ? this.shortConnections + 1 : 0;
    if (!takenOver && this.shortConnections < SHORT_CONNECTIONS_FOR_WARNING) return;
    const warning = takenOver
      ? `the cloud says another client took over the session of client id "${this.config.clientId}"`
      // a cloud that ends the connection over one message (a topic its policy or its parser refuses: AWS IoT Core, Mosquitto) looks the same
      : `the cloud ended ${SHORT_CONNECTIONS_FOR_WARNING} connections in a row within ${SHORT_CONNECTION_MS / 1000} s of accepting them: is another gateway connected with client id "${this.config.clientId}"? (or does the cloud refuse a message sent: that one is set aside after its tries, see outpost sync dlq ls)`;
    this.state.lastError = `${warning} (gateways need a client id each; see cloud.mqtt.clientId)`;
    if (takenOver || this.shortConnections === SHORT_CONNECTIONS_FOR_WARNING) this.log.warn({ clientId: this.config.clientId }, this.state.lastError);
  }

  private down(byPeer: boolean): void {
    if (!this.state.online) return;
    this.state.online = false;
    this.state.limits = null;
    this.state.since = new Date(this.wallMs()).toISOString();
    this.handlers.onDown(byPeer);
  }

  /**
   * `refused`: the connection failed in a way the next attempt meets again (bad credentials, not
   * authorised, a certificate refused or not trusted, see isRefusedForGood): the waits grow up to
   * refusedRetryMaxMs rather than reconnectMaxMs, as only the operator can fix it (said in the log
   * and the status each time, with the next attempt's time).
   */
  private scheduleReconnect(refused: boolean): void {
    if (this.stopped) return;
    const delay = this.backoff.failed(refused);
    this.state.nextAttempt = this.backoff.nextAttempt ?? undefined;
    if (refused) this.log.error({ reason: this.state.lastError, nextAttempt: this.state.nextAttempt }, 'the cloud refuses the gateway, or its TLS files are wrong: check cloud.mqtt credentials, certificates and the cloud policy');
    this.timer = setTimeout(() => this.attempt(), delay);
  }

  private clientOptions(): ConnectOptions {
    const config = this.config;
    const file = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path));
    return {
      clientId: config.clientId,
      username: config.username,
      password: config.password,
      cert: file(config.cert),
      key: file(config.key),
      ca: file(config.ca),
      keepalive: config.keepalive,
      protocolVersion: config.protocolVersion,
      connectTimeout: config.connectTimeoutSeconds * 1000,
      // A persistent session: the cloud keeps QoS 1 messages for the inbound rules while the link is down.
      clean: false,
      // MQTT 5 ends even such a session with the connection unless it has an expiry interval
      // (MQTT 5 §3.1.2.11.2: absent means 0); 0xFFFFFFFF never expires, as 3.1.1's, and the cloud
      // may lower it to its own maximum (AWS IoT Core: 1 hour by default).
      ...(config.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0xFFFFFFFF } } : {}),
    };
  }
}

const SESSION_TAKEN_OVER = 0x8e;
const SHORT_CONNECTION_MS = 10_000;
const SHORT_CONNECTIONS_FOR_WARNING = 3;

/**
 * TLS failures the next attempt meets again until the operator acts: the cloud refusing the client
 * certificate (unknown, bad, revoked or expired, or none given), or the cloud's certificate not
 * trusted here (cloud.mqtt.ca). Not its validity dates: a board without a real-time clock sees
 * those wrong until NTP sets it.
 */
const TLS_REFUSALS = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_REVOKED',
]);
/** The gateway's own files (cloud.mqtt.cert, key, ca) missing, unreadable or not PEM. */
const FILE_ERRORS = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ERR_OSSL_PEM_NO_START_LINE', 'ERR_OSSL_PEM_BAD_BASE64_DECODE', 'ERR_OSSL_UNSUPPORTED']);

/** A failure the next attempt gets again until the operator changes something (see scheduleReconnect). */
function isRefusedForGood(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  // by name: cloud-client.js is loaded only with the first connection
  return (error.name === 'ConnectionRefused' && (error as Error & { forGood: boolean }).forGood) || TLS_REFUSALS.has(code) || FILE_ERRORS.has(code);
}

/** An error as the status says it: OpenSSL's own text for a TLS refusal names neither side's part in it. */
function explained(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (!TLS_REFUSALS.has(code)) return error.message;
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code)?.[1];
  if (alert) {
    const said = `the cloud refused the TLS connection (alert "${alert.toLowerCase().replaceAll('_', ' ')}")`;
    return alert === 'CERTIFICATE_REQUIRED' ? `${said}: it takes a client certificate (cloud.mqtt.cert and key)` : `${said}: does it know the certificate of cloud.mqtt.cert?`;
  }
  return `the cloud's certificate is not trusted (${code}: ${error.message}): check cloud.mqtt.ca`;
}

/** Errors of the network (a dropped cellular link, a silent route), not of the cloud's doing. */
const NETWORK_FAILURES = new Set(['ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EAI_AGAIN']);

function isNetworkFailure(error: Error): boolean {
  return NETWORK_FAILURES.has((error as NodeJS.ErrnoException).code ?? '') || /keepalive timeout/i.test(error.message);
}

/**
 * MQTT 5 DISCONNECT reason codes (§3.14.2.1) that give a cause other than a packet of ours: normal
 * disconnection, server busy, server shutting down (a restart, a rolling upgrade), keep alive
 * timeout, session taken over, topic filter invalid (a SUBSCRIBE's), receive maximum exceeded (the
 * window, not one message), administrative action, use another server, server moved, the
 * subscription features not supported, connection rate exceeded, maximum connect time.
 */
const DEPARTURES = new Set([0x00, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x93, 0x98, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2]);

// By name: cloud-client.js is loaded only with the first connection (a gateway without a cloud never loads it).
function isDepartureOfTheCloud(error: Error): boolean {
  return error.name === 'ServerDisconnect' && DEPARTURES.has((error as ServerDisconnect).reasonCode);
}
