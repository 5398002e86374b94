import type { Client } from 'aedes';

/**
 * aedes numbers each PUBLISH as it arrives (brokerCounter) and drops, for each connection, one
 * numbered below the last it was handed: a cluster's brokers may hand it the same message twice.
 * But a message with an offline persistent session among its subscribers is handed on only once
 * queued for that session in SQLite, and messages published at the same moment without one
 * overtake it: a live subscriber got those and lost the first, which the broker had acknowledged
 * (a shadow update's /delta while a device held a session on it offline; two devices publishing at
 * once). One broker hands no message twice, so its own messages are never taken for duplicates.
 */
export function deliverOvertakenMessages(client: Client, brokerId: string): void {
  const seen = (client as unknown as { duplicates: Record<string, number> }).duplicates;
  Object.defineProperty(seen, brokerId, { get: () => 0, set: () => undefined, enumerable: true });
}
