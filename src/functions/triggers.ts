import type { BusMessage, LocalBus } from '../bus.js';

/**
 * MQTT topic triggers: each function's topic filters subscribed on the local bus; a matching
 * message becomes an asynchronous invocation of the function. The subscriptions are durable: a
 * device's PUBACK waits for `onMessage`'s promise, which resolves once the event is committed.
 */
export class MqttTriggers {
  private readonly subscriptions = new Map<string, Array<() => Promise<void>>>();

  constructor(private readonly bus: LocalBus, private readonly onMessage: (name: string, message: BusMessage) => Promise<void>) {}

  /** Replaces the function's subscriptions with `topics`. */
  async set(name: string, topics: string[]): Promise<void> {
    await this.remove(name);
    const unsubscribers: Array<() => Promise<void>> = [];
    this.subscriptions.set(name, unsubscribers);
    for (const topic of topics) unsubscribers.push(await this.bus.subscribe(topic, (message) => this.onMessage(name, message), { durable: true }));
  }

  async remove(name: string): Promise<void> {
    const unsubscribers = this.subscriptions.get(name) ?? [];
    this.subscriptions.delete(name);
    await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe().catch(() => undefined)));
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
