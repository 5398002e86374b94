import type { BusMessage, LocalBus } from '../bus.js';

/**
 * MQTT topic triggers: each function's topic filters subscribed on the local bus; a matching
 * message becomes an asynchronous invocation of the function. The subscriptions are durable: a
 * device's PUBACK waits for `onMessage`'s promise, which resolves once the event is committed.
 */
export class MqttTriggers {
  /** Per function, the unsubscribe of each topic filter it is subscribed to. */
  private readonly subscriptions = new Map<string, Map<string, () => Promise<void>>>();

  constructor(private readonly bus: LocalBus, private readonly onMessage: (name: string, message: BusMessage) => Promise<void>) {}

  /**
   * Makes the function's subscriptions `topics`: the new ones first, then the ones gone go. A topic
   * kept keeps its subscription, so a redeploy has no moment without one (a message then would be
   * acknowledged and reach no function).
   */
  async set(name: string, topics: string[]): Promise<void> {
    const current = this.subscriptions.get(name) ?? new Map<string, () => Promise<void>>();
    this.subscriptions.set(name, current);
    const wanted = new Set(topics);
    for (const topic of wanted) {
      if (!current.has(topic)) current.set(topic, await this.bus.subscribe(topic, (message) => this.onMessage(name, message), { durable: true }));
    }
    const gone = [...current].filter(([topic]) => !wanted.has(topic));
    for (const [topic] of gone) current.delete(topic);
    await Promise.all(gone.map(([, unsubscribe]) => unsubscribe().catch(() => undefined)));
  }

  async remove(name: string): Promise<void> {
    const current = this.subscriptions.get(name);
    this.subscriptions.delete(name);
    await Promise.all([...current?.values() ?? []].map((unsubscribe) => unsubscribe().catch(() => undefined)));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.subscriptions.keys()].map((name) => this.remove(name)));
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The event of an MQTT-triggered invocation: the payload when it is JSON, else `{"base64": …}`. */
export function eventOf(payload: Buffer): string {
  try {
    const text = strictUtf8.decode(payload);
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify({ base64: payload.toString('base64') });
  }
}
