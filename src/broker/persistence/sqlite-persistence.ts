import { Readable } from 'node:stream';
import { collectBufferGarbage } from '../../buffer-garbage.js';
import QlobberSub, { type TrieSubscription } from 'qlobber/aedes/qlobber-sub.js';
import type { Store } from '../../store/store.js';
import { migrations } from './migrations.js';
import {
  aedesPacketFromColumns,
  booleanColumn,
  fromColumns,
  toAedesPacketColumns,
  toColumns,
  type Packet,
  type PacketColumns,
  type Payload,
} from './packet-codec.js';
import { topicRange, type TopicRange } from './topic-filter.js';
import { levelsMatch, wildcardSkipsTopic } from '../topic.js';
import { wasRefused } from '../refused-subscriptions.js';

export type { Packet } from './packet-codec.js';

export type DropReason = 'queue-full' | 'retained-limit';
const SYSTEM_PREFIX = '$SYS/';

export interface SqlitePersistenceOptions {
  store: Store;
  /** Outgoing packets kept per persistent session, besides those in flight (maxInflightMessages); beyond it the oldest not in flight is dropped. */
  maxQueuedMessages: number;
  /** Topic and payload bytes of one persistent session's outgoing packets, besides those in flight; a PUBLISH that does not fit is not queued. Unbounded when not given. */
  maxQueuedBytes?: number;
  /** Of a session's outgoing packets sent and not acknowledged, the first this many count against neither queue bound, nor are dropped for its room. None when not given. */
  maxInflightMessages?: number;
  /** Distinct retained topics kept; a retained publish to a new topic beyond it is not retained. */
  maxRetained: number;
  /** Topic and payload bytes of all retained messages together (storedBytes); a retained publish beyond it is not retained. Unbounded when not given. */
  maxRetainedBytes?: number;
  /** Called, after the commit, once per queued packet dropped and per retained message refused. */
  onDrop?: (reason: DropReason, clientId?: string) => void;
  /** The thing a connected client logged in as (null: anonymous), stored with its will and read back as its `thing` ('' for anonymous). */
  willOwner?: (client: PersistenceClient) => string | null;
  /** QoS 2 PUBLISHes one session may hold awaiting their PUBREL; one more is refused with AwaitingRelLimitError. Unbounded when not given. */
  maxAwaitingRel?: number;
  /** Their topic and payload bytes (storedBytes), per session; one that does not fit is refused likewise, unless the session holds none. Unbounded when not given. */
  maxAwaitingRelBytes?: number;
  /** Of all clean sessions together, whose are held in memory; one beyond is refused likewise. Unbounded when not given. */
  maxAwaitingRelBytesInMemory?: number;
}

/** A session holds as many QoS 2 PUBLISHes awaiting their PUBREL as mqtt.maxAwaitingRel* allow: aedes closes the connection. */
export class AwaitingRelLimitError extends Error {
  override name = 'AwaitingRelLimitError';
}

/** The part of an aedes client the persistence looks at. */
export interface PersistenceClient {
  readonly id: string;
  readonly clean?: boolean;
}

/** A SUBSCRIBE entry, as aedes passes it and gets it back from `subscriptionsByClient`. */
export interface Subscription {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
}

/** A persistent session's subscription matching a topic, as `subscriptionsByTopic` returns it. */
export type TopicSubscription = TrieSubscription;

interface BrokerIdentity {
  readonly id: string;
}

type SubscriptionRecord = Omit<Subscription, 'topic'>;

interface SubscriptionRow {
  client_id: string;
  topic: string;
  qos: number;
  retain_handling: number | null;
  retain_as_published: number | null;
  no_local: number | null;
  subscription_identifier: number | null;
}

interface OutgoingRow extends PacketColumns {
  id: number;
  client_id: string;
}

/** A clean session's QoS 2 PUBLISH awaiting its PUBREL, with the bytes it counts for. */
interface VolatileIncoming {
  row: PacketColumns;
  bytes: number;
}

interface WillRow extends PacketColumns {
  client_id: string;
  thing: string | null;
}

// The same matching options as aedes' own mqemitter, so that a persistent
// session is queued exactly the messages it is delivered live.
const TRIE_OPTIONS = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true };

// Rows read per query by the lazy streams: bounded memory however long the
// queue or however many retained topics match, and no statement left open
// across the stream's asynchronous reads.
const PAGE_SIZE = 64;
/**
 * Sessions of the queued publications queueDelivery knows of, together: each is forgotten once
 * delivered live, right after its queuing, so this bounds only what a failed publish leaves (the
 * oldest go first). One forgotten before it was delivered goes live, and also from a queue being
 * read at that moment.
 */
const MAX_TRACKED_SESSIONS = 8192;

const PACKET_COLUMNS = 'cmd, broker_id, broker_counter, topic, payload, qos, retain, dup, message_id, extra_fields';
const PACKET_VALUES = '@cmd, @broker_id, @broker_counter, @topic, @payload, @qos, @retain, @dup, @message_id, @extra_fields';
const PACKET_ASSIGNMENTS = PACKET_COLUMNS.split(', ').map((column) => `${column} = @${column}`).join(', ');

function subscriptionRecord(sub: Subscription): SubscriptionRecord {
  const record: SubscriptionRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
  // MQTT 5 Subscription Identifier: only present when given, so pre-v5 subscriptions keep their shape.
  if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
  return record;
}

function outgoingFromRow(row: OutgoingRow): Packet {
  // A queued PUBREL replaced its PUBLISH (outgoingUpdate) and is read back as aedes stored it.
  return row.cmd === 'publish' ? aedesPacketFromColumns(row) : fromColumns(row);
}

function willFromRow(row: WillRow): Packet {
  const will = fromColumns(row);
  will.clientId = row.client_id;
  if (row.thing !== null) will.thing = row.thing;
  return will;
}

/** Bytes of a stored payload (a string as its UTF-8, as SQLite keeps TEXT). */
function payloadBytes(payload: Payload | null): number {
  return payload === null ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
}

/** Bytes of a stored packet, as the byte bounds count them: its topic's and its payload's (STORED_BYTES in SQL). */
function storedBytes(row: Pick<PacketColumns, 'topic' | 'payload'>): number {
  return (row.topic === null ? 0 : Buffer.byteLength(row.topic)) + payloadBytes(row.payload);
}

// CAST: a string is kept as TEXT, whose LENGTH counts characters
const STORED_BYTES = 'COALESCE(LENGTH(CAST(topic AS BLOB)), 0) + COALESCE(LENGTH(CAST(payload AS BLOB)), 0)';

function noSuchPacket(): Error {
  return new Error('no such packet');
}

/**
 * aedes persistence (the aedes-persistence 11 async interface) on the daemon's
 * SQLite database.
 *
 * Durability: every write goes through the store's group commit, and its
 * promise resolves only after COMMIT, so whatever is acknowledged once it has
 * resolved is on disk and survives kill -9. (aedes waits for them before
 * CONNACK, SUBACK and PUBREC, but writes a QoS 1 PUBACK before it even starts
 * persisting the publish: that ordering is the broker's to fix, not this class's.)
 *
 * Memory: what the hot paths look up is mirrored in memory — the subscription
 * trie, queue lengths, which clients have incoming packets or wills, the number
 * of retained topics — and payloads stay in SQLite. Retained messages are found
 * through the table's topic index rather than an in-memory one: at the default
 * limit of 100 000 topics a Set of topic strings alone is ~24 MB of heap, over a
 * third of the daemon's idle budget, while a prefix range scan of the index
 * costs a couple of milliseconds, and only when a client subscribes.
 *
 * Consistency: a mirror is updated inside the same group-commit write as its
 * rows, so it always shows what is committed (or being committed in this
 * batch). Writes still queued are tracked per client in `pendingWrites`: a
 * read that must see them waits for the batch, and a no-op shortcut is taken
 * only when the client has neither stored state nor queued writes. If a write
 * fails — in particular if COMMIT itself does, rolling back a whole batch whose
 * writes had already updated the mirrors — the mirrors are reloaded from disk.
 *
 * Clean sessions never reach SQLite: aedes stores no subscriptions or queued
 * packets for them, their QoS 2 incoming packets are kept in memory only (the
 * session ends with the connection, MQTT-3.1.2-6), and the per-connection calls
 * aedes makes for every client (cleanSubscriptions, cleanIncoming, delWill,
 * outgoingStream, outgoingClearMessageId on each PUBACK) are answered from the
 * mirrors. What they do touch is shared state: retained messages and wills.
 */
export class SqlitePersistence {
  private readonly store: Store;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private readonly maxInflightMessages: number;
  private readonly maxRetained: number;
  private readonly onDrop: ((reason: DropReason, clientId?: string) => void) | undefined;
  private readonly willOwner: ((client: PersistenceClient) => string | null) | undefined;
  private readonly maxAwaitingRel: number;
  private readonly maxAwaitingRelBytes: number;
  private readonly maxAwaitingRelBytesInMemory: number;
  private readonly maxRetainedBytes: number;
  private readonly statements: Statements;

  private readonly subscriptions = new Map<string, Map<string, SubscriptionRecord>>();
  /** The filters of every persistent session, held here (and in the trie) whether its client is connected or not. */
  storedFilters = 0;
  private readonly trie = new QlobberSub(TRIE_OPTIONS);
  private readonly queueLengths = new Map<string, number>();
  /** Of the same sessions, the queued packets' bytes (storedBytes). */
  private readonly queueBytes = new Map<string, number>();
  /** Persistent sessions' QoS 2 PUBLISHes awaiting their PUBREL: the bytes of each (storedBytes), by packet identifier. */
  private readonly durableIncoming = new Map<string, Map<number, number>>();
  /** Bytes of their stores not committed yet, by client: counted by the byte bound meanwhile, as aedes stores a socket read's PUBLISHes at once. */
  private readonly incomingBeingStored = new Map<string, number>();
  /**
   * Of those, the ones stored in this run, whose publish this process makes right after. aedes
   * stores a QoS 2 PUBLISH and publishes it in a later commit: one stored by a run that crashed in
   * between is not taken for a duplicate when its sender sends it again, or it would never be
   * published. One of an earlier run is a duplicate once its publication is recorded (with its queuing).
   */
  private readonly incomingThisRun = new Map<string, Set<number>>();
  /** Persistent sessions' QoS 2 PUBLISHes stored and about to be published, by their payload (the publication's packet shares it). */
  private readonly incomingToPublish = new WeakMap<Buffer, { clientId: string; messageId: number }>();
  /** Counts the enqueues as they run, so that a delivery can tell whether a queue's read saw its message. */
  private enqueues = 0;
  /**
   * Publications queued for persistent sessions and not yet delivered live, by their broker counter
   * (a delivery's copy keeps it): their place in `enqueues`, and the sessions they were queued for.
   */
  private readonly enqueued = new Map<number, { at: number; sessions: ReadonlySet<string> }>();
  /** The sessions of all of `enqueued`. */
  private trackedSessions = 0;
  /** The broker counter of each of `enqueued`, by the payload the publication's packets share. */
  private readonly publicationOfPayload = new WeakMap<Buffer, number>();
  /** Each persistent session's connection: whether its queue is being read at CONNECT, and the enqueue its last read came after. */
  private readonly replays = new WeakMap<PersistenceClient, { reading: boolean; readAfter: number }>();
  /** Queued PUBLISHes read back for a client that had been sent them (they had an identifier): sent again, they are duplicates. */
  private readonly resent = new Map<string, Set<number>>();
  private readonly volatileIncoming = new Map<string, Map<number, VolatileIncoming>>();
  /** Bytes of all of volatileIncoming, held in memory. */
  private volatileIncomingBytes = 0;
  private readonly willClients = new Set<string>();
  /** Persistent sessions started, held here whatever they hold (broker_sessions). */
  private readonly startedSessions = new Set<string>();
  private retainedCount = 0;
  /** `$SYS/…` retained messages, in memory only (keepSystemRetained). */
  private readonly systemRetained = new Map<string, Packet>();
  private retainedBytes = 0;

  private readonly pendingWrites = new Map<string, number>();
  private reloadScheduled = false;
  private brokerIdentity: BrokerIdentity | undefined;
  private destroyed = false;

  constructor(options: SqlitePersistenceOptions) {
    for (const name of ['maxQueuedMessages', 'maxRetained'] as const) {
      if (!Number.isInteger(options[name]) || options[name] < 1) throw new RangeError(`${name} must be an integer ≥ 1`);
    }
    this.store = options.store;
    this.maxQueuedMessages = options.maxQueuedMessages;
    this.maxQueuedBytes = options.maxQueuedBytes ?? Infinity;
    this.maxInflightMessages = options.maxInflightMessages ?? 0;
    this.maxRetained = options.maxRetained;
    this.onDrop = options.onDrop;
    this.willOwner = options.willOwner;
    this.maxAwaitingRel = options.maxAwaitingRel ?? Infinity;
    this.maxAwaitingRelBytes = options.maxAwaitingRelBytes ?? Infinity;
    this.maxAwaitingRelBytesInMemory = options.maxAwaitingRelBytesInMemory ?? Infinity;
    this.maxRetainedBytes = options.maxRetainedBytes ?? Infinity;
    this.store.migrate('broker', migrations);
    this.statements = prepareStatements(this.store);
    this.loadMirrors();
  }

  /** The broker given to `setup`; aedes-persistence's abstract suite reads it. */
  get broker(): BrokerIdentity {
    if (this.brokerIdentity === undefined) throw new Error('SqlitePersistence used before setup(broker)');
    return this.brokerIdentity;
  }

  // aedes checks that this is a native async function.
  /** Messages stored for a persistent session: queued while offline or awaiting PUBACK. */
  queuedMessages(clientId: string): number {
    return this.queueLengths.get(clientId) ?? 0;
  }

  /** The client ids of the persistent sessions stored: started, or holding filters, queued messages or QoS 2 ones not released. */
  storedSessionIds(): Set<string> {
    return new Set([...this.startedSessions, ...this.subscriptions.keys(), ...this.queueLengths.keys(), ...this.durableIncoming.keys()]);
  }

  /** Whether the persistent session of `clientId` is stored (see storedSessionIds), or is about to be: a write for it is being committed. */
  holdsSession(clientId: string): boolean {
    return this.startedSessions.has(clientId) || this.subscriptions.has(clientId) || this.queueLengths.has(clientId)
      || this.durableIncoming.has(clientId) || this.pendingWrites.has(clientId);
  }

  /**
   * A CONNECT with CleanSession 0 of `clientId`, admitted: its session is stored from now on, holding
   * anything or not. Answers whether one was stored before (CONNACK's Session Present, MQTT-3.2.2-2).
   * Not awaited by the CONNACK, and its failure (a full disk) ends no connection: a session that
   * holds nothing has nothing to lose, and one that gets anything (a SUBSCRIBE, a message) is stored with it.
   */
  startSession(clientId: string): boolean {
    const stored = this.holdsSession(clientId);
    if (!this.startedSessions.has(clientId)) {
      this.startedSessions.add(clientId);
      // not one of the client's writes (durable): the reads that wait for those would fail with it;
      // failed, the mirrors are loaded again from what is stored
      this.store.commit.run(() => this.statements.insertSession.run(clientId)).catch(() => this.scheduleReload());
    }
    return stored;
  }

  /** Ends the persistent session of `clientId`, whose client is not connected: its filters, queued messages and QoS 2 ones not released. */
  async dropSession(clientId: string): Promise<void> {
    await this.durable([clientId], () => {
      this.forgetSession(clientId);
      this.forgetSubscriptions(clientId);
      this.forgetQueue(clientId);
      this.forgetIncoming(clientId);
    });
  }

  /** Persistent sessions with messages stored, and how many messages in all. */
  queuedTotals(): { sessions: number; messages: number } {
    let messages = 0;
    for (const length of this.queueLengths.values()) messages += length;
    return { sessions: this.queueLengths.size, messages };
  }

  async setup(broker: BrokerIdentity): Promise<void> {
    this.brokerIdentity = broker;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) throw new Error('destroyed called twice!');
    this.destroyed = true;
    // The store outlives the broker; only make sure nothing queued here is lost.
    await this.store.commit.drain();
  }

  // --- retained messages ---------------------------------------------------

  async storeRetained(packet: Packet): Promise<void> {
    const topic = packet.topic;
    if (topic === undefined) throw new TypeError('retained packet without a topic');
    if (topic.startsWith(SYSTEM_PREFIX)) return this.keepSystemRetained(topic, packet);
    // MQTT-3.3.1-10, MQTT-3.3.1-11: an empty retained payload removes the retained message and is not stored.
    if (packet.payload === undefined || packet.payload.length === 0) {
      await this.durable([], () => this.deleteRetained(topic));
      return;
    }
    // Encoded now: aedes goes on using the packet object after this call.
    const row = toColumns(packet);
    // the topic too: up to 64 KiB each, maxRetained of them would be 6 GiB beside the payloads
    const bytes = storedBytes(row);
    const stored = await this.durable([], () => {
      const previous = this.statements.retainedBytes.get(topic);
      if (previous === undefined && this.retainedCount >= this.maxRetained) return false;
      if (this.retainedBytes - (previous ?? 0) + bytes > this.maxRetainedBytes) {
        // the topic's previous message is not its last any more: a subscriber would take it for the current one
        this.deleteRetained(topic);
        return false;
      }
      if (previous === undefined) {
        this.statements.insertRetained.run(row);
        this.retainedCount++;
      } else {
        this.statements.updateRetained.run(row);
      }
      this.retainedBytes += bytes - (previous ?? 0);
      return true;
    });
    if (!stored) this.onDrop?.('retained-limit');
  }

  /**
   * The broker's own figures (`$SYS/broker/…`, published every mqtt.sysIntervalSeconds) are retained
   * in memory only, as Mosquitto keeps them: rewritten every few seconds, on disk they would wear an
   * SD card for figures that mean nothing after a restart. Only the daemon publishes there (topic.ts).
   */
  private keepSystemRetained(topic: string, packet: Packet): void {
    if (packet.payload === undefined || packet.payload.length === 0) this.systemRetained.delete(topic);
    else this.systemRetained.set(topic, { ...packet, payload: Buffer.from(packet.payload) });
  }

  private deleteRetained(topic: string): void {
    const previous = this.statements.retainedBytes.get(topic);
    if (previous === undefined) return;
    this.statements.deleteRetained.run(topic);
    this.retainedCount--;
    this.retainedBytes -= previous;
  }

  /** Retained messages kept on disk (not counting the broker's own `$SYS/…` ones). */
  get retainedMessages(): number {
    return this.retainedCount;
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  createRetainedStreamCombi(patterns: readonly string[]): Readable {
    // aedes asks on every SUBSCRIBE, clean sessions included.
    return Readable.from(this.retainedMatching(patterns));
  }

  private *retainedMatching(patterns: readonly string[]): Generator<Packet> {
    // the broker's own, in memory: filters starting with a wildcard match no `$` topic (MQTT-4.7.2-1)
    const systemFilters = patterns.filter((pattern) => pattern.startsWith(SYSTEM_PREFIX)).map((pattern) => pattern.split('/'));
    if (systemFilters.length > 0) {
      for (const [topic, packet] of this.systemRetained) if (systemFilters.some((filter) => levelsMatch(filter, topic))) yield { ...packet };
    }
    if (this.retainedCount === 0) return;
    const filters = patterns.map((pattern) => pattern.split('/'));
    for (let i = 0; i < filters.length; i++) {
      for (const topic of this.retainedTopicsIn(topicRange(filters[i]))) {
        if (!levelsMatch(filters[i], topic) || this.matchedEarlier(filters, i, topic)) continue;
        const row = this.statements.retainedWithoutPayload.get(topic);
        if (row !== undefined) yield this.retainedOnDemand(row);
      }
    }
  }

  /**
   * A retained message whose payload is read when it is sent. The streams between this generator
   * and the client (aedes pipes it through a transform of its own) read up to 48 ahead for each
   * SUBSCRIBE: with 100 KB payloads, 100 subscribers not reading took RSS to 207 MB. One deleted
   * in between goes with no payload, as its deletion would have reached a live subscriber.
   */
  private retainedOnDemand(row: PacketColumns): Packet {
    const payloadOf = this.statements.retainedPayload;
    const topic = row.topic!;
    return Object.defineProperty(fromColumns(row), 'payload', { enumerable: true, get: () => {
      const payload = payloadOf.get(topic) ?? Buffer.alloc(0);
      collectBufferGarbage(payload.length);
      return payload;
    } });
  }

  /** Whether one of the filters before `index` matched `topic`, which was then already sent once. */
  private matchedEarlier(filters: readonly string[][], index: number, topic: string): boolean {
    for (let i = 0; i < index; i++) if (levelsMatch(filters[i], topic)) return true;
    return false;
  }

  private *retainedTopicsIn(range: TopicRange): Generator<string> {
    yield* range.exact;
    if (range.after === undefined) return;
    for (let after = range.after; ;) {
      const page = range.before === undefined
        ? this.statements.retainedTopicsAfter.all(after, PAGE_SIZE)
        : this.statements.retainedTopicsBetween.all(after, range.before, PAGE_SIZE);
      yield* page;
      if (page.length < PAGE_SIZE) return;
      after = page[page.length - 1];
    }
  }

  // --- subscriptions of persistent sessions --------------------------------

  async addSubscriptions(client: PersistenceClient, subs: readonly Subscription[]): Promise<void> {
    const clientId = client.id;
    // Copied now: aedes rewrites each entry's qos to the granted one after this resolves.
    const requested = subs.map((sub) => ({ sub, topic: sub.topic, record: subscriptionRecord(sub) }));
    await this.durable([clientId], () => {
      // aedes hands every filter of the SUBSCRIBE to each granted one's store: the refused are known
      // by the commit, the whole packet having been authorized in the turn it arrived
      const added = requested.filter(({ sub }) => !wasRefused(sub));
      for (const { topic, record } of added) {
        // MQTT-3.8.4-3: a filter the client already has replaces that subscription.
        this.statements.upsertSubscription.run(
          clientId, topic, record.qos, record.rh ?? null, booleanColumn(record.rap), booleanColumn(record.nl), record.subscriptionIdentifier ?? null);
      }
      for (const { topic, record } of added) this.mirrorSubscription(clientId, topic, record);
    });
  }

  async removeSubscriptions(client: PersistenceClient, topics: readonly string[]): Promise<void> {
    const clientId = client.id;
    if (!this.subscriptions.has(clientId) && !this.pendingWrites.has(clientId)) return;
    const removed = [...topics];
    await this.durable([clientId], () => {
      for (const topic of removed) this.statements.deleteSubscription.run(clientId, topic);
      for (const topic of removed) this.unmirrorSubscription(clientId, topic);
    });
  }

  async cleanSubscriptions(client: PersistenceClient): Promise<void> {
    const clientId = client.id;
    // aedes calls this on every clean-session CONNECT, which ends the session stored (MQTT-3.1.2-6):
    // its messages queued too, which aedes otherwise cleared one by one as it sent them, so that a
    // persistent CONNECT right after found the session (Session Present 1) with those not cleared yet
    if (!this.subscriptions.has(clientId) && !this.startedSessions.has(clientId) && !this.pendingWrites.has(clientId) && !this.queueLengths.has(clientId)) return;
    await this.durable([clientId], () => {
      this.forgetSession(clientId);
      this.forgetSubscriptions(clientId);
      this.forgetQueue(clientId);
    });
  }

  /** Deletes the messages queued for the client (inside a durable write). */
  private forgetQueue(clientId: string): void {
    this.statements.deleteClientOutgoing.run(clientId);
    this.queueLengths.delete(clientId);
    this.queueBytes.delete(clientId);
    this.resent.delete(clientId);
  }

  /** Deletes the record of the client's session, stored and mirrored (inside a durable write). */
  private forgetSession(clientId: string): void {
    this.statements.deleteSession.run(clientId);
    this.startedSessions.delete(clientId);
  }

  /** Deletes the client's filters, stored and mirrored (inside a durable write). */
  private forgetSubscriptions(clientId: string): void {
    this.statements.deleteClientSubscriptions.run(clientId);
    for (const topic of [...(this.subscriptions.get(clientId)?.keys() ?? [])]) this.unmirrorSubscription(clientId, topic);
  }

  async subscriptionsByClient(client: PersistenceClient): Promise<Subscription[]> {
    await this.settled(client.id);
    const stored = this.subscriptions.get(client.id);
    return stored === undefined ? [] : [...stored].map(([topic, record]) => ({ topic, ...record }));
  }

  async subscriptionsByTopic(topic: string): Promise<TopicSubscription[]> {
    // Called for every QoS 1/2 publish: skip the match while no persistent session subscribes at QoS > 0.
    if (this.trie.subscriptionsCount === 0) return [];
    const matches = this.trie.match(topic);
    // MQTT-4.7.2-1: a filter starting with a wildcard matches no `$` topic. authorizeForward would
    // drop such a message when it is sent, but queued it took the room of others: a PUBLISH refused
    // by the policy is one (retargeted to $outpost/dropped), and pushed real messages out of the
    // queue of every offline session subscribed to `#`.
    if (topic.charCodeAt(0) !== 36 /* $ */) return matches;
    return matches.filter((subscription) => !wildcardSkipsTopic(subscription.topic, topic));
  }

  private trackPublication(publication: Pick<Packet, 'brokerCounter' | 'payload'>, sessions: ReadonlySet<string>): void {
    if (publication.brokerCounter === undefined || sessions.size === 0) return;
    this.enqueued.set(publication.brokerCounter, { at: ++this.enqueues, sessions });
    this.trackedSessions += sessions.size;
    if (Buffer.isBuffer(publication.payload)) this.publicationOfPayload.set(publication.payload, publication.brokerCounter);
    while (this.trackedSessions > MAX_TRACKED_SESSIONS && this.enqueued.size > 1) this.forget(this.enqueued.keys().next().value!);
  }

  /** The publication of `payload` was delivered to its live subscribers (aedes' `published`): queueDelivery is asked no more of it. */
  forgetPublication(payload: unknown): void {
    const brokerCounter = Buffer.isBuffer(payload) ? this.publicationOfPayload.get(payload) : undefined;
    if (brokerCounter !== undefined) this.forget(brokerCounter);
  }

  private forget(brokerCounter: number): void {
    const entry = this.enqueued.get(brokerCounter);
    if (entry === undefined) return;
    this.enqueued.delete(brokerCounter);
    this.trackedSessions -= entry.sessions.size;
  }

  /** Whether a persistent session subscribes at QoS > 0 to a filter matching `topic`. */
  storesFilter(clientId: string, filter: string): boolean {
    return this.subscriptions.get(clientId)?.has(filter) ?? false;
  }

  /** Whether the queued PUBLISH `messageId` read back for `clientId` had been sent before; forgotten once asked. */
  takeResent(clientId: string, messageId: number): boolean {
    const ids = this.resent.get(clientId);
    if (!ids?.delete(messageId)) return false;
    if (ids.size === 0) this.resent.delete(clientId);
    return true;
  }

  private noteResent(clientId: string, messageId: number): void {
    let ids = this.resent.get(clientId);
    if (ids === undefined) this.resent.set(clientId, ids = new Set());
    ids.add(messageId);
  }

  hasSubscriptionFor(topic: string): boolean {
    return this.trie.subscriptionsCount > 0 && this.trie.match(topic).length > 0;
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.trie.subscriptionsCount, clientsCount: this.subscriptions.size };
  }

  getClientList(topic: string): Readable {
    return Readable.from(this.clientsSubscribedTo(topic));
  }

  private *clientsSubscribedTo(topic: string): Generator<string> {
    for (const [clientId, stored] of this.subscriptions) if (stored.has(topic)) yield clientId;
  }

  /** Only QoS > 0 subscriptions are in the trie: a QoS 0 one gets nothing queued, but is restored on reconnect. */
  private mirrorSubscription(clientId: string, topic: string, record: SubscriptionRecord): void {
    let stored = this.subscriptions.get(clientId);
    if (stored === undefined) this.subscriptions.set(clientId, stored = new Map());
    const previous = stored.get(topic);
    if (record.qos > 0) {
      this.trie.add(topic, { clientId, topic, qos: record.qos, rh: record.rh, rap: record.rap, nl: record.nl });
    } else if (previous !== undefined && previous.qos > 0) {
      this.trie.remove(topic, { clientId, topic });
    }
    if (previous === undefined) this.storedFilters++;
    stored.set(topic, record);
  }

  private unmirrorSubscription(clientId: string, topic: string): void {
    const stored = this.subscriptions.get(clientId);
    const previous = stored?.get(topic);
    if (stored === undefined || previous === undefined) return;
    if (previous.qos > 0) this.trie.remove(topic, { clientId, topic });
    stored.delete(topic);
    this.storedFilters--;
    if (stored.size === 0) this.subscriptions.delete(clientId);
  }

  // --- outgoing queues of persistent sessions ------------------------------

  async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  /**
   * Queues a publication for the persistent sessions subscribed to it, before aedes delivers it live.
   * A persistent session's QoS 2 PUBLISH is recorded as published in the same commit: recorded after
   * its live deliveries, a kill -9 in between had it published again when its sender sent it again
   * after the restart, a second copy to every subscriber (MQTT-4.3.3-2).
   */
  async outgoingEnqueueCombi(subs: readonly { clientId: string }[], packet: Packet): Promise<void> {
    const incoming = Buffer.isBuffer(packet.payload) ? this.incomingToPublish.get(packet.payload) : undefined;
    // No persistent session subscribed and no stored PUBLISH of one: the publish stays off SQLite.
    if (subs.length === 0 && incoming === undefined) return;
    // One copy per client even when several of its filters match: aedes
    // delivers it once (it dedupes by brokerId/brokerCounter), so a second
    // copy would never be acknowledged and would be redelivered after a restart.
    const sessions = new Set(subs.map((sub) => sub.clientId));
    // MQTT-3.3.1-9: it matched a filter the session held, so it is no retained message to the
    // subscriber however it was published
    await this.enqueue([...sessions], { ...toAedesPacketColumns(packet, undefined), retain: 0 }, { packet, sessions }, incoming);
  }

  /**
   * What the queue of `client`'s connection does with `packet`, a live delivery of a publication.
   * At CONNECT aedes restores the session's filters before it reads the queue, and every
   * publication is queued for the session before it is delivered live: one delivered live while the
   * queue was read, or whose queuing the read saw, went twice (a QoS 2 duplicate, MQTT-4.3.3-1,
   * sometimes under a second packet identifier). So the session's queued publications go from the
   * queue until its read has caught up (`sends`), the later ones live (`after`); `none`: not queued
   * for the session. Skipped live, a publication stays queued (aedes clears nothing of a delivery
   * without an identifier).
   */
  queueDelivery(client: PersistenceClient, packet: Pick<Packet, 'brokerCounter'>): 'sends' | 'after' | 'none' {
    const queued = packet.brokerCounter === undefined ? undefined : this.enqueued.get(packet.brokerCounter);
    if (queued === undefined || client.clean !== false || !queued.sessions.has(client.id)) return 'none';
    // no replay yet: the queue is read later in this CONNECT (aedes reads it last)
    const replay = this.replays.get(client);
    return replay === undefined || replay.reading || queued.at <= replay.readAfter ? 'sends' : 'after';
  }

  /**
   * Queues a retained message sent to a persistent session on its SUBSCRIBE, with the identifier
   * it is sent with: aedes keeps no such message in flight, so one not acknowledged would never be
   * sent again (MQTT-4.4.0-1). It stays retained when sent again (MQTT-3.3.1-8).
   */
  async outgoingEnqueueSentRetained(clientId: string, packet: Packet & { messageId: number }): Promise<void> {
    await this.enqueue([clientId], toAedesPacketColumns(packet, packet.messageId));
  }

  private async enqueue(clientIds: readonly string[], columns: PacketColumns,
    publication?: { packet: Pick<Packet, 'brokerCounter' | 'payload'>; sessions: ReadonlySet<string> }, incoming?: { clientId: string; messageId: number }): Promise<void> {
    const row = { client_id: '', ...columns };
    const bytes = storedBytes(row);
    const drops = await this.durable(incoming === undefined ? clientIds : [...clientIds, incoming.clientId], () => {
      const dropped: Array<{ clientId: string; count: number }> = [];
      if (incoming !== undefined && this.durableIncoming.get(incoming.clientId)?.has(incoming.messageId)) {
        this.statements.markIncomingPublished.run(incoming.clientId, incoming.messageId);
      }
      if (publication !== undefined) this.trackPublication(publication.packet, publication.sessions);
      for (const clientId of clientIds) {
        const heldBytes = this.queueBytes.get(clientId) ?? 0;
        const length = this.queueLengths.get(clientId) ?? 0;
        const inFlight = length + 1 > this.maxQueuedMessages || heldBytes + bytes > this.maxQueuedBytes
          ? this.statements.inFlightOutgoing.get(clientId, this.maxInflightMessages)!
          : { count: 0, bytes: 0 };
        // As Mosquitto's max_queued_bytes: the message that does not fit is dropped, the queue kept.
        if (heldBytes - inFlight.bytes + bytes > this.maxQueuedBytes) {
          dropped.push({ clientId, count: 1 });
          continue;
        }
        // Usually one; more if maxQueuedMessages was lowered since the queue filled.
        const excess = length - inFlight.count + 1 - this.maxQueuedMessages;
        const freed = excess > 0 ? this.statements.deleteOldestQueued.all({ clientId, inFlight: this.maxInflightMessages, excess }) : [];
        row.client_id = clientId;
        this.statements.insertOutgoing.run(row);
        this.queueLengths.set(clientId, length - freed.length + 1);
        this.queueBytes.set(clientId, heldBytes - freed.reduce((sum, freedBytes) => sum + freedBytes, 0) + bytes);
        if (freed.length > 0) dropped.push({ clientId, count: freed.length });
      }
      return dropped;
    });
    for (const { clientId, count } of drops) {
      for (let i = 0; i < count; i++) this.onDrop?.('queue-full', clientId);
    }
  }

  /**
   * Records the packet identifier aedes assigned to a queued PUBLISH (matched
   * by brokerId and brokerCounter), or replaces the queued packet having that
   * identifier — the PUBLISH by its PUBREL once PUBREC came back. Both must be
   * durable: after a restart the same identifiers are resent (MQTT-4.4.0-1).
   *
   * Unlike the reference persistence, a packet that is no longer queued is not
   * an error: the queue bound may have dropped it, and aedes answers a rejection
   * by disconnecting the client, whereas the packet can still be delivered.
   */
  async outgoingUpdate(client: PersistenceClient, packet: Packet): Promise<void> {
    const clientId = client.id;
    if (!this.mayHaveQueue(clientId)) return;
    const { brokerId, brokerCounter = 0, messageId } = packet;
    if (messageId === undefined) return;
    const isPublish = (packet.cmd ?? 'publish') === 'publish';
    const replacement = { id: 0, ...(isPublish ? toAedesPacketColumns(packet, messageId) : toColumns(packet)) };
    await this.durable([clientId], () => {
      if (brokerId !== undefined && brokerId !== null
        && this.statements.assignMessageId.run(messageId, clientId, brokerId, brokerCounter).changes > 0) return;
      const target = this.statements.replaceableOutgoing.get({ clientId, messageId, brokerId: brokerId ?? null });
      if (target === undefined) return;
      replacement.id = target.id;
      this.statements.replaceOutgoing.run(replacement);
      this.queueBytes.set(clientId, (this.queueBytes.get(clientId) ?? 0) - target.bytes + storedBytes(replacement));
    });
  }

  /**
   * Removes and returns the first queued packet with the packet's identifier
   * (PUBACK, PUBCOMP). aedes also calls this with packets that have no
   * identifier yet, for a delivery it skipped — including the second match of
   * a message it already delivered through another subscription, whose queued
   * copy must stay until acknowledged — so those remove nothing.
   */
  async outgoingClearMessageId(client: PersistenceClient, packet: Packet): Promise<Packet | undefined> {
    const clientId = client.id;
    // aedes calls this for every PUBACK, clean sessions included. Its
    // identifiers are only assigned to packets whose enqueue and update have
    // committed, so a client without committed queue rows has nothing to clear.
    if (!this.queueLengths.has(clientId)) return undefined;
    const messageId = packet.messageId;
    if (messageId === undefined || messageId === null) return undefined;
    return this.durable([clientId], () => {
      const row = this.statements.deleteOutgoingByMessageId.get(clientId, messageId);
      if (row === undefined) return undefined;
      this.shortenQueue(clientId, storedBytes(row));
      return outgoingFromRow(row);
    });
  }

  /** The packet identifiers of the client's queued packets sent and not acknowledged yet (skipIdentifiersInFlight). */
  inFlightIds(clientId: string): number[] {
    return this.mayHaveQueue(clientId) ? this.statements.inFlightIds.all(clientId) : [];
  }

  /**
   * The client's queued packets in enqueue order, read page by page until a read finds the queue's
   * end: what is queued meanwhile comes from here too, not live (queueDelivery).
   */
  outgoingStream(client: PersistenceClient): Readable {
    // aedes asks on every CONNECT, clean sessions included.
    if (!this.mayHaveQueue(client.id)) {
      this.replays.set(client, { reading: false, readAfter: this.enqueues });
      return Readable.from([]);
    }
    const replay = { reading: true, readAfter: 0 };
    this.replays.set(client, replay);
    return Readable.from(this.queuedPackets(client.id, replay));
  }

  private async *queuedPackets(clientId: string, replay: { reading: boolean; readAfter: number }): AsyncGenerator<Packet> {
    await this.settled(clientId);
    for (let after = 0; ;) {
      const page = this.statements.outgoingPage.all(clientId, after, PAGE_SIZE);
      if (page.length < PAGE_SIZE) {
        replay.reading = false;
        replay.readAfter = this.enqueues;
      }
      for (const row of page) {
        if (row.message_id !== null && row.cmd === 'publish') this.noteResent(clientId, row.message_id);
        yield outgoingFromRow(row);
      }
      if (page.length < PAGE_SIZE) return;
      after = page[page.length - 1].id;
    }
  }

  private mayHaveQueue(clientId: string): boolean {
    return this.queueLengths.has(clientId) || this.pendingWrites.has(clientId);
  }

  private shortenQueue(clientId: string, bytes: number): void {
    const length = (this.queueLengths.get(clientId) ?? 1) - 1;
    if (length > 0) {
      this.queueLengths.set(clientId, length);
      this.queueBytes.set(clientId, (this.queueBytes.get(clientId) ?? bytes) - bytes);
    } else {
      this.queueLengths.delete(clientId);
      this.queueBytes.delete(clientId);
    }
  }

  // --- incoming QoS 2 packets ----------------------------------------------

  async incomingStorePacket(client: PersistenceClient, packet: Packet): Promise<void> {
    const clientId = client.id;
    const messageId = packet.messageId;
    if (messageId === undefined) throw new TypeError('incoming packet without a messageId');
    const row = toAedesPacketColumns(packet, messageId);
    const bytes = storedBytes(row);
    if (client.clean === true) {
      const held = this.volatileIncoming.get(clientId);
      const replaced = held?.get(messageId)?.bytes ?? 0;
      this.refuseBeyondAwaitingRel(clientId, messageId, bytes, held === undefined ? [] : [...held].map(([id, entry]) => [id, entry.bytes]));
      // each is held in memory until its PUBREL: maxConnections × maxAwaitingRelBytes would be more than a board has
      if (this.volatileIncomingBytes - replaced + bytes > this.maxAwaitingRelBytesInMemory) {
        throw new AwaitingRelLimitError(`QoS 2 PUBLISHes of clean sessions awaiting their PUBREL hold ${this.volatileIncomingBytes} bytes; ${bytes} more are beyond mqtt.maxAwaitingRelBytesInMemory`);
      }
      // MQTT-3.1.2-6: a clean session ends with its connection, so its QoS 2 state need not outlive the process.
      let stored = held;
      if (stored === undefined) this.volatileIncoming.set(clientId, stored = new Map());
      stored.set(messageId, { row, bytes });
      this.volatileIncomingBytes += bytes - replaced;
      return;
    }
    const beingStored = this.incomingBeingStored.get(clientId) ?? 0;
    this.refuseBeyondAwaitingRel(clientId, messageId, bytes, this.durableIncoming.get(clientId) ?? [], beingStored);
    this.incomingBeingStored.set(clientId, beingStored + bytes);
    const keyed = { client_id: clientId, ...row };
    try {
      await this.durable([clientId], () => {
        this.statements.upsertIncoming.run(keyed);
        let held = this.durableIncoming.get(clientId);
        if (held === undefined) this.durableIncoming.set(clientId, held = new Map());
        held.set(messageId, bytes);
        let thisRun = this.incomingThisRun.get(clientId);
        if (thisRun === undefined) this.incomingThisRun.set(clientId, thisRun = new Set());
        thisRun.add(messageId);
      });
      // aedes publishes it next (outgoingEnqueueCombi)
      if (Buffer.isBuffer(packet.payload)) this.incomingToPublish.set(packet.payload, { clientId, messageId });
    } finally {
      const left = (this.incomingBeingStored.get(clientId) ?? bytes) - bytes;
      if (left > 0) this.incomingBeingStored.set(clientId, left);
      else this.incomingBeingStored.delete(clientId);
    }
  }

  /**
   * Refuses a QoS 2 PUBLISH its session cannot hold until its PUBREL. aedes bounds one connection's
   * count; this, a persistent session's across its connections, each of which could leave its own
   * unreleased, and the bytes: 100 of maxPacketSize are 25 MiB. A lone PUBLISH always fits, so that
   * no bound refuses one of maxPacketSize outright.
   */
  private refuseBeyondAwaitingRel(clientId: string, messageId: number, bytes: number, held: Iterable<[number, number]>, beingStored = 0): void {
    let others = 0;
    let heldBytes = beingStored;
    for (const [id, size] of held) {
      if (id === messageId) continue;
      others++;
      heldBytes += size;
    }
    if (others >= this.maxAwaitingRel) {
      throw new AwaitingRelLimitError(`${others} QoS 2 PUBLISHes of client ${clientId} already await their PUBREL (mqtt.maxAwaitingRel)`);
    }
    if ((others > 0 || beingStored > 0) && heldBytes + bytes > this.maxAwaitingRelBytes) {
      throw new AwaitingRelLimitError(`QoS 2 PUBLISHes of client ${clientId} awaiting their PUBREL hold ${heldBytes} bytes; ${bytes} more are beyond mqtt.maxAwaitingRelBytes`);
    }
  }

  async incomingGetPacket(client: PersistenceClient, packet: Packet): Promise<Packet> {
    const clientId = client.id;
    const messageId = packet.messageId;
    const volatile = messageId === undefined ? undefined : this.volatileIncoming.get(clientId)?.get(messageId);
    if (volatile !== undefined) return aedesPacketFromColumns(volatile.row);
    // aedes handles a socket read's packets concurrently: a retransmission may
    // ask before the first copy's store has committed.
    await this.settled(clientId);
    // a PUBREL asks for the stored packet; a PUBLISH sent again, whether it was published
    if (messageId !== undefined && this.durableIncoming.get(clientId)?.has(messageId)) {
      const row = this.statements.incomingByMessageId.get(clientId, messageId);
      if (row !== undefined && (packet.cmd !== 'publish' || this.incomingThisRun.get(clientId)?.has(messageId) || row.published === 1)) return aedesPacketFromColumns(row);
    }
    throw noSuchPacket();
  }

  async incomingDelPacket(client: PersistenceClient, packet: Packet): Promise<void> {
    const clientId = client.id;
    const messageId = packet.messageId;
    if (messageId === undefined) throw noSuchPacket();
    const volatile = this.volatileIncoming.get(clientId);
    const released = volatile?.get(messageId);
    if (released !== undefined) {
      volatile!.delete(messageId);
      this.volatileIncomingBytes -= released.bytes;
      if (volatile!.size === 0) this.volatileIncoming.delete(clientId);
      return;
    }
    if (!this.durableIncoming.get(clientId)?.has(messageId) && !this.pendingWrites.has(clientId)) throw noSuchPacket();
    const deleted = await this.durable([clientId], () => {
      if (this.statements.deleteIncoming.run(clientId, messageId).changes === 0) return false;
      for (const tracked of [this.durableIncoming, this.incomingThisRun]) {
        const stored = tracked.get(clientId);
        stored?.delete(messageId);
        if (stored?.size === 0) tracked.delete(clientId);
      }
      return true;
    });
    if (!deleted) throw noSuchPacket();
  }

  /** MQTT-3.1.2-6: aedes discards a clean session's QoS 2 dedup state on CONNECT and on disconnect. */
  async cleanIncoming(client: PersistenceClient): Promise<void> {
    const clientId = client.id;
    for (const { bytes } of this.volatileIncoming.get(clientId)?.values() ?? []) this.volatileIncomingBytes -= bytes;
    this.volatileIncoming.delete(clientId);
    if (!this.durableIncoming.has(clientId) && !this.pendingWrites.has(clientId)) return;
    await this.durable([clientId], () => this.forgetIncoming(clientId));
  }

  /** Deletes the client's stored QoS 2 PUBLISHes awaiting their PUBREL (inside a durable write). */
  private forgetIncoming(clientId: string): void {
    this.statements.deleteClientIncoming.run(clientId);
    this.durableIncoming.delete(clientId);
    this.incomingThisRun.delete(clientId);
  }

  // --- wills ---------------------------------------------------------------

  /**
   * Stored so that a will survives a crash: after a restart aedes publishes the
   * wills of brokers that no longer send heartbeats. Like the reference
   * persistence (and as its abstract suite expects) this stamps the packet
   * itself with brokerId and clientId.
   */
  async putWill(client: PersistenceClient, packet: Packet): Promise<void> {
    const clientId = client.id;
    packet.brokerId = this.broker.id;
    packet.clientId = clientId;
    const row = { client_id: clientId, thing: this.willThing(client), ...toColumns(packet, 'clientId') };
    await this.durable([clientId], () => {
      this.statements.upsertWill.run(row);
      this.willClients.add(clientId);
    });
  }

  /** '' for an anonymous client: a NULL thing is a will stored before it was recorded (or without willOwner). */
  private willThing(client: PersistenceClient): string | null {
    if (this.willOwner === undefined) return null;
    return this.willOwner(client) ?? '';
  }

  async getWill(client: PersistenceClient): Promise<Packet | undefined> {
    await this.settled(client.id);
    if (!this.willClients.has(client.id)) return undefined;
    const row = this.statements.willByClient.get(client.id);
    return row === undefined ? undefined : willFromRow(row);
  }

  async delWill(client: PersistenceClient): Promise<Packet | undefined> {
    const clientId = client.id;
    // aedes calls this on every CONNECT.
    if (!this.willClients.has(clientId) && !this.pendingWrites.has(clientId)) return undefined;
    return this.durable([clientId], () => {
      const row = this.statements.deleteWill.get(clientId);
      this.willClients.delete(clientId);
      return row === undefined ? undefined : willFromRow(row);
    });
  }

  /** The wills of every broker not in `brokers` (aedes passes the ones it heard a heartbeat from). */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    if (this.willClients.size === 0) return Readable.from([]);
    const rows = this.statements.willsOfOtherBrokers.all(JSON.stringify(Object.keys(brokers)));
    return Readable.from(rows.map(willFromRow));
  }

  // --- durability machinery ------------------------------------------------

  /**
   * Queues `write` into the store's group commit on behalf of `clientIds`; it
   * resolves once committed. `write` updates rows and then their mirrors.
   */
  private durable<T>(clientIds: readonly string[], write: () => T): Promise<T> {
    for (const clientId of clientIds) this.pendingWrites.set(clientId, (this.pendingWrites.get(clientId) ?? 0) + 1);
    return this.store.commit.run(write).then(
      (result) => {
        this.settle(clientIds);
        return result;
      },
      (error: unknown) => {
        this.settle(clientIds);
        this.scheduleReload();
        throw error;
      },
    );
  }

  private settle(clientIds: readonly string[]): void {
    for (const clientId of clientIds) {
      const count = (this.pendingWrites.get(clientId) ?? 1) - 1;
      if (count > 0) this.pendingWrites.set(clientId, count);
      else this.pendingWrites.delete(clientId);
    }
  }

  /** Resolves once the client's queued writes are committed; a read after it sees them. */
  private async settled(clientId: string): Promise<void> {
    // A write queued now joins the same batch, after the client's writes.
    if (this.pendingWrites.has(clientId)) await this.store.commit.run(() => undefined);
  }

  /**
   * A failed batch rejects all its writes at once: reload once, after all of
   * them, from what the failed transaction (or savepoint) left on disk. No
   * other batch can run in between — batches run from setImmediate.
   */
  private scheduleReload(): void {
    if (this.reloadScheduled) return;
    this.reloadScheduled = true;
    queueMicrotask(() => {
      this.reloadScheduled = false;
      this.loadMirrors();
    });
  }

  private loadMirrors(): void {
    const s = this.statements;
    this.subscriptions.clear();
    this.trie.clear();
    this.storedFilters = 0;
    for (const row of s.allSubscriptions.iterate()) {
      this.mirrorSubscription(row.client_id, row.topic, {
        qos: row.qos,
        rh: row.retain_handling ?? undefined,
        rap: row.retain_as_published === null ? undefined : row.retain_as_published === 1,
        nl: row.no_local === null ? undefined : row.no_local === 1,
        ...(row.subscription_identifier === null ? {} : { subscriptionIdentifier: row.subscription_identifier }),
      });
    }
    this.queueLengths.clear();
    this.queueBytes.clear();
    for (const row of s.queueLengths.iterate()) {
      this.queueLengths.set(row.client_id, row.length);
      this.queueBytes.set(row.client_id, row.bytes);
    }
    this.durableIncoming.clear();
    this.incomingThisRun.clear();
    for (const row of s.allIncomingKeys.iterate()) {
      let stored = this.durableIncoming.get(row.client_id);
      if (stored === undefined) this.durableIncoming.set(row.client_id, stored = new Map());
      stored.set(row.message_id, row.bytes);
    }
    this.willClients.clear();
    for (const clientId of s.allWillClients.iterate()) this.willClients.add(clientId);
    this.startedSessions.clear();
    for (const clientId of s.allSessions.iterate()) this.startedSessions.add(clientId);
    this.retainedCount = s.countRetained.get() ?? 0;
    this.retainedBytes = s.retainedBytesTotal.get() ?? 0;
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(store: Store) {
  const db = store.db;
  return {
    // retained messages
    countRetained: db.prepare<[], number>('SELECT COUNT(*) FROM broker_retained_messages').pluck(),
    retainedBytesTotal: db.prepare<[], number>(`SELECT COALESCE(SUM(${STORED_BYTES}), 0) FROM broker_retained_messages`).pluck(),
    retainedBytes: db.prepare<[string], number>(`SELECT ${STORED_BYTES} FROM broker_retained_messages WHERE topic = ?`).pluck(),
    retainedWithoutPayload: db.prepare<[string], PacketColumns>(
      `SELECT ${PACKET_COLUMNS.replace('payload', 'NULL AS payload')} FROM broker_retained_messages WHERE topic = ?`),
    retainedPayload: db.prepare<[string], Buffer>('SELECT payload FROM broker_retained_messages WHERE topic = ?').pluck(),
    retainedTopicsBetween: db.prepare<[string, string, number], string>(
      'SELECT topic FROM broker_retained_messages WHERE topic > ? AND topic < ? ORDER BY topic LIMIT ?').pluck(),
    retainedTopicsAfter: db.prepare<[string, number], string>(
      'SELECT topic FROM broker_retained_messages WHERE topic > ? ORDER BY topic LIMIT ?').pluck(),
    updateRetained: db.prepare<PacketColumns>(`UPDATE broker_retained_messages SET ${PACKET_ASSIGNMENTS} WHERE topic = @topic`),
    insertRetained: db.prepare<PacketColumns>(`INSERT INTO broker_retained_messages (${PACKET_COLUMNS}) VALUES (${PACKET_VALUES})`),
    deleteRetained: db.prepare<[string]>('DELETE FROM broker_retained_messages WHERE topic = ?'),

    // subscriptions
    allSubscriptions: db.prepare<[], SubscriptionRow>('SELECT * FROM broker_subscriptions'),
    upsertSubscription: db.prepare<[string, string, number, number | null, number | null, number | null, number | null]>(
      `INSERT OR REPLACE INTO broker_subscriptions
         (client_id, topic, qos, retain_handling, retain_as_published, no_local, subscription_identifier)
       VALUES (?, ?, ?, ?, ?, ?, ?)`),
    deleteSubscription: db.prepare<[string, string]>('DELETE FROM broker_subscriptions WHERE client_id = ? AND topic = ?'),
    deleteClientSubscriptions: db.prepare<[string]>('DELETE FROM broker_subscriptions WHERE client_id = ?'),

    // sessions started
    allSessions: db.prepare<[], string>('SELECT client_id FROM broker_sessions').pluck(),
    insertSession: db.prepare<[string]>('INSERT OR IGNORE INTO broker_sessions (client_id) VALUES (?)'),
    deleteSession: db.prepare<[string]>('DELETE FROM broker_sessions WHERE client_id = ?'),

    // outgoing queues
    queueLengths: db.prepare<[], { client_id: string; length: number; bytes: number }>(
      `SELECT client_id, COUNT(*) AS length, SUM(${STORED_BYTES}) AS bytes FROM broker_outgoing_packets GROUP BY client_id`),
    insertOutgoing: db.prepare<PacketColumns & { client_id: string }>(
      `INSERT INTO broker_outgoing_packets (client_id, ${PACKET_COLUMNS}) VALUES (@client_id, ${PACKET_VALUES})`),
    // In flight, as Mosquitto's max_inflight_messages: the first `limit` packets sent (they have an
    // identifier) and not acknowledged. aedes sends all it can at once, so those beyond are queued.
    // They are found through the index that has the identifier: left to itself SQLite walks the
    // client's index for the order and reads every queued row to test message_id, 0.2 ms for a
    // full offline queue, paid for every session a message is queued for past its bound.
    inFlightOutgoing: db.prepare<[string, number], { count: number; bytes: number }>(
      `SELECT COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM
         (SELECT ${STORED_BYTES} AS bytes FROM broker_outgoing_packets INDEXED BY broker_outgoing_packets_by_message_id
            WHERE client_id = ? AND message_id IS NOT NULL ORDER BY id LIMIT ?)`),
    deleteOldestQueued: db.prepare<{ clientId: string; inFlight: number; excess: number }, number>(
      `DELETE FROM broker_outgoing_packets WHERE id IN
         (SELECT id FROM broker_outgoing_packets WHERE client_id = @clientId AND id NOT IN
            (SELECT id FROM broker_outgoing_packets INDEXED BY broker_outgoing_packets_by_message_id
               WHERE client_id = @clientId AND message_id IS NOT NULL ORDER BY id LIMIT @inFlight)
          ORDER BY id LIMIT @excess)
       RETURNING ${STORED_BYTES}`).pluck(),
    assignMessageId: db.prepare<[number, string, string, number]>(
      `UPDATE broker_outgoing_packets SET message_id = ? WHERE id =
         (SELECT id FROM broker_outgoing_packets WHERE client_id = ? AND broker_id = ? AND broker_counter = ? ORDER BY id LIMIT 1)`),
    // Another broker's packet with this identifier, or any when the update has
    // no brokerId (a PUBREL): a packet of the same broker with another counter
    // is an older user of a wrapped-around identifier, not this one.
    replaceableOutgoing: db.prepare<{ clientId: string; messageId: number; brokerId: string | null }, { id: number; bytes: number }>(
      `SELECT id, ${STORED_BYTES} AS bytes FROM broker_outgoing_packets
       WHERE client_id = @clientId AND message_id = @messageId AND (@brokerId IS NULL OR broker_id IS NOT @brokerId)
       ORDER BY id LIMIT 1`),
    replaceOutgoing: db.prepare<PacketColumns & { id: number }>(`UPDATE broker_outgoing_packets SET ${PACKET_ASSIGNMENTS} WHERE id = @id`),
    deleteOutgoingByMessageId: db.prepare<[string, number], OutgoingRow>(
      `DELETE FROM broker_outgoing_packets WHERE id =
         (SELECT id FROM broker_outgoing_packets WHERE client_id = ? AND message_id = ? ORDER BY id LIMIT 1)
       RETURNING *`),
    deleteClientOutgoing: db.prepare<[string]>('DELETE FROM broker_outgoing_packets WHERE client_id = ?'),
    inFlightIds: db.prepare<[string], number>(
      'SELECT message_id FROM broker_outgoing_packets INDEXED BY broker_outgoing_packets_by_message_id WHERE client_id = ? AND message_id IS NOT NULL').pluck(),
    outgoingPage: db.prepare<[string, number, number], OutgoingRow>(
      'SELECT * FROM broker_outgoing_packets WHERE client_id = ? AND id > ? ORDER BY id LIMIT ?'),

    // incoming QoS 2 packets
    allIncomingKeys: db.prepare<[], { client_id: string; message_id: number; bytes: number }>(`SELECT client_id, message_id, ${STORED_BYTES} AS bytes FROM broker_incoming_packets`),
    upsertIncoming: db.prepare<PacketColumns & { client_id: string }>(
      `INSERT OR REPLACE INTO broker_incoming_packets (client_id, ${PACKET_COLUMNS}) VALUES (@client_id, ${PACKET_VALUES})`),
    incomingByMessageId: db.prepare<[string, number], PacketColumns & { published: number }>(
      `SELECT ${PACKET_COLUMNS}, published FROM broker_incoming_packets WHERE client_id = ? AND message_id = ?`),
    markIncomingPublished: db.prepare<[string, number]>('UPDATE broker_incoming_packets SET published = 1 WHERE client_id = ? AND message_id = ?'),
    deleteIncoming: db.prepare<[string, number]>('DELETE FROM broker_incoming_packets WHERE client_id = ? AND message_id = ?'),
    deleteClientIncoming: db.prepare<[string]>('DELETE FROM broker_incoming_packets WHERE client_id = ?'),

    // wills
    allWillClients: db.prepare<[], string>('SELECT client_id FROM broker_wills').pluck(),
    upsertWill: db.prepare<PacketColumns & { client_id: string; thing: string | null }>(
      `INSERT OR REPLACE INTO broker_wills (client_id, thing, ${PACKET_COLUMNS}) VALUES (@client_id, @thing, ${PACKET_VALUES})`),
    willByClient: db.prepare<[string], WillRow>('SELECT * FROM broker_wills WHERE client_id = ?'),
    deleteWill: db.prepare<[string], WillRow>('DELETE FROM broker_wills WHERE client_id = ? RETURNING *'),
    willsOfOtherBrokers: db.prepare<[string], WillRow>(
      `SELECT * FROM broker_wills
       WHERE broker_id IS NULL OR broker_id NOT IN (SELECT value FROM json_each(?))
       ORDER BY client_id`),
  };
}
