import type { SqlitePersistence } from './persistence/sqlite-persistence.js';

/**
 * A filter no client can hold: authorizeSubscribe refuses every `$outpost/` filter but dead letters'
 * and object events'.
 */
const SESSION_STATE_MARKER = '$outpost/session-state';

/**
 * MQTT-3.2.2-2: CONNACK's Session Present is 1 when the server has session state for a client
 * that asks to resume its session. aedes sets it only when it restores subscriptions, so a session
 * without any — holding messages in flight (a QoS 2 PUBLISH from its client acknowledged with
 * PUBREC and not released yet, messages queued for it), or nothing at all — was answered 0, and its
 * client, told its session is gone, discards its own state (MQTT 3.1.1 §3.2.2.2): the PUBREL never
 * comes, and the message acknowledged never goes out. Such a session's restore gets a filter that
 * is refused: aedes restores nothing and answers 1. aedes asks for the subscriptions of every
 * CONNECT with CleanSession 0, once admitted, and only then: its session is stored from then on.
 */
export function reportStoredSessions(persistence: SqlitePersistence): void {
  const subscriptionsOf = persistence.subscriptionsByClient.bind(persistence);
  persistence.subscriptionsByClient = async (client) => {
    const subscriptions = await subscriptionsOf(client);
    // once the client's writes before are in: its record failing (a full disk) fails no other read
    const stored = persistence.startSession(client.id);
    if (subscriptions.length > 0 || !stored) return subscriptions;
    return [{ topic: SESSION_STATE_MARKER, qos: 0 }];
  };
}
