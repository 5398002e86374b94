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
 * id and are never repeats (aedes' rule).
 */
export function isRepeatDelivery(client: Client, packet: AedesPublishPacket): boolean {
  const { brokerId, brokerCounter } = packet as { brokerId?: string | null; brokerCounter?: number };
  if (!brokerId || brokerCounter === undefined) return false;
  if (lastHanded.get(client) === brokerCounter) return true;
  lastHanded.set(client, brokerCounter);
  return false;
}
