import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes';
import { mayPublish, maySubscribe } from '../policy.js';
import { isDaemonOnlyTopic, isValidFilter, levelsMatch } from '../topic.js';
import type { Sessions } from '../sessions.js';
import { markRefused } from '../refused-subscriptions.js';
import type { BrokerMetrics } from '../metrics.js';
import type { Config } from '../../config/schema.js';
import { grants, highestGrant, keepFromLowering, recordGrant } from './overlapping-filters.js';
import { holdUntilQueueSent, isRepeatDelivery } from './publish-order.js';

/**
 * Where a refused PUBLISH goes. MQTT-3.3.5-2 lets the server acknowledge a
 * PUBLISH it will not deliver; aedes can only refuse by closing the connection,
 * so a refused packet is retargeted here and authorizeForward drops it.
 */
export const DROPPED_TOPIC = '$outpost/dropped';


interface AuthorizeDeps {
  sessions: Sessions;
  metrics: BrokerMetrics;
  mqtt: Pick<Config['mqtt'], 'maxSubscriptionsPerClient' | 'maxSubscriptions'>;
  /** The persistence of persistent sessions: what it stores, and what it sends again. */
  store: {
    /** Filters held for persistent sessions. */
    readonly storedFilters: number;
    storesFilter(clientId: string, filter: string): boolean;
    /** Drops a stored filter (its policy no longer allows it). */
    forgetFilter(client: Client, filter: string): void;
    /** Whether this queued PUBLISH of the client was sent before (it is being sent again), asked once. */
    takeResent(clientId: string, messageId: number): boolean;
    /** Whether the client's session queue sends it this publication (then not live too), or it was queued after the queue's read, or not queued for it. */
    queueDelivery(client: Client, packet: AedesPublishPacket): 'sends' | 'after' | 'none';
  };
}

export function createAuthorizePublish({ sessions, metrics }: AuthorizeDeps) {
  return (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) => {
    // client is null for a will published on behalf of a client that is gone; it was authorised at CONNECT.
    if (client === null) return callback(null);
    metrics.messagesIn++;
    // MQTT-3.3.1-3: a subscriber's copy carries its own DUP flag, not the publisher's
    packet.dup = false;
    const session = sessions.get(client);
    const allowed = session !== undefined
      && !isDaemonOnlyTopic(packet.topic)
      && mayPublish(session.policy, packet.topic);
    if (!allowed) {
      metrics.dropped.not_authorized++;
      packet.topic = DROPPED_TOPIC;
      packet.retain = false;
    }
    callback(null);
  };
}

/**
 * A refused filter gets SUBACK 0x80 (MQTT-3.9.3) by answering with a null subscription.
 * Of the daemon's own `$outpost/` topics only dead letters and object events may be watched, by a
 * policy that names them.
 */
export function createAuthorizeSubscribe({ sessions, metrics, mqtt, store }: AuthorizeDeps) {
  return (client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void) => {
    const refuse = () => {
      markRefused(subscription);
      callback(null, null);
    };
    const session = sessions.get(client);
    // closing meanwhile: nothing to grant, and nothing stored to change
    if (session === undefined || client.closed) return refuse();
    const filter = subscription.topic;
    const stored = !client.clean && store.storesFilter(client.id, filter);
    const allowed = isValidFilter(filter)
      && (!filter.startsWith('$outpost/') || filter.startsWith('$outpost/dlq/') || filter.startsWith('$outpost/objects/'))
      && maySubscribe(session.policy, filter);
    if (!allowed) {
      // a stored filter restored at reconnect that the policy no longer allows: dropped for good
      if (stored) store.forgetFilter(client, filter);
      return refuse();
    }
    // the limits bound new filters; one a persistent session holds already is kept whatever they are now
    if (!session.filters.has(filter) && !stored) {
      if (session.filters.size >= mqtt.maxSubscriptionsPerClient) {
        metrics.refusedSubscriptions.per_client_limit++;
        return refuse();
      }
      // memory, not policy: aedes' router and the store's index each cost ~1 KiB of heap per filter
      if (sessions.liveFilters + store.storedFilters >= mqtt.maxSubscriptions) {
        metrics.refusedSubscriptions.broker_limit++;
        return refuse();
      }
    }
    sessions.addFilter(session, filter);
    recordGrant(client, filter, subscription.qos);
    // Restored subscriptions of a persistent session pass through here too.
    if (filter.startsWith('+') || filter.startsWith('#')) session.leadingWildcard = true;
    callback(null, subscription);
  };
}

/**
 * Last check before a packet goes to a subscriber: drops refused publishes, and
 * keeps `$` topics from subscribers who only match them through a leading
 * wildcard (MQTT-4.7.2-1), which aedes' matcher would otherwise deliver.
 */
export function createAuthorizeForward({ sessions, store }: AuthorizeDeps) {
  return (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    if (isRepeatDelivery(client, packet)) return null;
    const topic = packet.topic;
    if (topic.charCodeAt(0) === 36 /* $ */) {
      if (topic === DROPPED_TOPIC) return null;
      // a client policy allowing `$SYS/#` is for Mosquitto's `$SYS/broker/…` figures (SystemTopics),
      // not aedes' own `$SYS/<broker id>/…` (heartbeat, new/clients, new/subscribes…: other clients'
      // ids and filters), which are between brokers of a cluster
      if (topic.startsWith('$SYS/') && !topic.startsWith('$SYS/broker/')) return null;
      if (sessions.get(client)?.leadingWildcard && !deliveredByNamedFilter(client, topic)) return null;
    }
    // MQTT-3.3.5-1, MQTT-3.8.4-6: the publication's QoS, at most the highest the client was granted
    // among its matching filters. The packet is this delivery's own copy.
    if (packet.qos > 0) {
      const granted = highestGrant(client, topic);
      keepFromLowering(client, topic, granted);
      // Only a session's queue hands a packet here with its identifier (live deliveries get theirs
      // after this): one no filter of the client's takes any more (its policy dropped it) is dropped
      // from the queue (aedes clears it on null), not sent at QoS 0 and kept for ever. A client
      // closing meanwhile had its filters refused as it restored them: its queue stays as it is.
      const queued = packet.messageId !== undefined;
      if (queued && granted === 0) return client.closed ? packet : null;
      if (!queued && granted > 0) {
        const queue = store.queueDelivery(client, packet);
        if (queue === 'sends') return null;
        if (queue === 'after' && holdUntilQueueSent(client, packet)) return null;
      }
      packet.qos = Math.min(packet.qos, granted) as AedesPublishPacket['qos'];
      // MQTT-3.3.1-1: one sent before the client went away is a duplicate now. Its RETAIN is the
      // store's: cleared for a publication it queued (MQTT-3.3.1-9), kept for a retained message
      // sent on SUBSCRIBE (MQTT-3.3.1-8).
      if (queued && store.takeResent(client.id, packet.messageId!)) packet.dup = true;
    }
    return packet;
  };
}

/**
 * aedes delivers a publication to a client once, through whichever of its matching subscriptions
 * the router calls first; a QoS 0 one would send it at QoS 0 although another grants more. Such a
 * delivery is sent on through the QoS path, where authorizeForward sets the QoS. Call it before the
 * client's first SUBSCRIBE: aedes takes the deliver function when a subscription is added.
 */
export function deliverAtGrantedQos(client: Client): void {
  const target = client as unknown as { deliver0: Deliver; deliverQoS: Deliver };
  const deliverQoS0 = target.deliver0;
  target.deliver0 = (packet, callback) => {
    if (packet.qos > 0 && highestGrant(client, packet.topic) > 0) return target.deliverQoS(packet, callback);
    return deliverQoS0(packet, callback);
  };
}

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

/**
 * Whether a `$` topic reached this client through a filter that names its
 * first level; asked only of clients that hold a filter starting with a
 * wildcard (the session's `leadingWildcard`).
 */
function deliveredByNamedFilter(client: Client, topic: string): boolean {
  for (const [filter, { levels }] of grants(client)) {
    const first = filter.charCodeAt(0);
    if (first !== 43 && first !== 35 && levelsMatch(levels, topic)) return true;
  }
  return false;
}
