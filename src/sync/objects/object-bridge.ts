import type { Logger } from 'pino';
import type { BusMessage, LocalBus } from '../../bus.js';
import type { GroupCommit } from '../../store/group-commit.js';
import type { CloudConfig, ObjectRule } from '../config.js';
import { OutboxFullError } from '../bridge.js';
import type { NewItem, Outbox } from '../outbox.js';
import type { RuleActivity } from '../activity.js';

/** The objects service's public bus topic: an S3 event record (version 2.1) per change of the bucket, after its commit. */
const eventTopic = (bucket: string) => `$outpost/objects/${bucket}/events`;

/** What an object item's payload holds: which version of which local object goes where. */
export interface ObjectRef {
  bucket: string;
  key: string;
  /** The local ETag at the event: only this version is uploaded (GET If-Match). */
  etag: string;
  size: number;
  cloudBucket: string;
  cloudKey: string;
  deleteAfterUpload: boolean;
  /** Send the object's tags with it (the rule's `tags`; items stored before tags existed have none). */
  tags?: boolean;
  /**
   * Only the object's tags changed (PutObjectTagging, DeleteObjectTagging): they go to the cloud
   * object with PutObjectTagging, after any upload of the key ahead of this item.
   */
  tagsOnly?: true;
}

/** The fields of an S3 event record this reads (S3 event message structure 2.1). */
interface EventRecord {
  eventName?: unknown;
  s3?: { bucket?: { name?: unknown }; object?: { key?: unknown; size?: unknown; eTag?: unknown } };
}

/** A rule's `from` and `to` split into bucket and key prefix. */
interface Route {
  rule: ObjectRule;
  bucket: string;
  prefix: string;
  cloudBucket: string;
  cloudPrefix: string;
}

function splitBucket(path: string): { bucket: string; prefix: string } {
  const slash = path.indexOf('/');
  return slash < 0 ? { bucket: path, prefix: '' } : { bucket: path.slice(0, slash), prefix: path.slice(slash + 1) };
}

/** The routes of the rules; throws when a rule has no cloud bucket (neither `to` nor cloud.s3.bucket). */
export function objectRoutes(rules: readonly ObjectRule[], cloud: CloudConfig['s3']): Route[] {
  return rules.map((rule) => {
    const local = splitBucket(rule.from);
    if (rule.to === undefined && cloud.bucket === undefined) {
      throw new Error(`sync.objects rule "${rule.name}": expected "to" (cloud bucket[/prefix]) or cloud.s3.bucket`);
    }
    const target = rule.to !== undefined ? splitBucket(rule.to) : { bucket: cloud.bucket!, prefix: cloud.prefix };
    return { rule, bucket: local.bucket, prefix: local.prefix, cloudBucket: target.bucket, cloudPrefix: target.prefix };
  });
}

/** Event records carry keys form-encoded (space as "+"). */
function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * `local bucket[/prefix] → cloud bucket/prefix`: every ObjectCreated event of a rule's bucket becomes
 * an outbox item (the object's key and ETag, not its content, which stays in the object store until
 * uploaded), and with the rule's `tags` every ObjectTagging event one that sends the tags. Durable
 * bus subscriptions: the event is committed to the outbox before the objects service counts it
 * delivered. Deletions are not mirrored (see docs/sync.md).
 */
export class ObjectBridge {
  private unsubscribers: Array<() => Promise<void>> = [];

  constructor(
    private readonly bus: LocalBus,
    private readonly routes: readonly Route[],
    private readonly outbox: Outbox,
    private readonly commit: GroupCommit,
    private readonly activity: RuleActivity,
    private readonly committed: () => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const bucket of new Set(this.routes.map((route) => route.bucket))) {
      const routes = this.routes.filter((route) => route.bucket === bucket);
      this.unsubscribers.push(await this.bus.subscribe(eventTopic(bucket), (message) => this.store(routes, message), { durable: true }));
    }
  }

  async stop(): Promise<void> {
    const unsubscribers = this.unsubscribers;
    this.unsubscribers = [];
    await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe().catch(() => undefined)));
  }

  /** Resolves once every matching upload is committed; rejects when a reject-new rule is full or the write failed. */
  private async store(routes: readonly Route[], message: BusMessage): Promise<void> {
    const items = this.itemsOf(routes, message);
    const outcomes = await Promise.allSettled(items.map(({ item, route }) => this.enqueue(item, route)));
    const refused = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (refused) throw refused.reason;
  }

  private async enqueue(item: NewItem, route: Route): Promise<void> {
    let outcome;
    try {
      outcome = await this.commit.run(() => this.outbox.enqueue(item, route.rule.overflow));
    } catch (error) {
      this.outbox.reloadFigures();
      this.outbox.countNotStored(route.rule.name);
      this.activity.failed(route.rule.name, `could not store: ${(error as Error).message}`);
      throw error;
    }
    if (outcome.stored) {
      this.committed();
      return;
    }
    this.activity.failed(route.rule.name, `outbox full (sync.maxBytes): ${outcome.policy}`);
    if (outcome.policy === 'reject-new') throw new OutboxFullError(route.rule.name);
  }

  private itemsOf(routes: readonly Route[], message: BusMessage): Array<{ item: NewItem; route: Route }> {
    let records: EventRecord[];
    try {
      records = (JSON.parse(message.payload.toString('utf8')) as { Records: EventRecord[] }).Records;
      if (!Array.isArray(records)) throw new Error('no Records list');
    } catch (error) {
      this.log.warn({ err: error, topic: message.topic }, 'not an S3 event message; ignored');
      return [];
    }
    const items: Array<{ item: NewItem; route: Route }> = [];
    for (const record of records) {
      const changed = changedObject(record);
      if (!changed) continue;
      const { tagsOnly, ...object } = changed;
      for (const route of routes) {
        if (object.bucket !== route.bucket || !object.key.startsWith(route.prefix)) continue;
        // a local copy deleted after its upload takes no later tags; its upload sends those it has then
        if (tagsOnly && (!route.rule.tags || route.rule.deleteAfterUpload)) continue;
        const ref: ObjectRef = {
          ...object, cloudBucket: route.cloudBucket, cloudKey: route.cloudPrefix + object.key, deleteAfterUpload: !tagsOnly && route.rule.deleteAfterUpload,
          tags: route.rule.tags, ...(tagsOnly ? { tagsOnly } : {}),
        };
        items.push({ route, item: {
          kind: 'object', rule: route.rule.name, priority: route.rule.priority, live: false,
          cloudTopic: `s3://${ref.cloudBucket}/${ref.cloudKey}`, localTopic: `${ref.bucket}/${ref.key}`,
          payload: Buffer.from(JSON.stringify(ref)), qos: 1, envelope: false, ttlMs: route.rule.ttlSeconds * 1000,
        } });
      }
    }
    return items;
  }
}

/** The object an ObjectCreated:* or ObjectTagging:* record names (with its ETag and size), else undefined. */
function changedObject(record: EventRecord): { bucket: string; key: string; etag: string; size: number; tagsOnly?: true } | undefined {
  const object = record.s3?.object;
  const bucket = record.s3?.bucket?.name;
  if (typeof record.eventName !== 'string') return undefined;
  const tagsOnly = record.eventName.startsWith('ObjectTagging:');
  if (!tagsOnly && !record.eventName.startsWith('ObjectCreated:')) return undefined;
  if (typeof bucket !== 'string' || typeof object?.key !== 'string' || typeof object.eTag !== 'string' || typeof object.size !== 'number') return undefined;
  return { bucket, key: decodeEventKey(object.key), etag: object.eTag.replace(/"/g, ''), size: object.size, ...(tagsOnly ? { tagsOnly: true as const } : {}) };
}
