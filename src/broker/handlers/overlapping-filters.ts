import { Readable } from 'node:stream';
import type { Aedes, Client, Subscription } from 'aedes';
import { levelsMatch } from '../topic.js';

// MQTT-3.3.5-1 (MQTT 5: MQTT-3.3.4-2): a publication matching several of a client's filters goes to
// it at the highest QoS they grant. aedes delivers it once, at the QoS authorizeForward sets, then
// lowers it to the QoS of the client's filter equal to the topic whatever the others grant (aedes#1074,
// so in 1.2.0: deliverQoS reads `client.subscriptions[topic].qos` a turn later). So the grants live
// here, per client and filter, and that filter's aedes Subscription is given the topic's highest grant
// as each delivery is authorized (not at each SUBSCRIBE and UNSUBSCRIBE: a persistent session's restore
// emits no event). aedes reads Subscription.qos nowhere else but to tell whether a SUBSCRIBE changes
// the filter, replacing the object if so; the grant here follows the SUBSCRIBE either way. SUBACK, the
// store and $SYS take the granted QoS from the SUBSCRIBE itself.

interface Grant {
  qos: number;
  /** the filter split into levels once: every delivery at QoS > 0 matches against them */
  levels: string[];
}

const grantsOf = new WeakMap<Client, Map<string, Grant>>();
const NO_GRANTS: ReadonlyMap<string, Grant> = new Map();

/** The filters the client holds, each with the QoS granted to it. */
export function grants(client: Client): ReadonlyMap<string, Grant> {
  return grantsOf.get(client) ?? NO_GRANTS;
}

/** A SUBSCRIBE, or a persistent session's restore, granted `filter` at `qos` (it replaces an earlier grant: MQTT-3.8.4-3). */
export function recordGrant(client: Client, filter: string, qos: number): void {
  let held = grantsOf.get(client);
  if (held === undefined) grantsOf.set(client, held = new Map());
  held.set(filter, { qos, levels: filter.split('/') });
}

/** The highest QoS among the client's filters matching `topic` (leading wildcards never match a `$` topic: MQTT-4.7.2-1, in levelsMatch). */
export function highestGrant(client: Client, topic: string): number {
  return highestOf(grants(client).values(), topic);
}

function highestOf(grantsHeld: Iterable<Grant>, topic: string): number {
  let highest = 0;
  for (const grant of grantsHeld) if (grant.qos > highest && levelsMatch(grant.levels, topic)) highest = grant.qos;
  return highest;
}

/** Gives the client's filter equal to `topic`, if any, the topic's highest grant, which aedes then lowers the delivery to. */
export function keepFromLowering(client: Client, topic: string, highest: number): void {
  const exact = (client as unknown as { subscriptions: Record<string, { qos: number } | undefined> }).subscriptions[topic];
  if (exact !== undefined) exact.qos = highest;
}

type RetainedSource = { createRetainedStreamCombi(patterns: readonly string[]): Readable };

/**
 * Keeps the grants in step with UNSUBSCRIBE, and sends the retained messages a SUBSCRIBE brings at
 * the QoS its own filters grant (MQTT-3.8.4-6), not raised by filters the client held before: the
 * highest of them when several match (aedes sends each retained topic once). aedes asks the store for
 * them in the same turn as it emits 'subscribe' with the granted QoS. The stream ends when its client
 * leaves: aedes would read it to its end (20,000 messages for `#`) for each client that left.
 */
export function followGrants(broker: Aedes, retained: RetainedSource): void {
  broker.on('unsubscribe', (filters: string[], client: Client) => {
    const held = grantsOf.get(client);
    for (const filter of filters) held?.delete(filter);
  });
  let answering: { subscriptions: Subscription[]; client: Client } | undefined;
  broker.on('subscribe', (subscriptions: Subscription[], client: Client) => {
    answering = { subscriptions, client };
    process.nextTick(() => { answering = undefined; });
  });
  const retainedMatching = retained.createRetainedStreamCombi.bind(retained);
  retained.createRetainedStreamCombi = (patterns) => {
    const subscribed = answering;
    answering = undefined;
    const stream = retainedMatching(patterns);
    if (subscribed === undefined) return stream;
    const granted = subscribed.subscriptions.filter((subscription) => patterns.includes(subscription.topic))
      .map((subscription) => ({ qos: subscription.qos, levels: subscription.topic.split('/') }));
    return Readable.from(whileConnected(stream, subscribed.client, granted.length === patterns.length ? granted : undefined));
  };
}

/**
 * The retained messages for `client` until it leaves, each lowered to its grant (when known) in
 * place: the store's are fresh objects, whose payload is read only when sent.
 */
async function* whileConnected(stream: Readable, client: Client, granted: Grant[] | undefined): AsyncGenerator<{ topic: string; qos: number }> {
  for await (const packet of stream as AsyncIterable<{ topic: string; qos: number }>) {
    if ((client as unknown as { closed: boolean }).closed) return;
    if (granted) packet.qos = Math.min(packet.qos, highestOf(granted, packet.topic));
    yield packet;
  }
}
