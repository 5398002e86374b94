import { z } from 'zod/v3';
import { isValidFilter } from '../broker/topic.js';
import { bool, integer, milliseconds, oneOf, path, positiveInt, range, seconds, text } from '../config/fields.js';

function isCloudUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return ['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}
/** An S3 bucket name: 3-63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit. */
const BUCKET_NAME = '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]';

/** Scheme, host and optional port: the S3 client puts the bucket and key in the path, so a path of the endpoint's own would be dropped. */
function isS3Endpoint(text: string): boolean {
  try {
    const url = new URL(text);
    return ['http:', 'https:'].includes(url.protocol) && url.hostname !== '' && url.pathname === '/' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}
const topicFilter = () => text('expected a topic filter').refine(isValidFilter, { message: 'expected a valid MQTT topic filter' });
// A template renders to a topic name, so it may not hold wildcards (its ${…} variables cannot add any).
const topicTemplate = () => text('expected a topic template (e.g. "gateways/gw1/${topic}")')
  .refine((template) => !/[+#\u0000]/.test(template), { message: 'expected a topic template without "+", "#" or U+0000' });
const nonNegative = (fallback: number, what: string) =>
  integer(`expected ${what}`).min(0, { message: `expected ${what}` }).default(fallback);
const qos = () => range('expected QoS 0 or 1', 0, 1);

const cloudMqttSchema = () => z.strictObject({
  /** The cloud broker: mqtt://, mqtts://, ws:// or wss:// host[:port][/path]; without it the sync agent buffers and never connects. */
  url: text('expected an mqtt://, mqtts://, ws:// or wss:// URL').refine(isCloudUrl, { message: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' }).optional(),
  /**
   * The gateway's client id on the cloud broker (AWS IoT Core: the thing name); also the prefix of
   * every item id. Default: one made for this installation on its first start (src/sync/client-id.ts).
   */
  clientId: text('expected a client id').optional(),
  username: text('expected a user name').optional(),
  password: text('expected a password').optional(),
  /** Client certificate and key (PEM files) for mutual TLS, e.g. AWS IoT Core on port 8883. */
  cert: path().optional(),
  key: path().optional(),
  /** CA bundle (PEM) the cloud's certificate must chain to; default: Node's built-in roots. */
  ca: path().optional(),
  /** Seconds between PINGREQs; a silent link is declared down after 1.5× this. */
  keepalive: range('expected seconds 1-65535', 1, 65535).default(30),
  /** MQTT 3.1.1 (4) or 5; with 5 a PUBACK reason code ≥ 0x80 dead-letters the message at once. */
  protocolVersion: z.union([z.literal(4), z.literal(5)], { errorMap: () => ({ message: 'expected 4 or 5' }) }).default(4),
  /** Seconds a connection attempt may take before it counts as failed. */
  connectTimeoutSeconds: seconds().default(10),
  /** Reconnect backoff: the n-th attempt waits a random time in [min, min(max, min·2ⁿ)] (full jitter). */
  reconnectMinMs: milliseconds().default(1000),
  reconnectMaxMs: milliseconds().default(60000),
  /**
   * The backoff's cap after a refusal no retry heals (CONNACK: bad user name or password, not
   * authorised, client id rejected; the client certificate refused or the cloud's not trusted; a
   * shadow get refused with 401 or 403); at least reconnectMaxMs.
   */
  refusedRetryMaxMs: milliseconds().default(300000),
  /** QoS 1 publishes awaiting their PUBACK at once; more in flight drains faster over a slow round trip. */
  // packet identifiers are 16 bits, shared with shadow and subscribe requests
  maxInFlight: range('expected a message count 1-60000', 1, 60000).default(256),
  /**
   * Payload bytes of those in flight together, held in memory until their PUBACK (256 of
   * maxMessageBytes would be 32 MiB); one message always goes. 2 MiB in flight sends 20 MB/s over a
   * 100 ms round trip.
   */
  maxInFlightBytes: positiveInt(2 * 1024 * 1024, 'bytes ≥ 1'),
  /** A message larger than this (topic + payload) is dead-lettered instead of sent; AWS IoT Core allows 128 KiB. */
  maxMessageBytes: positiveInt(131072, 'bytes ≥ 1'),
}).refine((mqtt) => (mqtt.cert === undefined) === (mqtt.key === undefined), { message: 'expected both "cert" and "key" or neither' })
  .refine((mqtt) => mqtt.reconnectMinMs <= mqtt.reconnectMaxMs, { message: 'expected reconnectMinMs ≤ reconnectMaxMs' });

/** S3's smallest part but the last (AWS rejects smaller ones at CompleteMultipartUpload). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

/** Where the `sync.objects` rules upload to. */
const cloudS3Schema = () => z.strictObject({
  /** An S3-compatible endpoint (MinIO, Ceph, Garage); default: AWS S3 of `region`. */
  endpoint: text('expected an http:// or https:// URL').refine(isS3Endpoint, { message: 'expected an http:// or https:// URL of a host (and port), without a path' }).optional(),
  region: text('expected a region name').default('us-east-1'),
  bucket: text('expected a bucket name').regex(new RegExp(`^${BUCKET_NAME}$`), { message: 'expected a bucket name (3-63 of a-z, 0-9, "." and "-")' }).optional(),
  /** Prepended to every object key in the cloud bucket. */
  prefix: z.string({ invalid_type_error: 'expected a key prefix' }).default(''),
  /** Default: the AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) environment variables. */
  accessKeyId: text('expected an access key id').optional(),
  secretAccessKey: text('expected a secret access key').optional(),
  /** Path-style URLs (endpoint/bucket/key), which most self-hosted S3 servers need. */
  forcePathStyle: bool(false),
  /** Objects larger than this are uploaded in parts of this size (S3: 5 MiB to 5 GiB), each resumable after a restart. */
  partBytes: range('expected bytes from 5 MiB (5242880) to 5 GiB', MIN_PART_BYTES, 5 * 1024 ** 3).default(8 * 1024 * 1024),
  /**
   * Uploads at once: over a long round trip one at a time sends a few small objects a second however
   * fast the link (AWS CLI's max_concurrent_requests: 10, rclone's --transfers: 4). 1: one at a time.
   */
  concurrency: range('expected an upload count 1-32', 1, 32).default(4),
  /** Upload bandwidth cap over all uploads (a token bucket on the bytes sent); 0: none. */
  maxBytesPerSecond: nonNegative(0, 'bytes per second ≥ 0'),
  /**
   * Compare each ETag the cloud returns with the MD5 of what was sent (S3, MinIO, Ceph, Garage return MD5s
   * unless objects are encrypted with SSE-KMS/SSE-C); false only for stores whose ETags are not MD5s.
   */
  verifyEtag: bool(true),
  /** After a failed request (cloud unreachable, 5xx, SlowDown) uploads wait a random time in [min, min(max, min·2ⁿ)]. */
  retryMinMs: milliseconds().default(1000),
  retryMaxMs: milliseconds().default(30000),
  /** The backoff's cap after a 401 or 403 (AccessDenied, InvalidAccessKeyId…), which only the operator heals; at least retryMaxMs. */
  refusedRetryMaxMs: milliseconds().default(300000),
}).refine((s3) => (s3.accessKeyId === undefined) === (s3.secretAccessKey === undefined), { message: 'expected both "accessKeyId" and "secretAccessKey" or neither' })
  .refine((s3) => s3.retryMinMs <= s3.retryMaxMs, { message: 'expected retryMinMs ≤ retryMaxMs' });

export const cloudSchema = () => z.strictObject({
  mqtt: cloudMqttSchema().default({}),
  s3: cloudS3Schema().default({}),
});

export const OVERFLOW_POLICIES = ['drop-oldest', 'reject-new', 'drop-lowest-priority'] as const;
export type OverflowPolicy = (typeof OVERFLOW_POLICIES)[number];

/** `local filter → cloud topic template`, through the outbox. */
const outboundRuleSchema = () => z.strictObject({
  /** Names the rule in `outpost sync status`, metrics and the dead-letter list. */
  name: text('expected a rule name').regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'expected a rule name of 1-64 letters, digits, "_", "." or "-"' }),
  /** Local topic filter; messages matching it are stored before the device gets its PUBACK. */
  from: topicFilter(),
  /** Cloud topic: ${topic} is the local topic, ${clientId} the local publisher, ${id} the item id. */
  to: topicTemplate().default('${topic}'),
  /** QoS on the cloud link; with 0 an item leaves the outbox when it is written to the socket. */
  qos: qos().default(1),
  /** 0-9; higher drains first and is dropped last by drop-lowest-priority. */
  priority: range('expected a priority 0-9', 0, 9).default(5),
  /** Seconds an item may wait (monotonic age, see docs/sync.md); 0: until sync.maxAgeSeconds. */
  ttlSeconds: nonNegative(0, 'seconds ≥ 0'),
  /** What happens when the outbox is full (sync.maxBytes). */
  overflow: oneOf([...OVERFLOW_POLICIES], 'expected "drop-oldest", "reject-new" or "drop-lowest-priority"').default('drop-oldest'),
  /** New messages overtake the backlog; false keeps one strict order per topic behind the backlog (at the drain rate). */
  liveFirst: bool(true),
  /**
   * Where the cloud finds the item id (MQTT 3.1.1 has no user properties): "envelope" sends
   * {"id","topic","ts","payload"|"payloadBase64"}; "none" sends the payload as is (put ${id} in `to` to keep an id).
   */
  id: oneOf(['envelope', 'none'], 'expected "envelope" or "none"').default('envelope'),
});
export type OutboundRule = z.infer<ReturnType<typeof outboundRuleSchema>>;

/** `cloud filter → local topic template`, acknowledged to the cloud once the local broker took it. */
const inboundRuleSchema = () => z.strictObject({
  name: text('expected a rule name').regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'expected a rule name of 1-64 letters, digits, "_", "." or "-"' }),
  /** Cloud topic filter, subscribed on every connect. */
  from: topicFilter(),
  /** Local topic: ${topic} is the cloud topic. */
  to: topicTemplate().default('${topic}'),
  qos: qos().default(1),
});
export type InboundRule = z.infer<ReturnType<typeof inboundRuleSchema>>;

/** `bucket[/prefix]`: a bucket name, optionally followed by a key prefix. */
const bucketAndPrefix = (what: string) => text(`expected ${what}`)
  .regex(new RegExp(`^${BUCKET_NAME}(\\/.*)?$`, 's'), { message: `expected ${what}` });

/** `local bucket[/prefix] → cloud bucket/prefix`: each object created there is uploaded through the outbox. */
const objectRuleSchema = () => z.strictObject({
  name: text('expected a rule name').regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'expected a rule name of 1-64 letters, digits, "_", "." or "-"' }),
  /** Local bucket, optionally with a key prefix (a filter: only keys starting with it). */
  from: bucketAndPrefix('a local "bucket" or "bucket/prefix"'),
  /** Cloud bucket and key prefix put before the local key; default: cloud.s3.bucket and cloud.s3.prefix. */
  to: bucketAndPrefix('a cloud "bucket" or "bucket/prefix"').optional(),
  priority: range('expected a priority 0-9', 0, 9).default(5),
  /** Seconds an upload may wait (monotonic age); 0: until sync.maxAgeSeconds. */
  ttlSeconds: nonNegative(0, 'seconds ≥ 0'),
  /** When the outbox is full (sync.maxBytes); reject-new refuses the event, see docs/sync.md. */
  overflow: oneOf([...OVERFLOW_POLICIES], 'expected "drop-oldest", "reject-new" or "drop-lowest-priority"').default('drop-oldest'),
  /** Delete the local object once the cloud has it verified, if it is still the version uploaded. */
  deleteAfterUpload: bool(false),
  /** Send the object's tags with it (x-amz-tagging), and their later changes (PutObjectTagging). */
  tags: bool(true),
});
export type ObjectRule = z.infer<ReturnType<typeof objectRuleSchema>>;

// AWS IoT names: a thing 1-128 of [a-zA-Z0-9:_-], a shadow 1-64 of [$a-zA-Z0-9:_-] (as the reserved $package)
const thingName = () => text('expected a thing name').regex(/^[a-zA-Z0-9:_-]{1,128}$/, { message: 'expected a thing name of 1-128 letters, digits, ":", "_" or "-"' });
const shadowName = () => text('expected a shadow name').regex(/^[$a-zA-Z0-9:_-]{1,64}$/, { message: 'expected a shadow name of 1-64 letters, digits, "$", ":", "_" or "-"' });

/** A local shadow kept in sync with the AWS IoT shadow of the same thing (and name) on the cloud broker. */
const shadowRuleSchema = () => z.strictObject({
  thing: thingName(),
  /** A named shadow; omit for the classic one. */
  name: shadowName().optional(),
  /** both: three-way merge (reported: local wins, desired: cloud wins); or one way only. */
  direction: oneOf(['both', 'device-to-cloud', 'cloud-to-device'], 'expected "both", "device-to-cloud" or "cloud-to-device"').default('both'),
});
export type ShadowRule = z.infer<ReturnType<typeof shadowRuleSchema>>;

export const syncSchema = () => z.strictObject({
  /** The outbox holds at most this many bytes (topic + payload + 64 per item); then each rule's overflow policy applies. */
  maxBytes: positiveInt(64 * 1024 * 1024, 'bytes ≥ 1'),
  /** Items older than this (monotonic age) are dropped and counted; 0: no age bound beyond each rule's ttlSeconds. */
  maxAgeSeconds: nonNegative(0, 'seconds ≥ 0'),
  /** Backlog items sent per second while new (live) messages go out at once; 0: as fast as the link takes them. */
  drainRate: nonNegative(5000, 'messages per second ≥ 0'),
  /**
   * Attempts in a row before an item is dead-lettered: connections the cloud closed right after the
   * item went alone on them (MQTT 3.1.1 refusals, see docs/sync.md), or failed uploads of an object.
   */
  maxAttempts: positiveInt(10, 'attempt count ≥ 1'),
  /** Dead-letter entries kept; beyond it the oldest is deleted (and counted). */
  dlqLength: positiveInt(1000, 'entry count ≥ 1'),
  /** Bytes the dead-letter entries may hold (topics + payload + 64 each, as for sync.maxBytes); beyond it the oldest are deleted (and counted). */
  dlqMaxBytes: positiveInt(16 * 1024 * 1024, 'bytes ≥ 1'),
  outbound: z.array(outboundRuleSchema(), { invalid_type_error: 'expected a list of rules' }).default([]),
  inbound: z.array(inboundRuleSchema(), { invalid_type_error: 'expected a list of rules' }).default([]),
  shadows: z.array(shadowRuleSchema(), { invalid_type_error: 'expected a list of shadows' }).default([]).superRefine((shadows, context) => {
    // one entry per shadow: a second one (another direction, say) would silently replace the first
    const listed = new Set<string>();
    for (const shadow of shadows) {
      const id = shadow.name === undefined ? shadow.thing : `${shadow.thing}/${shadow.name}`;
      if (listed.has(id)) context.addIssue({ code: 'custom', message: `expected each shadow once (thing and name); ${id} is listed twice` });
      listed.add(id);
    }
  }),
  objects: z.array(objectRuleSchema(), { invalid_type_error: 'expected a list of rules' }).default([]),
}).refine((sync) => new Set([...sync.outbound, ...sync.objects].map((rule) => rule.name)).size === sync.outbound.length + sync.objects.length,
  { message: 'expected unique rule names across outbound and objects' });

export type CloudConfig = z.infer<ReturnType<typeof cloudSchema>>;
export type SyncConfig = z.infer<ReturnType<typeof syncSchema>>;
