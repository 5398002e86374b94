import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SubscribeRefused, type CloudClient } from './cloud-client.js';
import type { CloudLimits } from './cloud-link.js';
import { Backoff } from './backoff.js';
import { publishPacketBytes } from './sender.js';
import type { BusMessage, LocalBus } from '../bus.js';
import type { Store } from '../store/store.js';
import type { JsonObject, ShadowState } from '../shadows/document.js';
import type { CloudConfig, ShadowRule } from './config.js';
import { combinePatches, isEmptyState, patchLeaves, patchPaths, planSync, withoutRefused, type StatePatch } from './shadow-merge.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** A sync that failed while online is tried again after at least this long, the waits growing (see Backoff). */
const RETRY_MIN_MS = 5_000;
/**
 * Shadow requests in flight at once on the cloud connection: AWS IoT Core answers an 11th with 429
 * (Device Shadow error messages: "more than 10 in-flight requests on a single connection"), and a
 * full sync on connect starts a get of every configured shadow at once.
 */
const CLOUD_MAX_IN_FLIGHT = 10;
/** Version conflicts (409) in a row before a sync gives up until the next change or retry. */
const MAX_CONFLICTS = 3;
/**
 * Updates one write may make to find which keys of an update refused for its content the side
 * takes (writeInParts): ~2·log2(n)+1 for one refused key among n, so one among 64 is found; beyond
 * this, what is left unresolved is set aside together.
 */
const MAX_PART_WRITES = 16;

interface ShadowResponse { outcome: 'accepted' | 'rejected'; body: Record<string, any> }
/** A side's shadow: its state, and its version unless it does not exist (404). */
interface ShadowSide { state: ShadowState; version?: number }
/**
 * What is kept of a shadow between syncs: the last synced document, the device's changes the cloud
 * refused for good, and the cloud's changes the device's shadow refused for good (each the update as sent).
 */
interface SyncRecord { base: ShadowState; refusedByCloud: StatePatch; refusedByDevice: StatePatch }
type Operation = 'get' | 'update' | 'delete';

/**
 * A refusal the same request would get again (AWS Device Shadow error messages: 400, 401, 403, 413,
 * 415), unlike a busy or failing service's (429, 500, 503). Greengrass's shadow manager skips such
 * an update instead of retrying it.
 */
class UpdateRefused extends Error {
  /**
   * `ofContent`: the document is refused (CONTENT_REFUSALS, or too large to send), not the gateway
   * (401, 403: a policy). `refusedPart`: what of the update was refused for its content, when the
   * rest was taken (writeInParts); the whole update otherwise.
   */
  constructor(message: string, readonly ofContent: boolean, readonly refusedPart?: StatePatch) {
    super(message);
  }
}
/**
 * A get the cloud refuses (401, 403: its policy): the sync cannot even start, and only the operator
 * can change that. Retried, as a change of the policy says nothing to the gateway, but the waits
 * grow up to cloud.mqtt.refusedRetryMaxMs.
 */
class GetRefused extends Error {}
const RETRYABLE_CODES = new Set([429, 500, 503]);
/** AWS Device Shadow error messages: 400 invalid JSON or document, 413 payload too large, 415 not UTF-8. */
const CONTENT_REFUSALS = new Set([400, 413, 415]);

export interface ShadowSyncStatus {
  thing: string;
  name: string | null;
  direction: ShadowRule['direction'];
  lastSync: string | null;
  lastError: string | null;
  /** After a failed sync: when it is tried again (ISO time). */
  nextAttempt: string | null;
  /** The device's changes the cloud refused for good, as paths ("reported.log"): not sent until the device changes them. */
  refusedChanges: string[];
  /** The cloud's changes the device's shadow refused for good, as paths ("desired.program"): not applied until the cloud changes them. */
  refusedByDevice: string[];
}

const shadowPrefix = (rule: { thing: string; name?: string }) => `$aws/things/${rule.thing}/shadow${rule.name ? `/name/${rule.name}` : ''}`;
/**
 * A shadow changed: `/update/documents` after an update, `/delete/accepted` after a delete (AWS
 * IoT publishes no `/documents` for a delete, so without it a delete would wait for the next connect).
 * Those of the agent's own requests (their clientToken is the agent's: AWS echoes it there) are
 * none: that change is synced already, and a sync for it would only read both sides again, a cloud
 * read more for every write.
 */
function isChange(topic: string, payload: Buffer, ownTokens: string): boolean {
  if (!topic.endsWith('/update/documents') && !topic.endsWith('/delete/accepted')) return false;
  let clientToken: unknown;
  try {
    clientToken = (JSON.parse(payload.toString('utf8')) as { clientToken?: unknown }).clientToken;
  } catch {
    return true;
  }
  return !(typeof clientToken === 'string' && clientToken.startsWith(ownTokens));
}
const keyOf = (thing: string, name: string | undefined) => `${thing}\u0000${name ?? ''}`;

/** The shadow a `$aws/things/{thing}/shadow[/name/{name}]/…` topic is of (as keyOf), else undefined. */
function shadowKeyOf(topic: string): string | undefined {
  const levels = topic.split('/');
  if (levels.length < 6 || levels[0] !== '$aws' || levels[1] !== 'things' || levels[3] !== 'shadow') return undefined;
  return levels[4] === 'name' ? keyOf(levels[2], levels[5]) : keyOf(levels[2], undefined);
}

/** Requests on the AWS IoT shadow topics of one broker, answered by clientToken. */
class ShadowChannel {
  private readonly pending = new Map<string, { topic: string; resolve: (response: ShadowResponse) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private tokens = 0;
  /** Requests waiting for one in flight to settle (beyond maxInFlight), in order. */
  private readonly queued: Array<{ start: () => void; reject: (error: Error) => void }> = [];
  private inFlight = 0;

  /**
   * @param tokenPrefix of this channel's tokens alone: a persistent cloud session may deliver, on a
   *   new connection, the answer to a request of the last one, which must not settle a new request.
   */
  constructor(
    readonly side: 'local' | 'cloud',
    private readonly tokenPrefix: string,
    private readonly publish: (topic: string, payload: string) => Promise<void>,
    private readonly maxInFlight = Infinity,
  ) {}

  request(rule: ShadowRule, operation: Operation, body: Record<string, unknown>): Promise<ShadowResponse> {
    return new Promise((resolve, reject) => {
      const start = () => {
        this.inFlight++;
        this.send(rule, operation, body).then(resolve, reject).finally(() => {
          this.inFlight--;
          this.queued.shift()?.start();
        });
      };
      if (this.inFlight < this.maxInFlight) start();
      else this.queued.push({ start, reject });
    });
  }

  private send(rule: ShadowRule, operation: Operation, body: Record<string, unknown>): Promise<ShadowResponse> {
    const clientToken = `${this.tokenPrefix}${++this.tokens}`;
    const topic = `${shadowPrefix(rule)}/${operation}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(clientToken);
        reject(new Error(`no answer from the ${this.side} shadow ${operation} in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(clientToken, { topic, resolve, reject, timer });
      this.publish(topic, JSON.stringify({ ...body, clientToken })).catch((error: Error) => {
        clearTimeout(timer);
        this.pending.delete(clientToken);
        reject(error);
      });
    });
  }

  /** An `/accepted` or `/rejected` message: settles the request with its clientToken, if ours. */
  receive(topic: string, payload: Buffer): void {
    const outcome = topic.endsWith('/accepted') ? 'accepted' : topic.endsWith('/rejected') ? 'rejected' : undefined;
    if (!outcome) return;
    let body: Record<string, any>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, any>;
    } catch {
      return;
    }
    const waiting = typeof body.clientToken === 'string' ? this.pending.get(body.clientToken) : undefined;
    // the answer of its own shadow and operation (`<request topic>/accepted|rejected`)
    if (!waiting || topic !== `${waiting.topic}/${outcome}`) return;
    clearTimeout(waiting.timer);
    this.pending.delete(body.clientToken);
    waiting.resolve({ outcome, body });
  }

  failAll(reason: string): void {
    for (const waiting of this.queued.splice(0)) waiting.reject(new Error(reason));
    for (const [token, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(reason));
      this.pending.delete(token);
    }
  }
}

/**
 * Keeps the configured local shadows in sync with the cloud's AWS IoT shadows over the cloud MQTT
 * connection: a full sync of each on every (re)connect, then one whenever either side publishes
 * `/update/documents`. Each sync reads both sides through their shadow topics (never the shadow
 * service's tables), merges three-way against the last synced document kept here, and writes the
 * differences with the version read as optimistic lock. Requests for one shadow are merged: a
 * change during a sync only marks it to run once more.
 */
export class ShadowSync {
  private readonly rules = new Map<string, ShadowRule>();
  private readonly running = new Map<string, { again: boolean }>();
  private readonly outcomes = new Map<string, { lastSync?: string; lastError?: string }>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  /** Each shadow's retries after failed syncs, started again by a sync that succeeds. */
  private readonly backoffs = new Map<string, Backoff>();
  private readonly local: ShadowChannel;
  /** The start of every clientToken of this process's requests, on either side. */
  private readonly ownTokens = `outpost-sync-${randomBytes(4).toString('hex')}-`;
  private channels = 0;
  private cloud: ShadowChannel | undefined;
  /** Shadows whose cloud topics the current connection is subscribed to: only those can sync (a request's answer needs it). */
  private readonly subscribed = new Set<string>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly bus: LocalBus,
    private readonly store: Store,
    rules: readonly ShadowRule[],
    private readonly cloudMqtt: Pick<CloudConfig['mqtt'], 'maxMessageBytes' | 'reconnectMaxMs' | 'refusedRetryMaxMs'>,
    private readonly wallMs: () => number,
    private readonly log: Logger,
  ) {
    // a cloud that does not answer is waited for as its connection is (reconnectMaxMs), one that refuses longer
    const limits = { minMs: RETRY_MIN_MS, maxMs: cloudMqtt.reconnectMaxMs, refusedMaxMs: cloudMqtt.refusedRetryMaxMs };
    for (const rule of rules) {
      const key = keyOf(rule.thing, rule.name);
      this.rules.set(key, rule);
      this.backoffs.set(key, new Backoff(limits, wallMs));
    }
    this.local = new ShadowChannel('local', this.channelTokens(), (topic, payload) => bus.publish({ topic, payload, qos: 1 }));
  }

  async start(): Promise<void> {
    await this.forgetUnconfigured();
    if (this.rules.size === 0) return;
    this.unsubscribe = await this.bus.subscribe('$aws/things/+/shadow/#', (message) => this.fromLocal(message));
  }

  /**
   * The bases of shadows no longer in `sync.shadows` go, as Greengrass's shadow manager deletes their
   * sync information: put back, a shadow syncs as new. Against a base from before, what either side
   * did while it was not synced (a cloud shadow deleted, say) would count as a change to bring over.
   */
  private async forgetUnconfigured(): Promise<void> {
    const synced = this.store.db.prepare('SELECT thing, name FROM sync_shadows').all() as Array<{ thing: string; name: string }>;
    const gone = synced.filter((row) => !this.rules.has(keyOf(row.thing, row.name)));
    if (gone.length === 0) return;
    await this.store.commit.run(() => {
      const forget = this.store.db.prepare('DELETE FROM sync_shadows WHERE thing = ? AND name = ?');
      for (const row of gone) forget.run(row.thing, row.name);
    });
  }

  async stop(): Promise<void> {
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    await this.unsubscribe?.();
    this.local.failAll('stopping');
    this.cloud?.failAll('stopping');
  }

  /**
   * Whether a cloud message is for shadow sync: a topic of a configured shadow. The rest of
   * `$aws/things/…` (AWS IoT Jobs, other shadows) is the inbound rules' to deliver.
   */
  handles(topic: string): boolean {
    const key = shadowKeyOf(topic);
    return key !== undefined && this.rules.has(key);
  }

  /**
   * A new cloud connection: subscribe to the shadows' topics there, then a full sync of each.
   * Requests go at QoS 1 unless the cloud takes QoS 0 only (MQTT-3.2.2-11): their answers say whether they arrived.
   */
  connected(client: CloudClient, limits: CloudLimits): void {
    if (this.rules.size === 0) return;
    const qos = Math.min(1, limits.maximumQoS) as 0 | 1;
    const channel = new ShadowChannel('cloud', this.channelTokens(), (topic, payload) => new Promise<void>((resolve, reject) => {
      const tooLarge = this.beyondCloudLimits(topic, payload, qos, limits);
      // never sent: the cloud would only end the connection, at every retry; refused as the cloud would
      if (tooLarge) return reject(new UpdateRefused(tooLarge, true));
      client.publish(topic, payload, { qos }, (error) => (error ? reject(error) : resolve()));
    }), CLOUD_MAX_IN_FLIGHT);
    this.cloud = channel;
    this.subscribed.clear();
    // One SUBSCRIBE per shadow: AWS IoT Core takes at most 8 filters in one, and a shadow the cloud
    // refuses (its policy) must not hold the others back.
    for (const key of this.rules.keys()) this.subscribeShadow(client, channel, key);
  }

  /**
   * Subscribes to one shadow's cloud topics, then syncs it. A refusal (SUBACK ≥ 0x80: the cloud's
   * policy) is asked again with the refusal's backoff for as long as the connection lasts, so a
   * policy the operator fixes takes effect without a reconnect, which a steady link may not make for months.
   */
  private subscribeShadow(client: CloudClient, channel: ShadowChannel, key: string): void {
    const rule = this.rules.get(key)!;
    const filters = [`${shadowPrefix(rule)}/get/+`, `${shadowPrefix(rule)}/update/+`, `${shadowPrefix(rule)}/delete/+`];
    client.subscribe(Object.fromEntries(filters.map((filter) => [filter, { qos: 1 as const }])), (error) => {
      if (this.cloud !== channel) return;
      if (error) {
        const outcome = this.outcomeOf(key);
        outcome.lastError = `could not subscribe to the cloud shadow topics: ${error.message}`;
        if (!(error instanceof SubscribeRefused)) {
          this.log.warn({ thing: rule.thing, shadow: rule.name, err: error }, 'could not subscribe to the cloud shadow topics');
          return;
        }
        const backoff = this.backoffs.get(key)!;
        const wait = backoff.failed(true);
        this.log.warn({ thing: rule.thing, shadow: rule.name, err: error, nextAttempt: backoff.nextAttempt }, 'the cloud refused the subscription to the shadow topics');
        this.retryTimers.set(key, setTimeout(() => {
          this.retryTimers.delete(key);
          backoff.attempting();
          if (this.cloud === channel) this.subscribeShadow(client, channel, key);
        }, wait).unref());
        return;
      }
      this.subscribed.add(key);
      this.schedule(key);
    });
  }

  private channelTokens(): string {
    return `${this.ownTokens}${++this.channels}-`;
  }

  /** Why a request is too large for the cloud to take, else undefined. */
  private beyondCloudLimits(topic: string, payload: string, qos: 0 | 1, limits: CloudLimits): string | undefined {
    const messageBytes = Buffer.byteLength(topic) + Buffer.byteLength(payload);
    // as for the outbound rules' messages: AWS IoT Core ends an MQTT 3.1.1 connection on a message beyond 128 KiB
    const maxMessageBytes = this.cloudMqtt.maxMessageBytes;
    if (messageBytes > maxMessageBytes) return `${messageBytes} bytes of topic and payload to ${topic}, larger than cloud.mqtt.maxMessageBytes ${maxMessageBytes}`;
    const limit = limits.maximumPacketSize;
    if (limit === null) return undefined;
    const packetBytes = publishPacketBytes(topic, Buffer.byteLength(payload), qos);
    // MQTT-3.2.2-15: the cloud would end the connection (0x95)
    return packetBytes > limit ? `a PUBLISH of ${packetBytes} bytes to ${topic}, larger than the cloud's Maximum Packet Size ${limit}` : undefined;
  }

  private outcomeOf(key: string): { lastSync?: string; lastError?: string } {
    let outcome = this.outcomes.get(key);
    if (!outcome) {
      outcome = {};
      this.outcomes.set(key, outcome);
    }
    return outcome;
  }

  disconnected(): void {
    // the next connect syncs every shadow anyway
    for (const [key, timer] of this.retryTimers) {
      clearTimeout(timer);
      this.backoffs.get(key)!.attempting();
    }
    this.retryTimers.clear();
    this.cloud?.failAll('cloud link down');
    this.cloud = undefined;
    this.subscribed.clear();
  }

  fromCloud(topic: string, payload: Buffer): void {
    this.cloud?.receive(topic, payload);
    this.changed(topic, payload);
  }

  status(): ShadowSyncStatus[] {
    return [...this.rules.entries()].map(([key, rule]) => {
      const outcome = this.outcomes.get(key) ?? {};
      const record = this.record(rule);
      return {
        thing: rule.thing, name: rule.name ?? null, direction: rule.direction, lastSync: outcome.lastSync ?? null, lastError: outcome.lastError ?? null,
        nextAttempt: this.backoffs.get(key)!.nextAttempt, refusedChanges: patchPaths(record.refusedByCloud), refusedByDevice: patchPaths(record.refusedByDevice),
      };
    });
  }

  private fromLocal(message: BusMessage): void {
    this.local.receive(message.topic, message.payload);
    this.changed(message.topic, message.payload);
  }

  /** A change of a configured shadow (see isChange): sync it. Other shadows' payloads are not even parsed. */
  private changed(topic: string, payload: Buffer): void {
    const key = shadowKeyOf(topic);
    if (key !== undefined && this.rules.has(key) && isChange(topic, payload, this.ownTokens)) this.schedule(key);
  }

  private schedule(key: string): void {
    // the next connect (or this one's SUBACK) syncs everything
    if (!this.cloud || !this.subscribed.has(key)) return;
    // after a failure, the retry due reads both sides and brings this change too: a device reporting
    // every second does not make a request a second to a cloud that refuses or does not answer
    if (this.retryTimers.has(key)) return;
    const running = this.running.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.running.set(key, state);
    void (async () => {
      do {
        state.again = false;
        await this.syncOnce(key);
      } while (state.again && this.cloud && !this.retryTimers.has(key));
      this.running.delete(key);
    })();
  }

  private async syncOnce(key: string): Promise<void> {
    const rule = this.rules.get(key)!;
    const outcome = this.outcomeOf(key);
    const backoff = this.backoffs.get(key)!;
    backoff.attempting();
    try {
      for (let conflicts = 0; ; conflicts++) {
        if (await this.reconcile(rule)) break;
        if (conflicts + 1 >= MAX_CONFLICTS) throw new Error(`version conflict ${MAX_CONFLICTS} times in a row`);
      }
      outcome.lastSync = new Date(this.wallMs()).toISOString();
      outcome.lastError = undefined;
      backoff.succeeded();
    } catch (error) {
      outcome.lastError = (error as Error).message;
      // a refused update waits for the shadow's next change or the next connect: sent again now, it would only be refused again
      if (!this.cloud || error instanceof UpdateRefused) {
        this.log.warn({ thing: rule.thing, shadow: rule.name, err: error }, 'shadow sync failed');
        return;
      }
      const wait = backoff.failed(error instanceof GetRefused);
      this.log.warn({ thing: rule.thing, shadow: rule.name, err: error, nextAttempt: backoff.nextAttempt }, 'shadow sync failed');
      this.retryTimers.set(key, setTimeout(() => {
        this.retryTimers.delete(key);
        this.schedule(key);
      }, wait).unref());
    }
  }

  /**
   * One read-merge-write round; false on a version conflict (someone wrote in between: read again).
   * The cloud is read first and written last: its round trips are the long ones, and the local side,
   * read just before its write, has no time to change in between. (Read together and written after
   * the cloud, a device reporting more often than a cloud write takes made every local write
   * conflict, and the cloud's changes never reached it.) A side that refuses its update for good
   * does not hold the other side's changes back. Changes a side refuses for their content are left
   * out of later updates while the other side holds them (see withoutRefused and setAside); those a
   * side refuses otherwise (401, 403: the gateway) stay pending.
   */
  private async reconcile(rule: ShadowRule): Promise<boolean> {
    const cloudChannel = this.cloud;
    if (!cloudChannel) throw new Error('cloud link down');
    const cloud = await read(cloudChannel, rule);
    const local = await read(this.local, rule);
    const { base, refusedByCloud, refusedByDevice } = this.record(rule);
    const localSeen = withoutRefused(local.state, base, refusedByCloud);
    const cloudSeen = withoutRefused(cloud.state, base, refusedByDevice);
    const plan = planSync(base, localSeen.state, cloudSeen.state, rule.direction);
    const deleted = sideToDelete(base, plan.base, local, cloud, rule.direction);
    if (deleted) {
      await remove(deleted === 'local' ? this.local : cloudChannel, rule);
      await this.saveBase(rule, { base: {}, refusedByCloud: {}, refusedByDevice: {} });
      return true;
    }
    // what this sync has committed so far (setAside adds to it): the base moves only after the refusals are in
    const kept: SyncRecord = { base, refusedByCloud: localSeen.stillRefused, refusedByDevice: cloudSeen.stillRefused };
    let refusedLocally: UpdateRefused | undefined;
    if (plan.local) {
      try {
        if (!(await writeInParts(this.local, rule, plan.local, local.version))) return false;
      } catch (error) {
        if (!(error instanceof UpdateRefused)) throw error;
        refusedLocally = error;
        if (error.ofContent) await this.setAside(rule, kept, 'device', error.refusedPart ?? plan.local, error);
      }
    }
    if (plan.local && plan.cloud && !refusedLocally) {
      // The device holds the merge now, the cloud's changes in it. Until the cloud write is done too,
      // the cloud state just read is what both sides agree on: from the old base, a cloud change made
      // meanwhile (whose cloud write then conflicts, or a kill -9 in between) would see the device's
      // copy of the cloud's earlier value as a change of the device's, and win over it in `reported`.
      // Should the cloud refuse its update, it stays the base: the device's changes are then still to send.
      kept.base = cloudSeen.state;
      await this.saveBase(rule, kept);
    }
    if (plan.cloud) {
      try {
        if (!(await writeInParts(cloudChannel, rule, plan.cloud, cloud.version))) return false;
      } catch (error) {
        if (error instanceof UpdateRefused && error.ofContent) await this.setAside(rule, kept, 'cloud', error.refusedPart ?? plan.cloud, error);
        throw error;
      }
    }
    if (!refusedLocally) {
      await this.saveBase(rule, { ...kept, base: plan.base });
      return true;
    }
    // The device's changes are in the cloud now, the cloud's still to bring down (or set aside): the
    // local state as the merge saw it is the base that says so.
    if (plan.cloud) await this.saveBase(rule, { ...kept, base: localSeen.state });
    throw refusedLocally;
  }

  /**
   * A side refused the other's changes for their content (too large, invalid): they are left out of
   * the shadow's later updates while the other side holds them, as Greengrass's shadow manager skips
   * such an update, rather than sent along with every later change and refused with it. Committed
   * with the base as it stands (the last one, or the cloud state saved before the cloud write), so
   * they stay unsynced; said in the log once, and in the status until the side holding them changes them.
   */
  private async setAside(rule: ShadowRule, kept: SyncRecord, refusedBy: 'cloud' | 'device', update: StatePatch, error: UpdateRefused): Promise<void> {
    if (refusedBy === 'cloud') kept.refusedByCloud = combinePatches(kept.refusedByCloud, update);
    else kept.refusedByDevice = combinePatches(kept.refusedByDevice, update);
    await this.saveBase(rule, kept);
    const said = refusedBy === 'cloud'
      ? 'the cloud refused these changes of the device for good: they are not sent again until the device changes them'
      : "the device's shadow refused these changes of the cloud for good: they are not applied again until the cloud changes them";
    this.log.warn({ thing: rule.thing, shadow: rule.name, keys: patchPaths(update), reason: error.message }, said);
  }

  private saveBase(rule: ShadowRule, record: SyncRecord): Promise<unknown> {
    const asJson = (refused: StatePatch) => (Object.keys(refused).length > 0 ? JSON.stringify(refused) : null);
    return this.store.commit.run(() => this.store.db.prepare(`INSERT INTO sync_shadows (thing, name, base, synced_at, refused, refused_by_device) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (thing, name) DO UPDATE SET base = excluded.base, synced_at = excluded.synced_at, refused = excluded.refused, refused_by_device = excluded.refused_by_device`)
      .run(rule.thing, rule.name ?? '', JSON.stringify(record.base), this.wallMs(), asJson(record.refusedByCloud), asJson(record.refusedByDevice)));
  }

  private record(rule: ShadowRule): SyncRecord {
    const row = this.store.db.prepare('SELECT base, refused, refused_by_device FROM sync_shadows WHERE thing = ? AND name = ?').get(rule.thing, rule.name ?? '') as
      { base: string; refused: string | null; refused_by_device: string | null } | undefined;
    const patchOf = (json: string | null | undefined) => (json ? JSON.parse(json) as StatePatch : {});
    return { base: row ? JSON.parse(row.base) as ShadowState : {}, refusedByCloud: patchOf(row?.refused), refusedByDevice: patchOf(row?.refused_by_device) };
  }
}

/** A side's shadow state; a shadow that does not exist (404) is empty, with no version. */
async function read(channel: ShadowChannel, rule: ShadowRule): Promise<ShadowSide> {
  const response = await channel.request(rule, 'get', {});
  if (response.outcome === 'rejected') {
    const { code, message } = response.body as { code?: unknown; message?: unknown };
    if (code === 404) return { state: {} };
    const reason = `the ${channel.side} shadow refused the get: ${code} ${message}`;
    throw code === 401 || code === 403 ? new GetRefused(reason) : new Error(reason);
  }
  const { desired, reported } = (response.body.state ?? {}) as { desired?: JsonObject; reported?: JsonObject };
  return { state: { ...(desired ? { desired } : {}), ...(reported ? { reported } : {}) }, version: response.body.version as number };
}

/** Writes the patch with the version read; its new version, or false on 409 (version conflict). */
async function write(channel: ShadowChannel, rule: ShadowRule, state: StatePatch, version: number | undefined): Promise<number | undefined | false> {
  const response = await channel.request(rule, 'update', { state, ...(version === undefined ? {} : { version }) });
  if (response.outcome === 'accepted') return typeof response.body.version === 'number' ? response.body.version : undefined;
  if (response.body.code === 409) return false;
  throw refusal(channel, 'update', response.body);
}

/**
 * Writes the patch; refused for its content, writes it again in halves, and the halves of a half
 * refused, down to single keys (patchLeaves), each with the version the last accepted one gave: the
 * keys the side takes get there, and only the refused ones are set aside (thrown as the refusal's
 * `refusedPart`), not a harmless key sent along with them (a temperature reported with a log the
 * cloud finds too large). At most MAX_PART_WRITES updates in all. False on a version conflict:
 * the parts written are in the side's shadow, and the next read sees them as agreed.
 */
async function writeInParts(channel: ShadowChannel, rule: ShadowRule, update: StatePatch, version: number | undefined): Promise<boolean> {
  let writes = 0;
  let expected = version;
  const refused: StatePatch[] = [];
  let firstRefusal: UpdateRefused | undefined;
  const attempt = async (leaves: StatePatch[]): Promise<boolean> => {
    writes++;
    try {
      const written = await write(channel, rule, leaves.reduce(combinePatches, {}), expected);
      if (written === false) return false;
      expected = written;
      return true;
    } catch (error) {
      if (!(error instanceof UpdateRefused) || !error.ofContent) throw error;
      firstRefusal ??= error;
      if (leaves.length === 1 || writes + 2 > MAX_PART_WRITES) {
        refused.push(...leaves);
        return true;
      }
      const half = Math.ceil(leaves.length / 2);
      return await attempt(leaves.slice(0, half)) && await attempt(leaves.slice(half));
    }
  };
  if (!(await attempt(patchLeaves(update)))) return false;
  if (!firstRefusal) return true;
  throw new UpdateRefused(firstRefusal.message, true, refused.reduce(combinePatches, {}));
}

/**
 * The side whose shadow goes, as Greengrass's shadow manager deletes it: the other side's shadow
 * was deleted since the last sync (it had a state then, and is not found now), and the merge
 * leaves nothing. A shadow that only lost its keys, or never had any, is synced as its state.
 */
function sideToDelete(base: ShadowState, merged: ShadowState, local: ShadowSide, cloud: ShadowSide, direction: ShadowRule['direction']): 'local' | 'cloud' | undefined {
  if (isEmptyState(base) || !isEmptyState(merged)) return undefined;
  const localGone = local.version === undefined;
  const cloudGone = cloud.version === undefined;
  if (cloudGone && !localGone && direction !== 'device-to-cloud') return 'local';
  if (localGone && !cloudGone && direction !== 'cloud-to-device') return 'cloud';
  return undefined;
}

/** Deletes a side's shadow (a delete takes no version: AWS ignores the request's content); one gone already is as good. */
async function remove(channel: ShadowChannel, rule: ShadowRule): Promise<void> {
  const response = await channel.request(rule, 'delete', {});
  if (response.outcome === 'accepted' || response.body.code === 404) return;
  throw refusal(channel, 'delete', response.body);
}

function refusal(channel: ShadowChannel, operation: Operation, body: Record<string, any>): Error {
  const { code, message } = body as { code?: unknown; message?: unknown };
  const reason = `the ${channel.side} shadow refused the ${operation}: ${code} ${message}`;
  if (typeof code !== 'number' || RETRYABLE_CODES.has(code)) return new Error(reason);
  return new UpdateRefused(reason, CONTENT_REFUSALS.has(code));
}
