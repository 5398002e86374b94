import type { AedesPublishPacket, Client } from 'aedes';

/** The number (brokerCounter) of the last message handed to each connection. */
const lastHanded = new WeakMap<Client, number>();

/**
 * aedes numbers each PUBLISH as it arrives (brokerCounter) and drops, for each connection, one
 * numbered at or below the last it handed on: the same message again, through another of the
 * client's filters that match it. But a message with an offline persistent session among its
 * subscribers is handed on only once queued for that session in SQLite, and messages published at
 * the same moment without one overtake it; a live subscriber got those and lost the first, which the
 * broker had acknowledged (a shadow update's /delta while a device held a session on it offline; two
 * devices publishing at once; aedes#955, #994). So aedes' comparison is turned off here and
 * `isRepeatDelivery`, called from authorizeForward, drops only the same message again.
 */
export function deliverOvertakenMessages(client: Client, brokerId: string): void {
  const handed = (client as unknown as { duplicates: Record<string, number> }).duplicates;
  Object.defineProperty(handed, brokerId, { get: () => 0, set: () => undefined, enumerable: true });
}

/**
 * Whether `packet` is the message just handed to `client`: aedes hands a message once per matching
 * filter, one after another in the same turn. Retained messages sent on SUBSCRIBE carry no broker
 * id and are never repeats (aedes' rule). Nor is a persistent session's queued copy, sent again at
 * its CONNECT (it has a packet identifier already): aedes clears a queued message it is told not
 * to forward, so one handed live to the connection a moment before, and not acknowledged yet (the
 * client gone before it read it), was lost from the session (1 of 600 messages in a test of
 * connections taking a session over from each other, every few runs). Sent twice instead: QoS 1.
 */
export function isRepeatDelivery(client: Client, packet: AedesPublishPacket): boolean {
  const { brokerId, brokerCounter, messageId } = packet as { brokerId?: string | null; brokerCounter?: number; messageId?: number };
  if (!brokerId || brokerCounter === undefined) return false;
  const repeat = lastHanded.get(client) === brokerCounter;
  lastHanded.set(client, brokerCounter);
  return repeat && messageId === undefined;
}
