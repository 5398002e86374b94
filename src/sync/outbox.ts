import type Database from 'better-sqlite3';
import type { Store } from '../store/store.js';
import type { SyncClock } from './clock.js';
import type { OverflowPolicy } from './config.js';

/** Counted per item on top of topic and payload, so a flood of empty messages is bounded too. */
export const ITEM_OVERHEAD_BYTES = 64;
const PRIORITIES = 10;
const EXPIRE_BATCH = 5000;

/** A bridged MQTT message, or an object to upload (payload: its ObjectRef as JSON). */
export type ItemKind = 'message' | 'object';

export interface NewItem {
  kind: ItemKind;
  rule: string;
  priority: number;
  live: boolean;
  cloudTopic: string;
  localTopic: string;
  payload: Buffer;
  qos: 0 | 1;
  envelope: boolean;
  /** 0: no time-to-live. */
  ttlMs: number;
}

/** An item as read for sending: the row itself, named for TypeScript (one object per item: the sender reads thousands a second). */
export interface OutboxItem {
  id: number;
  rule: string;
  priority: number;
  cloudTopic: string;
  localTopic: string;
  payload: Buffer;
  qos: 0 | 1;
  /** 1: wrap the payload in the id envelope. */
  envelope: 0 | 1;
  /** 1: of a liveFirst rule. */
  live: 0 | 1;
  bytes: number;
  enqueuedWall: number;
  /** Monotonic milliseconds in this boot's frame (older boots' times shifted, see docs/sync.md). */
  expiresMono: number | null;
}

export interface DeadLetter {
  id: number;
  itemId: number;
  kind: ItemKind;
  rule: string;
  cloudTopic: string;
  localTopic: string;
  bytes: number;
  reason: string;
  enqueuedAt: string;
  failedAt: string;
}

export type EnqueueOutcome = { stored: true; id: number } | { stored: false; policy: OverflowPolicy };

/** What the outbox holds and has lost, per rule; kept in memory, the counters also on disk. */
export interface RuleFigures {
  count: number;
  bytes: number;
  dropped: number;
  rejected: number;
  expired: number;
  deadLettered: number;
}

type Counter = 'dropped' | 'rejected' | 'expired' | 'dead_lettered';
const FIGURE_OF: Record<Counter, 'dropped' | 'rejected' | 'expired' | 'deadLettered'> = {
  dropped: 'dropped', rejected: 'rejected', expired: 'expired', dead_lettered: 'deadLettered',
};

interface ItemRow {
  id: number; rule: string; priority: number; live: number; cloud_topic: string; local_topic: string; payload: Buffer;
  qos: number; envelope: number; bytes: number; boot_id: string; enqueued_mono: number; expires_mono: number | null;
  enqueued_wall: number; kind: ItemKind;
}
/** What the figures need of an item that leaves the outbox. */
export interface Removed { id: number; rule: string; priority: number; bytes: number; live: number }

// Shifted into this boot's frame by sync_boots (every boot id of the outbox has a row there).
const ITEM_COLUMNS = `id, rule, priority, cloud_topic AS cloudTopic, local_topic AS localTopic, payload, qos, envelope, live, bytes,
  enqueued_wall AS enqueuedWall, expires_mono + (SELECT shift_ms FROM sync_boots WHERE sync_boots.boot_id = sync_outbox.boot_id) AS expiresMono`;

/**
 * The durable outbox: SQLite rows written through group commit before anything is acknowledged
 * locally, deleted only once the cloud acknowledged them (or a bound, TTL or dead-lettering
 * removed them, each counted). Methods marked "write" run only inside `store.commit.run`.
 */
export class Outbox {
  private readonly db: Database.Database;
  private readonly figures = new Map<string, RuleFigures>();
  private readonly bytesByPriority = new Array<number>(PRIORITIES).fill(0);
  /** Per boot id: milliseconds to add to its monotonic times to compare them with this boot's. */
  private readonly shifts = new Map<string, number>();
  totalBytes = 0;
  totalCount = 0;
  /**
   * Items (and bytes) of the live lane: of liveFirst rules, newer than the watermark set when the
   * current connection came up. The rest is the backlog lane, all of it while offline (the next
   * connection sends it as backlog).
   */
  liveCount = 0;
  liveBytes = 0;
  private watermark = Infinity;
  /**
   * The highest item id known to be on disk: the rows of earlier runs, and those of this one whose
   * commit's fsync has completed (markDurable). A transaction is readable once committed, before its
   * fsync: an item sent to the cloud from it, and then undone by a power cut, would have its id given
   * to another message, which a cloud that drops duplicates by id would drop.
   */
  private durableUpTo = 0;
  /** Called when the outbox goes from empty to holding an item, inside the write's transaction: it may only schedule work. */
  onItems: () => void = () => {};
  /** Messages refused because the write failed (disk full): counted as rejected, in memory only — the disk is what failed. */
  private readonly notStored = new Map<string, number>();
  private readonly statements: ReturnType<typeof prepare>;

  constructor(store: Store, private readonly clock: SyncClock, private readonly limits: { maxBytes: number; maxAgeMs: number; dlqLength: number; dlqMaxBytes: number }) {
    this.db = store.db;
    this.statements = prepare(this.db);
  }

  /** Joins this boot's clock to the previous ones' and loads the figures (a scan of the outbox, once at start). */
  open(): void {
    this.db.transaction(() => this.registerBoot())();
    this.reloadFigures();
    if (this.totalCount === 0) this.db.transaction(() => this.forgetOtherBoots())();
    this.durableUpTo = (this.statements.maxId.get() as { id: number | null }).id ?? 0;
  }

  /** The commit of item `id` (and of every item before it) has been fsynced: the sender may read it. */
  markDurable(id: number): void {
    if (id > this.durableUpTo) this.durableUpTo = id;
  }

  /**
   * Only items' boots need their shift; with the outbox empty every other boot's row goes, or the
   * table (and the expiry sweep's query per boot, every second) would grow with each reboot.
   */
  private forgetOtherBoots(): void {
    if (this.shifts.size <= 1) return;
    this.statements.forgetOtherBoots.run(this.clock.bootId);
    this.shifts.clear();
    this.shifts.set(this.clock.bootId, 0);
  }

  /**
   * Time the board spends powered off is unknown without a trustworthy clock, so it is not
   * counted: the previous boot's last heartbeat becomes "now" of this one.
   */
  private registerBoot(): void {
    const now = this.clock.monotonicMs();
    const known = this.db.prepare('SELECT 1 FROM sync_boots WHERE boot_id = ?').get(this.clock.bootId);
    if (known) return;
    const previous = this.db.prepare('SELECT last_seen_mono FROM sync_boots WHERE shift_ms = 0 ORDER BY rowid DESC LIMIT 1').get() as { last_seen_mono: number } | undefined;
    if (previous) this.db.prepare('UPDATE sync_boots SET shift_ms = shift_ms + ?').run(now - previous.last_seen_mono);
    this.db.prepare('INSERT INTO sync_boots (boot_id, shift_ms, last_seen_mono) VALUES (?, 0, ?)').run(this.clock.bootId, now);
  }

  /** Rebuilds the in-memory figures and boot shifts from the tables (at start, and after a failed commit). */
  reloadFigures(): void {
    this.shifts.clear();
    for (const row of this.db.prepare('SELECT boot_id, shift_ms FROM sync_boots').all() as Array<{ boot_id: string; shift_ms: number }>) {
      this.shifts.set(row.boot_id, row.shift_ms);
    }
    this.figures.clear();
    this.bytesByPriority.fill(0);
    this.totalBytes = 0;
    this.totalCount = 0;
    const live = Number.isFinite(this.watermark) ? this.statements.liveFigures.get(this.watermark) as { count: number; bytes: number } : { count: 0, bytes: 0 };
    this.liveCount = live.count;
    this.liveBytes = live.bytes;
    const rows = this.db.prepare('SELECT rule, priority, COUNT(*) AS count, SUM(bytes) AS bytes FROM sync_outbox GROUP BY rule, priority').all() as Array<{ rule: string; priority: number; count: number; bytes: number }>;
    for (const row of rows) {
      const figures = this.figuresOf(row.rule);
      figures.count += row.count;
      figures.bytes += row.bytes;
      this.bytesByPriority[row.priority] += row.bytes;
      this.totalBytes += row.bytes;
      this.totalCount += row.count;
    }
    for (const row of this.db.prepare('SELECT * FROM sync_rule_counters').all() as Array<{ rule: string; dropped: number; rejected: number; expired: number; dead_lettered: number }>) {
      Object.assign(this.figuresOf(row.rule), { dropped: row.dropped, rejected: row.rejected, expired: row.expired, deadLettered: row.dead_lettered });
    }
    for (const [rule, count] of this.notStored) this.figuresOf(rule).rejected += count;
  }

  countNotStored(rule: string): void {
    this.notStored.set(rule, (this.notStored.get(rule) ?? 0) + 1);
    this.figuresOf(rule).rejected++;
  }

  figuresOf(rule: string): RuleFigures {
    let figures = this.figures.get(rule);
    if (!figures) {
      figures = { count: 0, bytes: 0, dropped: 0, rejected: 0, expired: 0, deadLettered: 0 };
      this.figures.set(rule, figures);
    }
    return figures;
  }

  rules(): string[] {
    return [...this.figures.keys()];
  }

  /** Write: stores the item, or applies its rule's overflow policy when it does not fit in sync.maxBytes. */
  enqueue(item: NewItem, policy: OverflowPolicy): EnqueueOutcome {
    const bytes = itemBytes(item.cloudTopic, item.localTopic, item.payload);
    const missing = this.totalBytes + bytes - this.limits.maxBytes;
    if (missing > 0 && !this.makeRoom(item, policy, missing)) {
      this.count(item.rule, policy === 'reject-new' ? 'rejected' : 'dropped', 1);
      return { stored: false, policy };
    }
    const now = this.clock.monotonicMs();
    // The heartbeat is skipped while the outbox is empty: the first item records where this boot is.
    if (this.totalCount === 0) this.heartbeat();
    const ttlMs = [item.ttlMs, this.limits.maxAgeMs].filter((ms) => ms > 0);
    const id = Number(this.statements.insert.run({
      kind: item.kind, rule: item.rule, priority: item.priority, live: item.live ? 1 : 0, cloudTopic: item.cloudTopic, localTopic: item.localTopic,
      payload: item.payload, qos: item.qos, envelope: item.envelope ? 1 : 0, bytes, bootId: this.clock.bootId, now,
      expires: ttlMs.length > 0 ? now + Math.min(...ttlMs) : null, wall: this.clock.wallMs(),
    }).lastInsertRowid);
    this.added({ id, rule: item.rule, priority: item.priority, bytes, live: item.live ? 1 : 0 });
    return { stored: true, id };
  }

  /** Write: evicts what the policy allows until `missing` bytes are free; false when that is not enough (nothing evicted). */
  private makeRoom(item: NewItem, policy: OverflowPolicy, missing: number): boolean {
    if (policy === 'reject-new') return false;
    if (policy === 'drop-oldest') {
      if (this.figuresOf(item.rule).bytes < missing) return false;
      this.evict(this.statements.oldestOfRule, { rule: item.rule }, missing);
      return true;
    }
    const lower = this.bytesByPriority.slice(0, item.priority).reduce((sum, bytes) => sum + bytes, 0);
    if (lower < missing) return false;
    this.evict(this.statements.oldestOfLowestPriority, { priority: item.priority }, missing);
    return true;
  }

  private evict(candidates: Database.Statement, parameters: Record<string, unknown>, missing: number): void {
    let freed = 0;
    while (freed < missing) {
      const batch = candidates.all(parameters) as Array<{ id: number }>;
      if (batch.length === 0) return;
      for (const { id } of batch) {
        const removed = this.statements.delete.get(id) as Removed | undefined;
        if (!removed) continue;
        this.removed(removed);
        this.count(removed.rule, 'dropped', 1);
        freed += removed.bytes;
        if (freed >= missing) return;
      }
    }
  }

  /** Write: the cloud acknowledged these items; those an eviction or expiry removed meanwhile are skipped. */
  acknowledge(items: readonly Removed[]): void {
    for (const item of items) {
      if (this.statements.deleteAcknowledged.run(item.id).changes === 1) this.removed(item);
    }
  }

  /** Write: drops (up to a batch of) the items whose time-to-live ran out (monotonic), counted per rule; returns how many. */
  expire(): number {
    const now = this.clock.monotonicMs();
    let expired = 0;
    for (const [bootId, shift] of this.shifts) {
      for (const row of this.statements.expire.all({ bootId, before: now - shift }) as Removed[]) {
        this.removed(row);
        this.count(row.rule, 'expired', 1);
        expired++;
      }
    }
    return expired;
  }

  /** Whether the item's time-to-live ran out (checked again just before sending). */
  isExpired(item: OutboxItem): boolean {
    return item.expiresMono !== null && item.expiresMono <= this.clock.monotonicMs();
  }

  /** Whether some item's time-to-live has run out (a read through the expiry index, so an idle outbox costs no write). */
  hasExpired(): boolean {
    const now = this.clock.monotonicMs();
    for (const [bootId, shift] of this.shifts) {
      if (this.statements.anyExpired.get({ bootId, before: now - shift })) return true;
    }
    return false;
  }

  /** Write: records this boot's monotonic time, so the next boot knows where this one stopped. */
  heartbeat(): void {
    this.statements.heartbeat.run(this.clock.monotonicMs(), this.clock.bootId);
  }

  /** Write: one more connection closed with this item as the oldest unacknowledged; returns the count. */
  blame(id: number): number {
    const row = this.statements.blame.get(id) as { attempts: number } | undefined;
    return row?.attempts ?? 0;
  }

  /** Write: what made the item suspect turned out not to be its doing; its count starts over. */
  absolve(id: number): void {
    this.statements.absolve.run(id);
  }

  /**
   * Write: moves the item to the dead-letter list with the reason; trims the list to sync.dlqLength
   * entries and sync.dlqMaxBytes (trimmed ones count as dropped): the messages dead-lettered as too
   * large are the largest, and a count alone would let them take many times sync.maxBytes of disk.
   */
  deadLetter(id: number, reason: string): boolean {
    if (this.statements.copyToDeadLetters.run({ id, reason, wall: this.clock.wallMs() }).changes === 0) return false;
    const removed = this.statements.delete.get(id) as Removed;
    this.removed(removed);
    this.count(removed.rule, 'dead_lettered', 1);
    const trimmed = [
      ...this.statements.trimDeadLetters.all(this.limits.dlqLength),
      ...this.statements.trimDeadLetterBytes.all(this.limits.dlqMaxBytes),
    ] as Array<{ rule: string }>;
    for (const entry of trimmed) this.count(entry.rule, 'dropped', 1);
    return true;
  }

  /** Write: puts dead letters back at the end of the outbox (new ids, no TTL); stops at sync.maxBytes. */
  retry(ids: readonly number[] | 'all'): { retried: number[]; skipped: Array<{ id: number; reason: string }>; lastItemId: number } {
    const letters = ids === 'all'
      ? this.statements.allDeadLetterIds.all() as Array<{ id: number }>
      : ids.map((id) => ({ id }));
    const retried: number[] = [];
    const skipped: Array<{ id: number; reason: string }> = [];
    let lastItemId = 0;
    for (const { id } of letters) {
      const letter = this.statements.deadLetter.get(id) as (ItemRow & { reason: string }) | undefined;
      if (!letter) {
        skipped.push({ id, reason: 'no such dead letter' });
        continue;
      }
      const bytes = itemBytes(letter.cloud_topic, letter.local_topic, letter.payload);
      if (this.totalBytes + bytes > this.limits.maxBytes) {
        skipped.push({ id, reason: 'the outbox is full (sync.maxBytes)' });
        continue;
      }
      const now = this.clock.monotonicMs();
      const itemId = Number(this.statements.insert.run({
        kind: letter.kind, rule: letter.rule, priority: letter.priority, live: letter.live, cloudTopic: letter.cloud_topic, localTopic: letter.local_topic,
        payload: letter.payload, qos: letter.qos, envelope: letter.envelope, bytes, bootId: this.clock.bootId, now, expires: null,
        wall: letter.enqueued_wall,
      }).lastInsertRowid);
      this.statements.deleteDeadLetter.run(id);
      this.added({ id: itemId, rule: letter.rule, priority: letter.priority, bytes, live: letter.live });
      retried.push(id);
      lastItemId = itemId;
    }
    return { retried, skipped, lastItemId };
  }

  deadLetters(limit: number): DeadLetter[] {
    return (this.statements.deadLetters.all(limit) as Array<ItemRow & { item_id: number; reason: string; failed_wall: number }>).map((row) => ({
      id: row.id, itemId: row.item_id, kind: row.kind, rule: row.rule, cloudTopic: row.cloud_topic, localTopic: row.local_topic,
      bytes: row.payload.length, reason: row.reason, enqueuedAt: new Date(row.enqueued_wall).toISOString(), failedAt: new Date(row.failed_wall).toISOString(),
    }));
  }

  deadLetterCount(): number {
    return (this.statements.countDeadLetters.get() as { n: number }).n;
  }

  /** A connection came up: everything in the outbox now is backlog; returns the largest id of it. */
  startBacklog(): number {
    this.watermark = (this.statements.maxId.get() as { id: number | null }).id ?? 0;
    this.liveCount = 0;
    this.liveBytes = 0;
    return this.watermark;
  }

  /** The connection ended: everything waits as backlog for the next one. */
  endLive(): void {
    this.watermark = Infinity;
    this.liveCount = 0;
    this.liveBytes = 0;
  }

  /** Live lane: items of liveFirst rules newer than `afterId`, in arrival order. */
  live(afterId: number, limit: number, maxBytes: number): OutboxItem[] {
    return readUpTo(this.statements.live.iterate(afterId, this.durableUpTo, limit) as IterableIterator<OutboxItem>, maxBytes);
  }

  /** Backlog lane of one priority: items after `afterId` that are not live (older than `watermark` or of strict-order rules). */
  backlog(priority: number, afterId: number, watermark: number, limit: number, maxBytes: number): OutboxItem[] {
    return readUpTo(this.statements.backlog.iterate(priority, afterId, watermark, this.durableUpTo, limit) as IterableIterator<OutboxItem>, maxBytes);
  }

  /** The first `limit` object uploads to do but those of `exceptRules`: highest priority first, then in arrival order (so in order per object key). */
  nextObjects(limit: number, exceptRules: string[] = []): OutboxItem[] {
    return this.statements.nextObjects.all(JSON.stringify(exceptRules), limit) as OutboxItem[];
  }

  /** Whether an upload of the local object `bucket/key` is still queued (another rule's, once this one's is done). */
  objectQueued(localTopic: string): boolean {
    return this.statements.objectQueued.get(localTopic) !== undefined;
  }

  /** The item, if it is still in the outbox and durable. */
  item(id: number): OutboxItem | undefined {
    return this.statements.item.get(id, this.durableUpTo) as OutboxItem | undefined;
  }

  /** Whether the item is still in the outbox (not evicted, expired or dead-lettered meanwhile). */
  holds(id: number): boolean {
    return this.statements.hasItem.get(id) !== undefined;
  }

  /** Monotonic age in milliseconds of the rule's oldest item; undefined when it has none. */
  oldestAgeMs(rule: string): number | undefined {
    const row = this.statements.oldestOfRuleTime.get(rule) as { boot_id: string; enqueued_mono: number } | undefined;
    if (!row) return undefined;
    return this.clock.monotonicMs() - (row.enqueued_mono + (this.shifts.get(row.boot_id) ?? 0));
  }

  private added(item: Removed): void {
    if (this.inLiveLane(item)) {
      this.liveCount++;
      this.liveBytes += item.bytes;
    }
    const figures = this.figuresOf(item.rule);
    figures.count++;
    figures.bytes += item.bytes;
    this.bytesByPriority[item.priority] += item.bytes;
    this.totalBytes += item.bytes;
    this.totalCount++;
    if (this.totalCount === 1) this.onItems();
  }

  private removed(item: Removed): void {
    if (this.inLiveLane(item)) {
      this.liveCount--;
      this.liveBytes -= item.bytes;
    }
    const figures = this.figuresOf(item.rule);
    figures.count--;
    figures.bytes -= item.bytes;
    this.bytesByPriority[item.priority] -= item.bytes;
    this.totalBytes -= item.bytes;
    this.totalCount--;
    if (this.totalCount === 0) this.forgetOtherBoots();
  }

  private inLiveLane(item: Removed): boolean {
    return item.live === 1 && item.id > this.watermark;
  }

  private count(rule: string, counter: Counter, n: number): void {
    this.statements.count[counter].run(rule, n);
    this.figuresOf(rule)[FIGURE_OF[counter]] += n;
  }
}

export function itemBytes(cloudTopic: string, localTopic: string, payload: Buffer): number {
  return Buffer.byteLength(cloudTopic) + Buffer.byteLength(localTopic) + payload.length + ITEM_OVERHEAD_BYTES;
}

function prepare(db: Database.Database) {
  const counter = (column: Counter) => db.prepare(`INSERT INTO sync_rule_counters (rule, ${column}) VALUES (?, ?)
    ON CONFLICT (rule) DO UPDATE SET ${column} = ${column} + excluded.${column}`);
  return {
    insert: db.prepare(`INSERT INTO sync_outbox (kind, rule, priority, live, cloud_topic, local_topic, payload, qos, envelope, bytes, boot_id, enqueued_mono, expires_mono, enqueued_wall)
      VALUES (@kind, @rule, @priority, @live, @cloudTopic, @localTopic, @payload, @qos, @envelope, @bytes, @bootId, @now, @expires, @wall)`),
    delete: db.prepare('DELETE FROM sync_outbox WHERE id = ? RETURNING id, rule, priority, bytes, live'),
    deleteAcknowledged: db.prepare('DELETE FROM sync_outbox WHERE id = ?'),
    oldestOfRule: db.prepare('SELECT id FROM sync_outbox WHERE rule = @rule ORDER BY id LIMIT 64'),
    oldestOfLowestPriority: db.prepare('SELECT id FROM sync_outbox WHERE priority < @priority ORDER BY priority, id LIMIT 64'),
    oldestOfRuleTime: db.prepare('SELECT boot_id, enqueued_mono FROM sync_outbox WHERE rule = ? ORDER BY id LIMIT 1'),
    // Bounded per sweep (one transaction must not stall the event loop); the next sweep takes the rest.
    expire: db.prepare(`DELETE FROM sync_outbox WHERE id IN (SELECT id FROM sync_outbox
      WHERE boot_id = @bootId AND expires_mono IS NOT NULL AND expires_mono <= @before LIMIT ${EXPIRE_BATCH})
      RETURNING id, rule, priority, bytes, live`),
    heartbeat: db.prepare('UPDATE sync_boots SET last_seen_mono = ? WHERE boot_id = ?'),
    forgetOtherBoots: db.prepare('DELETE FROM sync_boots WHERE boot_id != ?'),
    anyExpired: db.prepare('SELECT 1 FROM sync_outbox WHERE boot_id = @bootId AND expires_mono IS NOT NULL AND expires_mono <= @before LIMIT 1'),
    blame: db.prepare('UPDATE sync_outbox SET attempts = attempts + 1 WHERE id = ? RETURNING attempts'),
    absolve: db.prepare('UPDATE sync_outbox SET attempts = 0 WHERE id = ? AND attempts > 0'),
    copyToDeadLetters: db.prepare(`INSERT INTO sync_dead_letters (item_id, kind, rule, priority, live, cloud_topic, local_topic, payload, qos, envelope, enqueued_wall, reason, failed_wall)
      SELECT id, kind, rule, priority, live, cloud_topic, local_topic, payload, qos, envelope, enqueued_wall, @reason, @wall FROM sync_outbox WHERE id = @id`),
    trimDeadLetters: db.prepare(`DELETE FROM sync_dead_letters WHERE id <= COALESCE(
      (SELECT id FROM sync_dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?), -1) RETURNING rule`),
    // the newest entries that fit in the bytes, counted as itemBytes does
    trimDeadLetterBytes: db.prepare(`DELETE FROM sync_dead_letters WHERE id <= COALESCE((SELECT id FROM (
      SELECT id, SUM(length(CAST(cloud_topic AS BLOB)) + length(CAST(local_topic AS BLOB)) + length(payload) + ${ITEM_OVERHEAD_BYTES}) OVER (ORDER BY id DESC) AS newer
      FROM sync_dead_letters) WHERE newer > ? ORDER BY id DESC LIMIT 1), -1) RETURNING rule`),
    deadLetters: db.prepare('SELECT * FROM sync_dead_letters ORDER BY id LIMIT ?'),
    deadLetter: db.prepare('SELECT * FROM sync_dead_letters WHERE id = ?'),
    allDeadLetterIds: db.prepare('SELECT id FROM sync_dead_letters ORDER BY id'),
    deleteDeadLetter: db.prepare('DELETE FROM sync_dead_letters WHERE id = ?'),
    countDeadLetters: db.prepare('SELECT COUNT(*) AS n FROM sync_dead_letters'),
    maxId: db.prepare('SELECT MAX(id) AS id FROM sync_outbox'),
    liveFigures: db.prepare('SELECT COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM sync_outbox WHERE live = 1 AND id > ?'),
    live: db.prepare(`SELECT ${ITEM_COLUMNS} FROM sync_outbox WHERE id > ? AND id <= ? AND live = 1 ORDER BY id LIMIT ?`),
    backlog: db.prepare(`SELECT ${ITEM_COLUMNS} FROM sync_outbox WHERE priority = ? AND id > ? AND (live = 0 OR id <= ?) AND id <= ? AND kind = 'message' ORDER BY id LIMIT ?`),
    // Through the partial index sync_outbox_objects: uploads never scan the messages.
    nextObjects: db.prepare(`SELECT ${ITEM_COLUMNS} FROM sync_outbox WHERE kind = 'object' AND rule NOT IN (SELECT value FROM json_each(?))
      ORDER BY priority DESC, id LIMIT ?`),
    objectQueued: db.prepare(`SELECT 1 FROM sync_outbox WHERE kind = 'object' AND local_topic = ? LIMIT 1`),
    hasItem: db.prepare('SELECT 1 FROM sync_outbox WHERE id = ?'),
    item: db.prepare(`SELECT ${ITEM_COLUMNS} FROM sync_outbox WHERE id = ? AND id <= ?`),
    count: {
      dropped: counter('dropped'), rejected: counter('rejected'), expired: counter('expired'), dead_lettered: counter('dead_lettered'),
    },
  };
}

/** Rows until their payloads add up to `maxBytes` (the one that reaches it included, so always one). */
function readUpTo(rows: IterableIterator<OutboxItem>, maxBytes: number): OutboxItem[] {
  const items: OutboxItem[] = [];
  let bytes = 0;
  for (const row of rows) {
    items.push(row);
    bytes += row.payload.length;
    if (bytes >= maxBytes) break;
  }
  return items;
}
