import type { Logger } from 'pino';
import { SubscribeRefused, type CloudClient } from './cloud-client.js';
import type { Backoff } from './backoff.js';
import type { BusMessage, LocalBus } from '../bus.js';
import type { GroupCommit } from '../store/group-commit.js';
import { isValidTopicName, topicMatches } from '../broker/topic.js';
import type { InboundRule, OutboundRule } from './config.js';
import type { NewItem, Outbox } from './outbox.js';
import type { RuleActivity } from './activity.js';

/** AWS IoT Core's quota of filters in one SUBSCRIBE ("subscriptions per subscribe request"); it refuses more. */
const FILTERS_PER_SUBSCRIBE = 8;

/** Thrown to withhold a device's PUBACK when a reject-new rule's outbox is full. */
export class OutboxFullError extends Error {
  constructor(rule: string) {
    super(`sync outbox full (sync.maxBytes); rule ${rule} rejects new messages`);
    this.name = 'OutboxFullError';
  }
}

/**
 * Local messages an inbound rule published, so an outbound rule whose filter also matches them
 * does not send them straight back to the cloud. Told by their payload's Buffer, which the bus hands
 * to its subscribers as published: the daemon's other publishes to the same topic meanwhile (a
 * function's, a device's telemetry) are not taken for echoes.
 */
export class EchoGuard {
  private readonly expected = new Set<Buffer>();

  expect(payload: Buffer): void {
    this.expected.add(payload);
  }

  /** Whether this is one of ours (only the daemon's own publishes, which have no client id, can be). */
  isEcho(message: BusMessage): boolean {
    return message.clientId === undefined && this.expected.has(message.payload);
  }

  /** The bus delivered it to every rule, or the publish failed. */
  settled(payload: Buffer): void {
    this.expected.delete(payload);
  }
}

export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{(topic|clientId)\}/g, (_match, name: string) => values[name]);
}

/** `local filter → cloud topic`: each matching message is committed to the outbox before its publisher is acknowledged. */
export class OutboundBridge {
  private unsubscribers: Array<() => Promise<void>> = [];
  /** A message could not be stored (a full disk) and none has been since: said once, at its start. */
  private storeFailing = false;

  constructor(
    private readonly bus: LocalBus,
    private readonly rules: readonly OutboundRule[],
    private readonly outbox: Outbox,
    private readonly commit: GroupCommit,
    private readonly echoes: EchoGuard,
    private readonly activity: RuleActivity,
    private readonly committed: (live: boolean) => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const rule of this.rules) {
      this.unsubscribers.push(await this.bus.subscribe(rule.from, (message) => this.store(rule, message), { durable: true }));
    }
  }

  async stop(): Promise<void> {
    const unsubscribers = this.unsubscribers;
    this.unsubscribers = [];
    await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe().catch(() => undefined)));
  }

  /**
   * Resolves once committed (the device's PUBACK follows); rejects to withhold it (reject-new when
   * full, or a failed write), which closes the publisher's connection. Not for QoS 0: there is no
   * PUBACK to withhold and nothing is sent again, so a closed connection would only cut the device
   * off (its subscriptions too), on every message while the outbox stays full.
   */
  private async store(rule: OutboundRule, message: BusMessage): Promise<void> {
    if (this.echoes.isEcho(message)) return;
    const item: NewItem = {
      kind: 'message',
      rule: rule.name,
      priority: rule.priority,
      live: rule.liveFirst,
      cloudTopic: renderTemplate(rule.to, { topic: message.topic, clientId: message.clientId ?? 'outpostd' }),
      localTopic: message.topic,
      payload: message.payload,
      qos: rule.qos as 0 | 1,
      envelope: rule.id === 'envelope',
      ttlMs: rule.ttlSeconds * 1000,
    };
    let outcome;
    try {
      outcome = await this.commit.run(() => this.outbox.enqueue(item, rule.overflow));
    } catch (error) {
      // e.g. SQLITE_FULL: nothing stored, so the device is not acknowledged and sends it again.
      this.outbox.reloadFigures();
      this.outbox.countNotStored(rule.name);
      this.activity.failed(rule.name, `could not store: ${(error as Error).message}`);
      // once per spell (a full disk refuses every message, each device resending): the rule's
      // `rejected` count and last failure in `outpost sync status` go on counting
      if (!this.storeFailing) this.log.error({ err: error, rule: rule.name }, 'could not store a message in the sync outbox (and, until it can again, the next ones: see outpost sync status)');
      this.storeFailing = true;
      if (message.qos > 0) throw error;
      return;
    }
    if (this.storeFailing) {
      this.storeFailing = false;
      this.log.info({ rule: rule.name }, 'the sync outbox stores messages again');
    }
    if (outcome.stored) {
      this.outbox.markDurable(outcome.id);
      this.committed(item.live);
      return;
    }
    this.activity.failed(rule.name, `outbox full (sync.maxBytes): ${outcome.policy}`);
    if (outcome.policy === 'reject-new' && message.qos > 0) throw new OutboxFullError(rule.name);
  }
}

/** A failed local publish of a cloud message (e.g. a full disk) is tried again after this, doubling up to INBOUND_RETRY_MAX_MS. */
const INBOUND_RETRY_MIN_MS = 100;
const INBOUND_RETRY_MAX_MS = 5000;
/**
 * Cloud messages waiting for a local publish: behind another on their local topic, or for a failed
 * one's retry. Beyond this the cloud's connection is read no more until half of them went (TCP
 * holds the rest, and the cloud waits): ending it instead had the cloud send them all again at once
 * on the next connection, a burst of 3,000 ended every connection, each message came many times,
 * and the daemon crashed on a publish answered after its queue was gone.
 */
const INBOUND_MAX_WAITING = 1000;

interface InboundMessage {
  rule: string;
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  done: () => void;
}

/**
 * `cloud filter → local topic`: a cloud message is acknowledged once the local broker took it. One
 * it cannot take yet (a full disk) is tried again with backoff for as long as the connection lasts,
 * unacknowledged; the messages behind it for the same local topic wait, in order, and the others
 * go on (their PUBACKs still leave in the order the messages came, MQTT-4.6.0-2: the client's).
 */
export class InboundBridge {
  /** Every filter was granted in the cloud session, as far as this process knows (a restart subscribes again). */
  private subscribedInSession = false;
  private client: CloudClient | undefined;
  /** By local topic, the messages still to publish, the first one being published or waiting for its retry. */
  private readonly queues = new Map<string, InboundMessage[]>();
  private waiting = 0;
  /** The connection is not read while `waiting` is over INBOUND_MAX_WAITING (see `hold`). */
  private paused = false;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** The next SUBSCRIBE of the filters the cloud refused. */
  private subscribeRetry: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: LocalBus,
    private readonly rules: readonly InboundRule[],
    private readonly echoes: EchoGuard,
    /** Per inbound rule: messages the local broker took, and failed attempts with the last reason. */
    private readonly activity: RuleActivity,
    /** Between SUBSCRIBEs of filters the cloud refused. */
    private readonly subscribeBackoff: Backoff,
    private readonly log: Logger,
  ) {}

  /** A cloud message; the client sends its PUBACK once `done` is called, i.e. after the local broker took it. */
  deliver(packet: { topic: string; payload: Buffer | string }, done: () => void): void {
    // read from a connection ended meanwhile: unacknowledged, the cloud sends it again
    if (this.client === undefined) return;
    const rule = this.rules.find((candidate) => topicMatches(candidate.from, packet.topic));
    if (!rule) {
      done();
      return;
    }
    const topic = renderTemplate(rule.to, { topic: packet.topic, clientId: '' });
    if (!isValidTopicName(topic)) {
      // acknowledged, or the cloud would send it again on every connection
      this.activity.failed(rule.name, `dropped a cloud message for ${JSON.stringify(topic)}: not a local topic name (a wildcard, a control character)`);
      this.log.warn({ rule: rule.name, topic }, 'dropped a cloud message whose local topic is no topic name the local broker takes');
      done();
      return;
    }
    const message: InboundMessage = { rule: rule.name, topic, payload: Buffer.from(packet.payload), qos: rule.qos as 0 | 1, done };
    const queue = this.queues.get(message.topic);
    if (!queue) {
      this.queues.set(message.topic, [message]);
      this.publish(message, this.client, 0);
      return;
    }
    this.hold();
    queue.push(message);
  }

  /** One more message waits (behind another, or for its retry); beyond INBOUND_MAX_WAITING the connection is read no more. */
  private hold(): void {
    if (++this.waiting <= INBOUND_MAX_WAITING || this.paused) return;
    this.paused = true;
    this.client?.pause();
    this.log.info({ waiting: this.waiting }, 'many cloud messages wait for a local publish; reading no more from the cloud until half of them went');
  }

  /** A waiting message went: the connection is read again once half of the bound is left. */
  private went(): void {
    this.waiting--;
    if (!this.paused || this.waiting > INBOUND_MAX_WAITING / 2) return;
    this.paused = false;
    this.client?.resume();
  }

  /** A connection is up: subscribes (see `subscribe`) and delivers its messages. */
  connected(client: CloudClient, sessionPresent: boolean): void {
    this.client = client;
    this.subscribe(client, sessionPresent);
  }

  /** The unacknowledged messages are dropped: the cloud sends them again on the next connection. */
  disconnected(): void {
    this.client = undefined;
    clearTimeout(this.subscribeRetry);
    this.subscribeRetry = undefined;
    this.subscribeBackoff.attempting();
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    this.queues.clear();
    this.waiting = 0;
    this.paused = false;
  }

  private publish(message: InboundMessage, client: CloudClient, failures: number): void {
    this.echoes.expect(message.payload);
    this.bus.publish({ topic: message.topic, payload: message.payload, qos: message.qos })
      .finally(() => this.echoes.settled(message.payload))
      .then(() => {
        if (this.client !== client) return;
        if (failures > 0) {
          this.went();
          this.log.info({ topic: message.topic, failures }, 'published a cloud message locally after failed attempts');
        }
        this.activity.succeeded(message.rule);
        message.done();
        this.next(message.topic, client);
      }, (error: Error) => {
        if (this.client !== client) return;
        this.activity.failed(message.rule, `could not publish locally: ${error.message}`);
        if (failures === 0) {
          this.log.warn({ err: error, topic: message.topic }, 'could not publish a cloud message locally; retrying, unacknowledged');
          this.hold();
        }
        const delay = Math.min(INBOUND_RETRY_MAX_MS, INBOUND_RETRY_MIN_MS * 2 ** Math.min(failures, 16));
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          if (this.client === client) this.publish(message, client, failures + 1);
        }, delay);
        this.retryTimers.add(timer);
      });
  }

  /** The first message of the topic went through: the next one in its queue goes. */
  private next(topic: string, client: CloudClient): void {
    const queue = this.queues.get(topic)!;
    queue.shift();
    const following = queue[0];
    if (!following) {
      this.queues.delete(topic);
      return;
    }
    this.went();
    this.publish(following, client, 0);
  }

  /**
   * Subscribes to the rules' filters on a new connection, at most FILTERS_PER_SUBSCRIBE in one
   * request; not when the cloud kept the session in which this process subscribed them all: a
   * SUBSCRIBE sends the filters' retained messages again (MQTT-3.8.4-3), and a retained command
   * would run again after every drop of the link.
   */
  private subscribe(client: CloudClient, sessionPresent: boolean): void {
    if (sessionPresent && this.subscribedInSession) return;
    this.subscribedInSession = false;
    this.subscribeRules(client, this.rules);
  }

  /**
   * Subscribes to `rules`' filters. Those the cloud refuses (SUBACK ≥ 0x80: its policy) are asked
   * again, alone (a granted filter subscribed again would bring its retained messages again), with
   * the refusal's backoff for as long as the connection lasts: a policy the operator fixes takes
   * effect without a reconnect, which a steady link may not make for months.
   */
  private subscribeRules(client: CloudClient, rules: readonly InboundRule[]): void {
    let waiting = Math.ceil(rules.length / FILTERS_PER_SUBSCRIBE);
    let failed = false;
    const refused: InboundRule[] = [];
    for (let first = 0; first < rules.length; first += FILTERS_PER_SUBSCRIBE) {
      const batch = rules.slice(first, first + FILTERS_PER_SUBSCRIBE);
      client.subscribe(Object.fromEntries(batch.map((rule) => [rule.from, { qos: rule.qos as 0 | 1 }])), (error) => {
        if (this.client !== client) return;
        if (error instanceof SubscribeRefused) {
          for (const { filter, code } of error.refused) {
            for (const rule of batch.filter((candidate) => candidate.from === filter)) {
              refused.push(rule);
              this.activity.failed(rule.name, `the cloud refused the subscription to ${filter} (0x${code.toString(16)})`);
            }
          }
        } else if (error) {
          failed = true;
          this.log.warn({ err: error, rules: batch.map((rule) => rule.name) }, 'could not subscribe to inbound rules on the cloud broker');
        }
        if (--waiting > 0) return;
        if (refused.length > 0) this.retryRefused(client, refused);
        else if (!failed) {
          this.subscribeBackoff.succeeded();
          this.subscribedInSession = true;
        }
      });
    }
  }

  private retryRefused(client: CloudClient, refused: InboundRule[]): void {
    const wait = this.subscribeBackoff.failed(true);
    this.log.warn({ rules: refused.map((rule) => rule.name), nextAttempt: this.subscribeBackoff.nextAttempt }, 'the cloud refused the subscription to inbound rules\' filters');
    this.subscribeRetry = setTimeout(() => {
      this.subscribeRetry = undefined;
      this.subscribeBackoff.attempting();
      if (this.client === client) this.subscribeRules(client, refused);
    }, wait).unref();
  }
}
