// The v3 API of the zod package: the same validation for ~9 MB less resident
// memory than v4 on a 128 MB board (measured at daemon idle).
import { z } from 'zod/v3';

import { bool, host, integer, oneOf, path, port, positiveInt, range, seconds, text } from './fields.js';
import { isValidFilter } from '../broker/topic.js';
import { s3Schema } from '../objects/config.js';
import { cloudSchema, syncSchema } from '../sync/config.js';
import { devicesSchema } from '../devices/config.js';

// as `outpost things policy` takes them (`${thing}` and `${clientid}` are substituted into a valid filter)
const topicFilters = () => z.array(z.string({ invalid_type_error: 'expected a topic filter string' })
  .refine(isValidFilter, { message: 'expected an MQTT topic filter: not empty, + and # only as whole levels, # only last' }), { invalid_type_error: 'expected a list of topic filters' });

export const policySchema = () => z.strictObject({
  // A trailing `*` matches any rest (clientIdAllowed); one elsewhere would match only itself.
  clientIds: z.array(z.string({ invalid_type_error: 'expected a client id pattern' })
    // a client that sends no client id gets one from the broker (MQTT-3.1.3-6): "" would match no client, and lock the thing out
    .min(1, { message: 'a client id pattern cannot be empty: it would match no client id' })
    .refine((pattern) => !pattern.slice(0, -1).includes('*'), (pattern) => ({ message: `client id pattern "${pattern}" has a * before its end: * matches the rest of an id, so it may only end a pattern` })),
  { invalid_type_error: 'expected a list of client id patterns' })
    .default(['${thing}', '${thing}-*']),
  publish: topicFilters().default(['things/${thing}/#', 'devices/${thing}/#', '$aws/things/${thing}/#']),
  subscribe: topicFilters().default(['things/${thing}/#', 'devices/${thing}/#', '$aws/things/${thing}/#']),
});
export type Policy = z.infer<ReturnType<typeof policySchema>>;

// `#` leaves out `$`-topics (MQTT-4.7.2-1): `$aws/#` lets anonymous clients use shadows too, as a
// Mosquitto without ACLs would; `$SYS` and `$outpost` stay closed to them.
const anonymousPolicySchema = () => z.strictObject({
  publish: topicFilters().default(['#', '$aws/#']),
  subscribe: topicFilters().default(['#', '$aws/#']),
});

const tlsSchema = () => z.strictObject({
  enabled: bool(false),
  host: host('0.0.0.0'),
  port: port(8883),
  cert: path().optional(),
  key: path().optional(),
  ca: path().optional(),
  /** PEM CRL of `ca` (Mosquitto's crlfile): a client certificate it revokes is refused at the handshake. */
  crl: path().optional(),
  /** Mutual TLS: refuse clients without a certificate signed by `ca`. */
  requireClientCert: bool(false),
}).refine((tls) => !tls.enabled || (tls.cert && tls.key), {
  message: 'expected "cert" and "key" when TLS is enabled',
}).refine((tls) => !tls.crl || tls.ca, {
  message: 'expected "ca" with "crl": it revokes certificates that CA signed',
});

const webOrigin = () => z.string({ invalid_type_error: 'expected an origin string' }).transform((entry, context) => {
  const origin = entry === '*' ? entry : serializedOrigin(entry);
  if (origin === undefined) {
    context.addIssue({ code: z.ZodIssueCode.custom, message: `expected "*" or an origin such as "https://dashboard.example:8443" (scheme, host and port only)` });
    return z.NEVER;
  }
  return origin;
});

/** How a browser writes `entry`'s origin in its Origin header (lower case, default port left out); undefined if `entry` is more or less than an origin. */
function serializedOrigin(entry: string): string | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return undefined;
  }
  const onlyOrigin = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  return (url.protocol === 'http:' || url.protocol === 'https:') && onlyOrigin ? url.origin : undefined;
}

const mqttSchema = () => z.strictObject({
  host: host('0.0.0.0'),
  port: port(1883),
  allowAnonymous: bool(false),
  anonymousPolicy: anonymousPolicySchema().default({}),
  defaultPolicy: policySchema().default({}),
  /** Packets larger than this close the connection (MQTT 3.1.1 has no reason code for it). */
  maxPacketSize: positiveInt(262144, 'packet size in bytes ≥ 1'),
  maxConnections: positiveInt(1000, 'connection count ≥ 1'),
  /** Bytes of a client id; a longer one gets CONNACK 2 (MQTT allows 64 KiB, kept for the whole connection). AWS IoT: 128. */
  maxClientIdBytes: positiveInt(128, 'bytes ≥ 1'),
  /**
   * Per persistent session: queued QoS 1/2 messages kept for an offline client, besides those in
   * flight (maxInflightMessages), as Mosquitto's max_queued_messages; the oldest not in flight is
   * dropped beyond it.
   */
  maxQueuedMessages: positiveInt(1000, 'message count ≥ 1'),
  /**
   * Per persistent session: messages sent and not yet acknowledged (PUBACK, PUBCOMP) that count
   * against neither queue bound and are never dropped for the queue's room, as Mosquitto's
   * max_inflight_messages (20). Sent beyond it, they count as queued.
   */
  maxInflightMessages: positiveInt(20, 'message count ≥ 1'),
  /**
   * Per persistent session: topic and payload bytes of its queued QoS 1/2 messages (those in flight
   * not counted), on disk. A
   * message that does not fit is dropped (counted) and the queue kept, as Mosquitto's
   * max_queued_bytes does: without it each session could hold maxQueuedMessages × maxPacketSize
   * (256 MB), ten per thing.
   */
  maxQueuedBytesPerSession: positiveInt(8 * 1024 * 1024, 'bytes ≥ 1'),
  /** Seconds a new socket has to send CONNECT. */
  connectTimeout: seconds().default(30),
  /**
   * Bytes that may wait unsent to one client (its socket's buffer included) before a QoS 0 message
   * to it is dropped (counted as slow_consumer); a client that takes no QoS 1/2 message for 10 s is
   * disconnected. Without it one client that stops reading stalls delivery to everyone.
   */
  maxClientBacklogBytes: positiveInt(1024 * 1024, 'bytes ≥ 1'),
  /**
   * Bytes that may wait unsent to clients not keeping up, all together: beyond it a QoS 0 message
   * to any client whose socket still holds unsent bytes is dropped (counted as slow_consumer), so
   * many stalled subscribers hold this much, not maxClientBacklogBytes each.
   */
  maxBacklogBytes: positiveInt(16 * 1024 * 1024, 'bytes ≥ 1'),
  /**
   * Bytes of one topic filter: a longer one gets SUBACK 0x80 (counted). The subscription limits
   * count filters, each costing about its length again in memory, and MQTT allows 64 KiB.
   */
  maxFilterBytes: positiveInt(1024, 'bytes ≥ 1'),
  /** Filters one connection may hold; a SUBSCRIBE beyond it gets SUBACK 0x80 for the filters over (counted). */
  maxSubscriptionsPerClient: positiveInt(100, 'filter count ≥ 1'),
  /**
   * Filters held at once: connected clients' (aedes' router) plus persistent sessions' (the store's
   * index; a connected persistent client's count in both), ~1 KiB of heap each. Beyond it a new
   * filter gets SUBACK 0x80 (counted).
   */
  maxSubscriptions: positiveInt(10000, 'filter count ≥ 1'),
  /**
   * Persistent sessions one thing may have stored or open (client ids its policy allows, clean
   * session 0): a CONNECT that would start one more gets CONNACK 2. Each keeps filters and queues
   * messages on disk until the client comes back, which a device minting client ids never does.
   */
  maxPersistentSessionsPerThing: positiveInt(10, 'session count ≥ 1'),
  /**
   * Persistent sessions anonymous clients may have stored or open, all together (those whose client
   * id no registered thing owns are counted): one more gets CONNACK 2.
   */
  maxAnonymousPersistentSessions: positiveInt(100, 'session count ≥ 1'),
  /**
   * Seconds a persistent session is kept while its client is away (counted while the daemon runs;
   * a restart counts afresh); then its filters and queued messages are deleted. AWS IoT: 1 hour by
   * default. 0: kept until the client ends it, as Mosquitto does by default.
   */
  persistentSessionExpiry: range('expected seconds ≥ 0', 0, 2 ** 31 - 1).default(3600),
  /**
   * QoS 2 PUBLISHes a client may have sent and not yet released (PUBREL), each held whole until
   * then; one more closes the connection (MQTT 3.1.1 has no code to refuse it). EMQX: 100.
   */
  maxAwaitingRel: positiveInt(100, 'message count ≥ 1'),
  /**
   * Topic and payload bytes of those, per connection and per persistent session: 100 of
   * maxPacketSize would be 25 MiB each. One that does not fit closes the connection likewise,
   * unless the client holds none (a lone PUBLISH always fits).
   */
  maxAwaitingRelBytes: positiveInt(1024 * 1024, 'bytes ≥ 1'),
  /**
   * Of clean sessions, all connections together: theirs are held in memory (a persistent session's
   * on disk), and maxConnections × maxAwaitingRelBytes is more than a board has. One beyond closes
   * its connection likewise.
   */
  maxAwaitingRelBytesInMemory: positiveInt(8 * 1024 * 1024, 'bytes ≥ 1'),
  /**
   * Bytes of packets over 8 KiB being received at once (the parser holds each until its last
   * byte), admitted clients together; one that does not fit closes its connection, as Mosquitto
   * does past memory_limit. CONNECTs have 8 MiB of their own.
   */
  maxReceivingBytes: integer('expected a size in bytes of at least 262144').min(256 * 1024, 'expected a size in bytes of at least 262144').default(16 * 1024 * 1024),
  /** Retained messages kept at most; a new retained topic beyond it is not retained (and counted). */
  maxRetained: positiveInt(100000, 'message count ≥ 1'),
  /**
   * Topic and payload bytes of all retained messages together, on disk: without it any client
   * could retain maxRetained messages of maxPacketSize (25 GB) and fill the disk everything else is
   * kept on; a topic may be 64 KiB.
   * A retained publish beyond it is not retained and removes the topic's previous one (counted).
   */
  maxRetainedBytes: positiveInt(64 * 1024 * 1024, 'bytes ≥ 1'),
  /**
   * Seconds between updates of the broker's `$SYS/broker/…` topics (Mosquitto's sys_interval: 10);
   * 0: none are published.
   */
  sysIntervalSeconds: range('expected seconds ≥ 0', 0, 86400).default(10),
  tls: tlsSchema().default({}),
  ws: z.strictObject({
    enabled: bool(false),
    host: host('0.0.0.0'),
    port: port(8083),
    /**
     * Web pages (origins, e.g. "https://dashboard.example:8443", or "*" for any) whose scripts may
     * open MQTT over WebSocket. A browser names the page's origin in every WebSocket upgrade;
     * devices and other programs send none and are never refused for it.
     */
    allowedOrigins: z.array(webOrigin(), { invalid_type_error: 'expected a list of origins' }).default([]),
  }).default({}),
}).refine((mqtt) => mqtt.maxReceivingBytes >= mqtt.maxPacketSize, {
  message: 'expected maxReceivingBytes of at least maxPacketSize: a packet of that size would never fit', path: ['maxReceivingBytes'],
});

const httpSchema = () => z.strictObject({
  enabled: bool(true),
  host: host('127.0.0.1'),
  port: port(8080),
  /**
   * The IoT data plane routes (shadows, publish, function invoke): "sigv4" requires AWS Signature
   * Version 4 with an access key (`outpost s3 keys add --thing NAME`); "none" serves anyone who
   * reaches the port (the embedded defaults, on loopback only).
   */
  auth: oneOf(['sigv4', 'none'], 'expected "sigv4" or "none"').default('sigv4'),
  /** Connections open at once; one beyond it is closed as it is accepted. */
  maxConnections: positiveInt(64, 'connection count ≥ 1'),
  /**
   * Request bodies held whole in memory at once (Invoke events, shadow and publish bodies, S3 XML
   * documents, admin API requests), on every listener together. A request that would pass it is
   * refused with its protocol's "slow down" (S3 503 SlowDown, Lambda 429, IoT 429, admin 503).
   * At least the largest single body a route takes: 6 MB, a synchronous Invoke's.
   */
  maxBodyMemoryBytes: integer('expected a size in bytes of at least 8388608').min(8 * 1024 * 1024, 'expected a size in bytes of at least 8388608').default(16 * 1024 * 1024),
});

const adminSchema = () => z.strictObject({
  /** Unix socket of the admin API; default `<dataDir>/admin.sock`. */
  socket: path().optional(),
  /** Group that may use the socket (mode 0660); default: the daemon's own group. */
  group: text('expected a group name').optional(),
  /** Admin API over TCP, only with a bearer token. */
  tcp: z.strictObject({
    enabled: bool(false),
    host: host('127.0.0.1'),
    port: port(8081),
    token: z.string({ invalid_type_error: 'expected a token string' }).min(16, { message: 'expected a token of at least 16 characters' }).optional(),
    /** Connections open at once, the token not yet checked on them; one beyond it is closed as it is accepted. */
    maxConnections: positiveInt(16, 'connection count ≥ 1'),
  }).refine((tcp) => !tcp.enabled || tcp.token, { message: 'expected "token" when admin.tcp is enabled' }).default({}),
});

const storeSchema = () => z.strictObject({
  /** FULL survives power cuts; NORMAL survives process crashes only. */
  synchronous: oneOf(['full', 'normal'], 'expected "full" or "normal"').default('full'),
  /** SQLite page cache in KiB. */
  cacheSizeKb: positiveInt(2048, 'KiB ≥ 1'),
  /**
   * With `full`: the write-ahead log's copies into the database on a thread of their own
   * (store/checkpoints.ts) rather than on the event loop (~5 ms per 4 MiB), for ~10 MB of RSS while
   * the thread runs. Off by default, for 128 MB boards; the profiles of larger ones turn it on.
   */
  checkpointThread: bool(false),
});

const logSchema = () => z.strictObject({
  level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], 'expected one of fatal, error, warn, info, debug, trace').default('info'),
  /** auto: readable lines on a TTY, JSON otherwise. */
  format: oneOf(['auto', 'json', 'pretty'], 'expected "auto", "json" or "pretty"').default('auto'),
});

const shadowsSchema = () => z.strictObject({
  /** desired + reported of one shadow, serialized; AWS's limit is 8 KB (metadata not counted). */
  maxDocumentBytes: positiveInt(8192, 'bytes ≥ 1'),
  /** Levels of nesting inside desired or reported; AWS allows 6. */
  maxDepth: positiveInt(6, 'levels ≥ 1'),
  /** A request larger than this is refused (413) before it is parsed. */
  maxPayloadBytes: positiveInt(65536, 'bytes ≥ 1'),
  /** Requests one MQTT connection may have in flight; AWS refuses the 11th with 429. */
  maxInFlightPerClient: positiveInt(10, 'request count ≥ 1'),
  /** AWS: clientToken up to 64 bytes. */
  maxClientTokenBytes: positiveInt(64, 'bytes ≥ 1'),
  /** AWS: thing names up to 128 bytes of [a-zA-Z0-9:_-]. */
  maxThingNameBytes: positiveInt(128, 'bytes ≥ 1'),
  /** AWS: shadow names up to 64 bytes of [$a-zA-Z0-9:_-]. */
  maxShadowNameBytes: positiveInt(64, 'bytes ≥ 1'),
});

const functionsSchema = () => z.strictObject({
  /** Instances one function may run at once per version unless its template sets ReservedConcurrentExecutions. */
  maxInstances: positiveInt(2, 'instance count ≥ 1'),
  /**
   * Node.js threads started ahead of a cold start (one per function deployed or busy below its
   * instance limit), all functions together; each holds ~5 MB. 0: none, every cold start starts its own.
   */
  maxSpareThreads: integer('expected a thread count ≥ 0').min(0, { message: 'expected a thread count ≥ 0' }).default(1),
  /**
   * Environments of all functions together, running, idle or spare (Lambda's account concurrency),
   * ReservedConcurrentExecutions set aside out of it: at the bound an idle one of another function is
   * stopped for a new one; with all busy a synchronous invoke gets 429 and events wait.
   */
  maxConcurrency: positiveInt(16, 'environment count ≥ 1'),
  /** An instance idle this long is stopped, giving its memory back. */
  idleTimeoutSeconds: seconds().default(300),
  /** Asynchronous events one function may have waiting for an instance; more are refused (429). */
  queueLength: positiveInt(1000, 'event count ≥ 1'),
  /** A function's log file is rotated (one old file kept) when it reaches this size. */
  logFileBytes: positiveInt(1048576, 'bytes ≥ 1'),
  /** Retries of a failed asynchronous event unless its template sets EventInvokeConfig.MaximumRetryAttempts. */
  maxRetryAttempts: integer('expected a retry count 0-10').min(0, { message: 'expected a retry count 0-10' })
    .max(10, { message: 'expected a retry count 0-10' }).default(2),
  /** Seconds before retry 1, 2, …; the last one repeats when there are more retries than delays. */
  retryDelaysSeconds: z.array(seconds(), { invalid_type_error: 'expected a list of seconds' })
    .min(1, { message: 'expected a list of seconds' }).default([60, 120]),
  /** An asynchronous event older than this goes to the dead-letter queue instead of being retried, unless the template sets EventInvokeConfig.MaximumEventAgeInSeconds. */
  maxEventAgeSeconds: seconds().default(21600),
  /** Dead-letter entries kept per function; beyond it the oldest is deleted (and counted). */
  dlqLength: positiveInt(1000, 'entry count ≥ 1'),
  /**
   * Payload bytes of the asynchronous events running at once, every function's together: each is
   * held in the daemon and copied into its environment. One that does not fit waits in its queue
   * (on disk) until others end; one always runs, whatever its size.
   */
  maxEventBytesInFlight: positiveInt(4 * 1024 * 1024, 'bytes ≥ 1'),
  /** The Python interpreter of python3.* functions (a path or a name on PATH). */
  pythonPath: text('expected a Python interpreter').default('python3'),
  /** For tests only: divides the intervals of rate(...) schedules (60 makes a minute pass in a second). Leave it at 1. */
  scheduleClockScale: positiveInt(1, 'a factor ≥ 1'),
});

/**
 * Made for each validation and dropped after: at a module's top level, the ~450 schemas of the
 * configuration and the ~10,000 methods zod binds to them took ~0.8 MB of the heap for good, read
 * once at start.
 */
export const configSchema = () => z.strictObject({
  /** Where the database, sockets and objects live; `--data-dir` overrides it. */
  dataDir: path().optional(),
  /** Board profile this configuration was written from (informational). */
  board: text('expected a board name').optional(),
  log: logSchema().default({}),
  store: storeSchema().default({}),
  mqtt: mqttSchema().default({}),
  http: httpSchema().default({}),
  admin: adminSchema().default({}),
  systemd: z.strictObject({
    /** Send WATCHDOG=1 when the unit sets WatchdogSec. */
    watchdog: bool(true),
  }).default({}),
  shadows: shadowsSchema().default({}),
  s3: s3Schema().default({}),
  cloud: cloudSchema().default({}),
  sync: syncSchema().default({}),
  functions: functionsSchema().default({}),
  devices: devicesSchema().default({}),
}).superRefine((config, context) => {
  // two listeners on one port: the second would fail the start as "in use by another program"
  const listeners = [
    { key: 'mqtt', enabled: true, host: config.mqtt.host, port: config.mqtt.port },
    { key: 'mqtt.tls', ...config.mqtt.tls },
    { key: 'mqtt.ws', ...config.mqtt.ws },
    { key: 'http', ...config.http },
    { key: 's3', enabled: true, host: config.s3.host, port: config.s3.port },
    { key: 'admin.tcp', ...config.admin.tcp },
  ].filter((listener) => listener.enabled && listener.port !== 0);
  listeners.forEach((listener, index) => {
    const before = listeners.slice(0, index).find((other) => other.port === listener.port && sameAddress(other.host, listener.host));
    if (before) {
      context.addIssue({ code: 'custom', path: [...listener.key.split('.'), 'port'], message: `expected a port no other listener has (${before.key}.port has it)` });
    }
  });
  // an object rule's cloud bucket: its own `to`, else cloud.s3.bucket
  config.sync.objects.forEach((rule, index) => {
    if (rule.to === undefined && config.cloud.s3.bucket === undefined) {
      context.addIssue({ code: 'custom', path: ['sync', 'objects', index, 'to'], message: 'expected a cloud bucket[/prefix] here or in cloud.s3.bucket' });
    }
  });
});

/** Whether listeners on these hosts would take the same address: the same host, or one of them every address. */
function sameAddress(a: string, b: string): boolean {
  const everyAddress = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  return a === b || everyAddress(a) || everyAddress(b);
}

export type Config = z.infer<ReturnType<typeof configSchema>>;
export type ConfigInput = z.input<ReturnType<typeof configSchema>>;

/**
 * With no config file Outpost behaves like Mosquitto 2.0 without one: loopback only,
 * anonymous clients allowed there, so the quickstart works at once.
 */
export const embeddedDefaults: ConfigInput = {
  mqtt: { host: '127.0.0.1', allowAnonymous: true, tls: { host: '127.0.0.1' }, ws: { host: '127.0.0.1' } },
  s3: { host: '127.0.0.1' },
  http: { auth: 'none' },
};
