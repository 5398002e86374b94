import type { Client, Subscription } from 'aedes';
import { markRefused } from '../refused-subscriptions.js';
import type { BrokerMetrics } from '../metrics.js';

type AuthorizeSubscribe = (client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void) => void;

interface FilterLengthDeps {
  maxFilterBytes: number;
  metrics: BrokerMetrics;
  /** Whether the persistent session of `clientId` holds `filter` already. */
  storesFilter(clientId: string, filter: string): boolean;
}

/**
 * A filter longer than mqtt.maxFilterBytes gets SUBACK 0x80 (MQTT-3.9.3), counted as
 * filter_too_long, before the policy and the subscription limits see it. Those limits count
 * filters, each costing about its own length again in aedes' router and in the store's index, and
 * MQTT lets one be 64 KiB: maxSubscriptions of them would be gigabytes. One a persistent session
 * holds already is restored whatever the bound is now, as the other limits do.
 */
export function refuseLongFilters(authorizeSubscribe: AuthorizeSubscribe, { maxFilterBytes, metrics, storesFilter }: FilterLengthDeps): AuthorizeSubscribe {
  return (client, subscription, callback) => {
    const filter = subscription.topic;
    if (Buffer.byteLength(filter) > maxFilterBytes && (client.clean || !storesFilter(client.id, filter))) {
      metrics.refusedSubscriptions.filter_too_long++;
      markRefused(subscription);
      return callback(null, null);
    }
    authorizeSubscribe(client, subscription, callback);
  };
}
