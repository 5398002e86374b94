import type { Logger } from 'pino';
import type { LocalBus } from '../bus.js';
import type { FunctionInvoker } from '../service.js';
import type { Store } from '../store/store.js';
import type { ChangeLog, ChangeOrigin, ObjectEventName } from './object-store.js';
import { errors } from './errors.js';
import { GATEWAY_ACCOUNT } from '../gateway-identity.js';

/** One CloudFunctionConfiguration / LambdaFunctionConfiguration of a bucket's notification configuration. */
export interface NotificationRule {
  id: string;
  /** As the client gave it: a function name or `arn:aws:lambda:REGION:ACCOUNT:function:NAME`. */
  functionArn: string;
  /** The local function it names. */
  function: string;
  /** `s3:ObjectCreated:*`, `s3:ObjectCreated:Put`, `s3:ObjectRemoved:Delete`, … */
  events: string[];
  prefix?: string;
  suffix?: string;
}

export const EVENT_TYPES = [
  's3:ObjectCreated:*', 's3:ObjectCreated:Put', 's3:ObjectCreated:Post', 's3:ObjectCreated:Copy', 's3:ObjectCreated:CompleteMultipartUpload',
  's3:ObjectRemoved:*', 's3:ObjectRemoved:Delete',
  // a lifecycle rule's expirations: not ObjectRemoved events, as in S3 (Configuring S3 Lifecycle event notifications)
  's3:LifecycleExpiration:*', 's3:LifecycleExpiration:Delete',
  's3:ObjectTagging:*', 's3:ObjectTagging:Put', 's3:ObjectTagging:Delete',
];

/** The bus topic every event record of a bucket is published on. */
export const eventTopic = (bucket: string) => `$outpost/objects/${bucket}/events`;

/** The function a rule's target names: the NAME of a Lambda ARN (qualifier dropped), or the name itself. */
export function functionNameOf(target: string): string | undefined {
  const arn = /^arn:aws[a-z-]*:lambda:[a-z0-9-]*:\d*:function:([A-Za-z0-9_-]{1,64})(:[A-Za-z0-9$_-]+)?$/.exec(target);
  if (arn) return arn[1];
  return /^[A-Za-z0-9_-]{1,64}$/.test(target) ? target : undefined;
}

/**
 * Checks rules as PutBucketNotificationConfiguration does: known event types, one prefix and one
 * suffix at most, and a deployed function (S3 validates its destinations the same way).
 */
export function validateRules(rules: NotificationRule[], functions: FunctionInvoker | undefined): void {
  const ids = new Set<string>();
  for (const rule of rules) {
    if (rule.events.length === 0) throw errors.invalidArgument('The event is not supported for notifications', 'Event', '');
    for (const event of rule.events) {
      if (!EVENT_TYPES.includes(event)) throw errors.invalidArgument('The event is not supported for notifications', event, event);
    }
    if (ids.has(rule.id)) throw errors.invalidArgument('Configuration ID must be unique', 'Id', rule.id);
    ids.add(rule.id);
    if (!functions?.exists(rule.function)) {
      throw errors.invalidArgument('Unable to validate the following destination configurations', rule.functionArn, 'The destination function does not exist');
    }
  }
}

function matches(rule: NotificationRule, eventName: ObjectEventName, key: string): boolean {
  const [kind] = eventName.split(':');
  return rule.events.some((event) => event === `s3:${eventName}` || event === `s3:${kind}:*`)
    && (!rule.prefix || key.startsWith(rule.prefix))
    && (!rule.suffix || key.endsWith(rule.suffix));
}

/**
 * A key form-encoded as S3 encodes it in event records and in listings with encoding-type=url:
 * Java's URLEncoder (letters, digits and `-_.*` kept, space → '+', every other byte %XX in upper
 * case), slashes kept.
 */
export function formEncodedKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/').replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An event record as S3 sends it (event message structure), without configurationId. */
export interface EventRecord {
  eventVersion: '2.1' | '2.3';
  eventSource: 'aws:s3';
  awsRegion: string;
  eventTime: string;
  eventName: ObjectEventName;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { 'x-amz-request-id': string; 'x-amz-id-2': string };
  s3: {
    s3SchemaVersion: '1.0';
    configurationId?: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size?: number; eTag?: string; sequencer: string };
  };
}

/** Where one stored event still has to go. */
type Target = { bus: true } | { function: string; configurationId: string };

interface EventRow {
  id: number;
  bucket: string;
  record: string;
  targets: string;
}

/**
 * Object events, at least once: `record` runs inside the transaction that commits the object, so
 * the event row exists exactly when the object does; rows are delivered (local bus, then each
 * matching function's durable async queue) after the commit and deleted once every target took
 * them. Rows a crash left are delivered at the next start.
 */
export class ObjectEvents implements ChangeLog {
  private readonly statements;
  private pendingCount: number;
  private sequence = 0;
  private delivering = false;
  private kickedMeanwhile = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 500;
  private stopped = false;
  /** Events committed whose object's files are not in place yet (ChangeLog.release). */
  private readonly held = new Set<number>();
  readonly counts = { delivered: 0, dropped: 0 };

  constructor(private readonly store: Store, private readonly rulesOf: (bucket: string) => NotificationRule[], private readonly region: string,
    private readonly bus: LocalBus, private readonly functions: FunctionInvoker | undefined, private readonly maxPending: number, private readonly log: Logger) {
    this.statements = {
      insert: store.db.prepare('INSERT INTO object_events (bucket, record, targets) VALUES (?, ?, ?)'),
      pending: store.db.prepare('SELECT * FROM object_events ORDER BY id LIMIT 64'),
      delete: store.db.prepare('DELETE FROM object_events WHERE id = ?'),
      update: store.db.prepare('UPDATE object_events SET targets = ? WHERE id = ?'),
    };
    this.pendingCount = (store.db.prepare('SELECT COUNT(*) AS n FROM object_events').get() as { n: number }).n;
  }

  /** Writes wait (503 SlowDown) while this many events are undelivered: the bound of the event queue. */
  get full(): boolean {
    return this.pendingCount >= this.maxPending;
  }

  get pending(): number {
    return this.pendingCount;
  }

  record(bucket: string, eventName: ObjectEventName, object: { key: string; size?: number; etag?: string }, origin: ChangeOrigin): number | undefined {
    // the bus only when someone subscribes: a publish nobody subscribes to reaches no one either
    const targets: Target[] = this.bus.hasSubscribers(eventTopic(bucket)) ? [{ bus: true }] : [];
    for (const rule of this.rulesOf(bucket)) {
      if (matches(rule, eventName, object.key)) targets.push({ function: rule.function, configurationId: rule.id });
    }
    if (targets.length === 0) return undefined;
    const record: EventRecord = {
      // S3 event message structure: version 2.3 for S3 Lifecycle and object tagging events, 2.1 for the others
      eventVersion: eventName.startsWith('LifecycleExpiration:') || eventName.startsWith('ObjectTagging:') ? '2.3' : '2.1',
      eventSource: 'aws:s3',
      awsRegion: this.region,
      eventTime: new Date().toISOString(),
      eventName,
      userIdentity: { principalId: origin.principalId },
      requestParameters: { sourceIPAddress: origin.sourceIp },
      responseElements: { 'x-amz-request-id': origin.requestId, 'x-amz-id-2': Buffer.from(`outpost/${origin.requestId}`).toString('base64') },
      s3: {
        s3SchemaVersion: '1.0',
        bucket: { name: bucket, ownerIdentity: { principalId: GATEWAY_ACCOUNT }, arn: `arn:aws:s3:::${bucket}` },
        object: {
          key: formEncodedKey(object.key),
          ...(object.size !== undefined ? { size: object.size, eTag: object.etag } : {}),
          sequencer: this.nextSequencer(),
        },
      },
    };
    const id = Number(this.statements.insert.run(bucket, JSON.stringify(record), JSON.stringify(targets)).lastInsertRowid);
    this.pendingCount++;
    this.held.add(id);
    return id;
  }

  /** Called after the commit (the row is on disk, or was rolled back and is recounted) once the object's files are in place. */
  release(ids: number[]): void {
    for (const id of ids) this.held.delete(id);
    if (ids.length) this.kick();
  }

  /** Delivers what is pending; called once a change's events are released, and at startup. */
  kick(): void {
    if (this.stopped || this.pendingCount === 0) return;
    if (this.delivering) {
      // the running round may have stopped at an event released just now
      this.kickedMeanwhile = true;
      return;
    }
    this.delivering = true;
    this.kickedMeanwhile = false;
    void this.deliverAll()
      .catch((error) => {
        // the deliveries could not be recorded (a full disk): they stay pending, tried again later
        this.log.error({ err: error }, 'object events could not be recorded as delivered; retrying');
        this.retryLater();
      })
      .finally(() => {
        this.delivering = false;
        if (this.kickedMeanwhile) this.kick();
      });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  /** Kicks again later, backing off up to 30 s. */
  private retryLater(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.kick(), this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 30_000);
  }

  private async deliverAll(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const rows = this.statements.pending.all() as EventRow[];
      if (rows.length === 0) {
        this.pendingCount = 0;
        return;
      }
      // in order: the events after one still waiting for its files wait too; its release kicks again
      const waiting = rows.findIndex((row) => this.held.has(row.id));
      if (waiting === 0) return;
      if (waiting > 0) rows.length = waiting;
      const outcomes = await Promise.all(rows.map((row) => this.deliver(row)));
      await this.store.commit.run(() => {
        for (const [index, row] of rows.entries()) {
          const left = outcomes[index];
          if (left.length === 0) this.statements.delete.run(row.id);
          else this.statements.update.run(JSON.stringify(left), row.id);
        }
      });
      const done = outcomes.filter((left) => left.length === 0).length;
      this.pendingCount -= done;
      if (done < rows.length) {
        // a function's queue is full
        this.retryLater();
        return;
      }
      this.retryDelayMs = 500;
    }
  }

  /** Sends one event to its targets; resolves with the targets still to do. */
  private async deliver(row: EventRow): Promise<Target[]> {
    const record = JSON.parse(row.record) as EventRecord;
    const left: Target[] = [];
    for (const target of JSON.parse(row.targets) as Target[]) {
      try {
        if ('bus' in target) {
          await this.bus.publish({ topic: eventTopic(row.bucket), payload: JSON.stringify({ Records: [record] }), qos: 1 });
        } else {
          // configurationId between s3SchemaVersion and bucket, in S3's key order
          const { s3SchemaVersion, bucket, object } = record.s3;
          const event = { Records: [{ ...record, s3: { s3SchemaVersion, configurationId: target.configurationId, bucket, object } }] };
          await this.invoke(target.function, JSON.stringify(event));
        }
        this.counts.delivered++;
      } catch (error) {
        if ('function' in target && !this.functions?.exists(target.function)) {
          this.counts.dropped++;
          this.log.warn({ bucket: row.bucket, function: target.function }, 'object event dropped: its function is no longer deployed');
          continue;
        }
        this.log.warn({ err: error, bucket: row.bucket, target }, 'object event not delivered yet; retrying');
        left.push(target);
      }
    }
    return left;
  }

  private async invoke(name: string, event: string): Promise<void> {
    if (!this.functions) throw new Error('no function runtime');
    await this.functions.invokeAsync(name, event, 's3');
  }

  /** S3's sequencer: hexadecimal, increasing with each event of this daemon. */
  private nextSequencer(): string {
    this.sequence = (this.sequence + 1) % 0x10000;
    return (BigInt(Date.now()) * 0x10000n + BigInt(this.sequence)).toString(16).toUpperCase().padStart(16, '0');
  }
}
