import type { Logger } from 'pino';
import type { CloudClient } from './cloud-client.js';
import type { CloudLimits } from './cloud-link.js';
import type { GroupCommit } from '../store/group-commit.js';
import type { Outbox, OutboxItem, Removed } from './outbox.js';
import type { RuleActivity } from './activity.js';
import { hasUnsafeCharacter } from '../broker/topic.js';

export type Lane = 'live' | 'backlog';
const PRIORITIES_HIGH_FIRST = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
/** Rows read from the outbox at a time per lane: what the sender holds in memory besides the in-flight window. */
const READ_BATCH = 256;
/** ...and at most this many bytes of payload, as a lane holds what it read until it has sent it. */
const READ_BATCH_BYTES = 1024 * 1024;
/**
 * Acknowledged items are deleted in one transaction per this many milliseconds (or per
 * ACK_FLUSH_ITEMS): one fsync for thousands of PUBACKs. Until then they are skipped if read again,
 * and a crash in between only sends them once more (a duplicate the id reveals).
 */
const ACK_FLUSH_MS = 20;
const ACK_FLUSH_ITEMS = 4096;
/**
 * MQTT 3.1.1 has no negative PUBACK: a cloud that refuses a publish (AWS IoT Core: not authorised,
 * too large) closes the connection, and so does a cloud that restarts, or whose session another
 * gateway with the same client id takes over, whatever is in flight. So a close by the cloud with
 * items unacknowledged only makes the oldest of them the suspect: on the next connection it goes
 * alone, once that connection has held twice as long as the last one did (bounded by these), and
 * only a close by the cloud within REFUSAL_WINDOW_MS of it counts against it.
 */
const PROBE_QUIET_MIN_MS = 1000;
const PROBE_QUIET_MAX_MS = 10_000;
const REFUSAL_WINDOW_MS = 10_000;

export interface SenderOptions {
  clientId: string;
  maxInFlight: number;
  /** Payload bytes of those in flight together: each is held until its PUBACK. One message always goes. */
  maxInFlightBytes: number;
  maxMessageBytes: number;
  /** Backlog messages per second; 0: unlimited. */
  drainRate: number;
  maxAttempts: number;
}

interface InFlight {
  item: OutboxItem;
  lane: Lane;
}

/** The item the cloud may have closed a connection for; `sentAt` once it went alone on the current one. */
interface Suspect {
  id: number;
  sentAt?: number;
}

/** A lane's read position and what it has read ahead. */
class LaneReader {
  buffer: OutboxItem[] = [];
  next = 0;
  /** Nothing more to read until something new is committed. */
  exhausted = false;

  take(read: () => OutboxItem[]): OutboxItem | undefined {
    if (this.next >= this.buffer.length) {
      if (this.exhausted) return undefined;
      this.buffer = read();
      this.next = 0;
      if (this.buffer.length === 0) {
        this.exhausted = true;
        return undefined;
      }
    }
    return this.buffer[this.next++];
  }

  reset(): void {
    this.buffer = [];
    this.next = 0;
    this.exhausted = false;
  }
}

/**
 * Sends the outbox to the cloud broker over the current connection: two lanes — live (items of
 * liveFirst rules that arrived while this connection was up) goes first and unthrottled; backlog
 * (everything older, highest priority first, and every item of strict-order rules) at
 * `drainRate` — through a window of QoS 1 publishes. An item is deleted only after its PUBACK.
 * When a connection ends, everything unacknowledged is read again from the outbox on the next
 * one, in the same order: at least once, with the item id to spot duplicates.
 */
export class Sender {
  private client: CloudClient | undefined;
  private limits: CloudLimits | undefined;
  private readonly inFlight = new Map<number, InFlight>();
  private inFlightBytes = 0;
  private readonly live = new LaneReader();
  private readonly backlog = new LaneReader();
  private liveCursor = 0;
  private readonly backlogCursors = new Array<number>(10).fill(0);
  private watermark = 0;
  private acked: Removed[] = [];
  /** Ids of `acked` and of deletions being committed. */
  private readonly deleting = new Set<number>();
  private ackTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private tokens = 0;
  private refilledAt = 0;
  private suspect: Suspect | undefined;
  /** The current connection has held long enough for the suspect to go (see PROBE_QUIET_MIN_MS). */
  private probeDue = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private connectedAt = 0;
  private lastConnectionMs = 0;
  paused = false;
  /** Acknowledged messages per lane since the last rate sample. */
  readonly ackedSinceSample: Record<Lane, number> = { live: 0, backlog: 0 };

  constructor(
    private readonly outbox: Outbox,
    private readonly commit: GroupCommit,
    private readonly activity: RuleActivity,
    private readonly options: SenderOptions,
    private readonly log: Logger,
  ) {}

  /** A connection came up: the outbox as it is now is the backlog; the live lane starts after it. */
  connected(client: CloudClient, limits: CloudLimits): void {
    this.client = client;
    this.limits = limits;
    this.connectedAt = performance.now();
    this.watermark = this.outbox.startBacklog();
    this.liveCursor = this.watermark;
    this.backlogCursors.fill(0);
    this.live.reset();
    this.backlog.reset();
    this.refilledAt = performance.now();
    this.tokens = 0;
    if (this.suspect) {
      const quiet = Math.min(PROBE_QUIET_MAX_MS, Math.max(PROBE_QUIET_MIN_MS, 2 * this.lastConnectionMs));
      this.probeTimer = setTimeout(() => {
        this.probeDue = true;
        this.schedulePump();
      }, quiet);
    }
    this.schedulePump();
  }

  /** The connection ended; `byPeer`: the cloud ended it (see REFUSAL_WINDOW_MS), not the network or this side. */
  disconnected(byPeer: boolean): void {
    this.client = undefined;
    this.lastConnectionMs = performance.now() - this.connectedAt;
    this.outbox.endLive();
    clearTimeout(this.refillTimer);
    clearTimeout(this.probeTimer);
    this.probeDue = false;
    const oldest = this.inFlight.values().next().value as InFlight | undefined;
    this.inFlight.clear();
    this.inFlightBytes = 0;
    this.live.reset();
    this.backlog.reset();
    if (!byPeer) return;
    if (this.suspect) void this.judge(this.suspect);
    else if (oldest) this.suspect = { id: oldest.item.id };
  }

  /** Something new was committed to the outbox. */
  wake(live: boolean): void {
    if (live) this.live.exhausted = false;
    else this.backlog.exhausted = false;
    this.schedulePump();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedulePump();
  }

  /** The item that goes alone before the others (see PROBE_QUIET_MIN_MS), if any. */
  suspectId(): number | null {
    return this.suspect?.id ?? null;
  }

  inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Commits the deletions of what the cloud acknowledged (also before stopping). */
  flushAcks(): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.acked.length === 0) return Promise.resolve();
    const items = this.acked;
    this.acked = [];
    return this.commit.run(() => this.outbox.acknowledge(items)).then(
      () => undefined,
      (error) => {
        // Not deleted: sent again later (a duplicate the id reveals), never lost.
        this.log.error({ err: error }, 'could not delete acknowledged items from the outbox');
        this.outbox.reloadFigures();
      },
    ).finally(() => {
      for (const item of items) this.deleting.delete(item.id);
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.client || this.paused) return;
    if (this.suspect && !this.sendSuspect()) return;
    while (this.inFlight.size < this.options.maxInFlight && (this.inFlight.size === 0 || this.inFlightBytes < this.options.maxInFlightBytes)) {
      const next = this.nextLive() ?? this.nextBacklog();
      if (!next) return;
      this.send(next.item, next.lane);
    }
  }

  /** Sends the suspect alone once the connection held long enough; whether the others may go (no suspect left). */
  private sendSuspect(): boolean {
    const suspect = this.suspect!;
    if (!this.probeDue || suspect.sentAt !== undefined) return false;
    const item = this.outbox.item(suspect.id);
    if (item && !this.deleting.has(item.id)) {
      suspect.sentAt = performance.now();
      this.send(item, 'backlog');
      if (this.inFlight.has(item.id)) {
        // neither acknowledged nor followed by a close: no refusal, and the others must not wait for ever behind it
        this.probeTimer = setTimeout(() => void this.clear(suspect), REFUSAL_WINDOW_MS);
        return false;
      }
    }
    // gone meanwhile (acknowledged, expired, dropped, dead-lettered), or dead-lettered just now
    this.suspect = undefined;
    return true;
  }

  private nextLive(): { item: OutboxItem; lane: Lane } | undefined {
    const item = this.live.take(() => {
      const rows = this.outbox.live(this.liveCursor, READ_BATCH, READ_BATCH_BYTES);
      if (rows.length > 0) this.liveCursor = rows[rows.length - 1].id;
      return rows;
    });
    return item && { item, lane: 'live' };
  }

  private nextBacklog(): { item: OutboxItem; lane: Lane } | undefined {
    if (!this.takeToken()) return undefined;
    const item = this.backlog.take(() => {
      for (const priority of PRIORITIES_HIGH_FIRST) {
        const rows = this.outbox.backlog(priority, this.backlogCursors[priority], this.watermark, READ_BATCH, READ_BATCH_BYTES);
        if (rows.length > 0) {
          this.backlogCursors[priority] = rows[rows.length - 1].id;
          return rows;
        }
      }
      return [];
    });
    if (!item) this.tokens++;
    return item && { item, lane: 'backlog' };
  }

  /** Token bucket for the backlog lane: at most drainRate per second, bursts of a tenth of a second. */
  private takeToken(): boolean {
    const rate = this.options.drainRate;
    if (rate === 0) return true;
    const now = performance.now();
    this.tokens = Math.min(Math.max(1, rate / 10), this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    if (!this.backlog.exhausted) {
      clearTimeout(this.refillTimer);
      this.refillTimer = setTimeout(() => this.schedulePump(), Math.max(1, Math.ceil((1 - this.tokens) * 1000 / rate)));
    }
    return false;
  }

  private send(item: OutboxItem, lane: Lane): void {
    // Acknowledged on an earlier connection, its deletion not committed yet.
    if (this.deleting.has(item.id)) return;
    // The suspect, sent alone before the others and still unanswered.
    if (this.inFlight.has(item.id)) return;
    // Its TTL ran out while it waited: the expiry sweep deletes and counts it.
    if (this.outbox.isExpired(item)) return;
    const id = messageId(this.options.clientId, item.id);
    const topic = cloudTopicOf(item.cloudTopic, id);
    const payload = item.envelope ? envelope(id, item) : item.payload;
    const size = Buffer.byteLength(topic) + payload.length;
    if (size > this.options.maxMessageBytes) {
      void this.deadLetter(item, `MessageTooLarge: ${size} bytes of topic and payload, cloud.mqtt.maxMessageBytes is ${this.options.maxMessageBytes}`);
      return;
    }
    const client = this.client!;
    // MQTT-3.2.2-11: never above the cloud's Maximum QoS (it would end the connection, 0x9B); at QoS 0 the item leaves the outbox once written
    const qos = Math.min(item.qos, this.limits!.maximumQoS) as 0 | 1;
    const packetLimit = this.limits!.maximumPacketSize;
    if (packetLimit !== null) {
      const packetBytes = publishPacketBytes(topic, payload.length, qos);
      // MQTT-3.2.2-15: never sent; the cloud would only end the connection (0x95) each time it went
      if (packetBytes > packetLimit) {
        void this.deadLetter(item, `MessageTooLarge: a PUBLISH of ${packetBytes} bytes, the cloud's Maximum Packet Size ${packetLimit}`);
        return;
      }
    }
    const invalid = invalidTopic(topic);
    if (invalid) {
      void this.deadLetter(item, `InvalidTopic: "${topic}" ${invalid}`);
      return;
    }
    this.inFlight.set(item.id, { item, lane });
    this.inFlightBytes += payload.length;
    client.publish(topic, payload, { qos }, (error) => {
      if (this.client !== client || !this.inFlight.has(item.id)) return;
      this.inFlight.delete(item.id);
      this.inFlightBytes -= payload.length;
      const code = (error as { code?: unknown } | undefined)?.code;
      if (error && typeof code === 'number') {
        // MQTT 5: a PUBACK reason code ≥ 0x80 is the cloud's final word on this message.
        void this.deadLetter(item, `PUBACK reason code ${code}: ${error.message}`);
      } else if (!error) {
        this.acknowledged(item, lane);
      }
      if (this.suspect?.id === item.id) this.suspect = undefined;
      this.schedulePump();
    });
  }

  private acknowledged(item: OutboxItem, lane: Lane): void {
    // without its payload: up to ACK_FLUSH_ITEMS wait here
    this.acked.push({ id: item.id, rule: item.rule, priority: item.priority, bytes: item.bytes, live: item.live });
    this.deleting.add(item.id);
    if (this.acked.length >= ACK_FLUSH_ITEMS) void this.flushAcks();
    else this.ackTimer ??= setTimeout(() => void this.flushAcks(), ACK_FLUSH_MS);
    this.ackedSinceSample[lane]++;
    this.activity.succeeded(item.rule);
  }

  private async clear(suspect: Suspect): Promise<void> {
    if (this.suspect !== suspect) return;
    this.suspect = undefined;
    this.schedulePump();
    await this.commit.run(() => this.outbox.absolve(suspect.id)).catch((error) => this.log.error({ err: error }, 'could not reset a delivery attempt count'));
  }

  /**
   * The cloud closed the connection while the suspect was the one in flight: within REFUSAL_WINDOW_MS
   * of its going alone, one more attempt (dead-lettered at sync.maxAttempts); otherwise (before it
   * went, or long after) not its doing, and its count starts over.
   */
  private async judge(suspect: Suspect): Promise<void> {
    const refused = suspect.sentAt !== undefined && performance.now() - suspect.sentAt <= REFUSAL_WINDOW_MS;
    suspect.sentAt = undefined;
    try {
      if (!refused) return await this.clear(suspect);
      const attempts = await this.commit.run(() => this.outbox.blame(suspect.id));
      const item = attempts >= this.options.maxAttempts ? this.outbox.item(suspect.id) : undefined;
      if (item) {
        if (this.suspect === suspect) this.suspect = undefined;
        await this.deadLetter(item, `ConnectionClosed: the cloud closed the connection right after this message, sent alone, ${attempts} times in a row (not authorised, or too large?)`);
      }
    } catch (error) {
      this.log.error({ err: error }, 'could not count a failed delivery attempt');
    }
  }

  private async deadLetter(item: OutboxItem, reason: string): Promise<void> {
    this.activity.failed(item.rule, reason);
    try {
      if (await this.commit.run(() => this.outbox.deadLetter(item.id, reason))) {
        this.log.warn({ rule: item.rule, item: item.id, reason }, 'sync item dead-lettered');
      }
    } catch (error) {
      this.log.error({ err: error }, 'could not dead-letter a sync item');
      this.outbox.reloadFigures();
    }
  }
}

/** The id the cloud sees of an outbox item (`${id}`, the envelope's `id`): unique across gateways and restarts. */
export function messageId(clientId: string, itemId: number): string {
  return `${clientId}:${itemId}`;
}

/** A message item's cloud topic as sent: its rule's `${id}` filled in (the rest was at enqueue). */
export function cloudTopicOf(template: string, id: string): string {
  return template.replaceAll('${id}', id);
}

/** What the cloud sees with `id: envelope`: the payload as JSON when it is JSON, else base64. */
function envelope(id: string, item: OutboxItem): Buffer {
  const text = item.payload.toString('utf8');
  let payload: { payload: unknown } | { payloadBase64: string };
  try {
    payload = { payload: JSON.parse(text) as unknown };
  } catch {
    payload = { payloadBase64: item.payload.toString('base64') };
  }
  return Buffer.from(JSON.stringify({ id, topic: item.localTopic, ts: item.enqueuedWall, ...payload }));
}

/** Bytes of an MQTT 5 PUBLISH as the lean client writes it (no properties): fixed header, topic, packet identifier for QoS 1. */
export function publishPacketBytes(topic: string, payloadBytes: number, qos: 0 | 1): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos === 1 ? 2 : 0) + 1 + payloadBytes;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

/** Why a cloud topic cannot be published to (MQTT 3.1.1 §4.7), else undefined. */
function invalidTopic(topic: string): string | undefined {
  if (topic.length === 0) return 'is empty';
  if (/[+#]/.test(topic)) return 'contains a wildcard';
  if (hasUnsafeCharacter(topic)) return 'contains U+0000, a control character or a non-character';
  if (Buffer.byteLength(topic) > 65535) return 'is longer than 65535 bytes';
  return undefined;
}
