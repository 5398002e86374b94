import type { Logger } from 'pino';
import type { CloudClient } from './cloud-client.js';
import type { BusMessage, LocalBus } from '../bus.js';
import type { GroupCommit } from '../store/group-commit.js';
import { topicMatches } from '../broker/topic.js';
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

  /** Resolves once committed (the device's PUBACK follows); rejects to withhold it (reject-new when full, or a failed write). */
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
      this.log.error({ err: error, rule: rule.name }, 'could not store a message in the sync outbox');
      throw error;
    }
    if (outcome.stored) {
      this.outbox.markDurable(outcome.id);
      this.committed(item.live);
      return;
    }
    this.activity.failed(rule.name, `outbox full (sync.maxBytes): ${outcome.policy}`);
    if (outcome.policy === 'reject-new') throw new OutboxFullError(rule.name);
  }
}

/** `cloud filter → local topic`: a cloud message is acknowledged once the local broker took it. */
export class InboundBridge {
  /** Every filter was granted in the cloud session, as far as this process knows (a restart subscribes again). */
  private subscribedInSession = false;

  constructor(
    private readonly bus: LocalBus,
    private readonly rules: readonly InboundRule[],
    private readonly echoes: EchoGuard,
    private readonly log: Logger,
  ) {}

  /** A cloud message; mqtt.js sends its PUBACK once `done` is called, i.e. after the local broker took it. */
  deliver(packet: { topic: string; payload: Buffer | string }, done: (error?: Error) => void): void {
    const rule = this.rules.find((candidate) => topicMatches(candidate.from, packet.topic));
    if (!rule) {
      done();
      return;
    }
    const topic = renderTemplate(rule.to, { topic: packet.topic, clientId: '' });
    const payload = Buffer.from(packet.payload);
    this.echoes.expect(payload);
    this.bus.publish({ topic, payload, qos: rule.qos as 0 | 1 })
      .then(() => done(), (error: Error) => {
        this.log.warn({ err: error, topic }, 'could not publish a cloud message locally');
        done(error);
      })
      .finally(() => this.echoes.settled(payload));
  }

  /**
   * Subscribes to the rules' filters on a new connection, at most FILTERS_PER_SUBSCRIBE in one
   * request; not when the cloud kept the session in which this process subscribed them all: a
   * SUBSCRIBE sends the filters' retained messages again (MQTT-3.8.4-3), and a retained command
   * would run again after every drop of the link.
   */
  subscribe(client: CloudClient, sessionPresent: boolean): void {
    if (sessionPresent && this.subscribedInSession) return;
    this.subscribedInSession = false;
    let waiting = Math.ceil(this.rules.length / FILTERS_PER_SUBSCRIBE);
    for (let first = 0; first < this.rules.length; first += FILTERS_PER_SUBSCRIBE) {
      const rules = this.rules.slice(first, first + FILTERS_PER_SUBSCRIBE);
      client.subscribe(Object.fromEntries(rules.map((rule) => [rule.from, { qos: rule.qos as 0 | 1 }])), (error) => {
        if (error) this.log.warn({ err: error, rules: rules.map((rule) => rule.name) }, 'could not subscribe to inbound rules on the cloud broker');
        else if (--waiting === 0) this.subscribedInSession = true;
      });
    }
  }
}
