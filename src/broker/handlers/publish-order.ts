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

/** Live publications held for a connection until its session's queue is written out, by broker counter. */
const heldForQueue = new WeakMap<Client, Map<number, AedesPublishPacket>>();
/**
 * What all connections hold at most together. A connection holds what is published to it from its
 * queue's last read (at most a page, 64, and what its stream buffers) until that is written, each
 * after its identifier is committed: a few hundred ms. Beyond, a publication goes live at once:
 * in memory no more, in order no longer.
 */
const MAX_HELD_PUBLICATIONS = 8192;
const MAX_HELD_BYTES = 4 * 1024 * 1024;
const held = { publications: 0, bytes: 0 };

/**
 * Holds `packet`, live to a persistent session's connection whose queue, read at CONNECT, is still
 * being written to it (aedes marks the connection `connected` once that is done), and delivers it
 * right after: sent at once it would overtake the queue's older messages (MQTT-4.6.0-6); left
 * queued it would wait for the next connection. Returns false once the queue is written out, or
 * when MAX_HELD_PUBLICATIONS or MAX_HELD_BYTES are held already.
 */
export function holdUntilQueueSent(client: Client, packet: AedesPublishPacket): boolean {
  const connection = client as unknown as Client & { connected: boolean; deliverQoS(packet: AedesPublishPacket, done: () => void): void };
  if (connection.connected || packet.brokerCounter === undefined) return false;
  let packets = heldForQueue.get(client);
  // one entry for the message however many of the client's filters match it
  if (packets?.has(packet.brokerCounter)) return true;
  const bytes = packet.payload?.length ?? 0;
  if (held.publications >= MAX_HELD_PUBLICATIONS || held.bytes + bytes > MAX_HELD_BYTES) return false;
  if (packets === undefined) {
    const created = new Map<number, AedesPublishPacket>();
    heldForQueue.set(client, packets = created);
    const release = (deliver: boolean) => {
      heldForQueue.delete(client);
      for (const later of created.values()) {
        held.publications--;
        held.bytes -= later.payload?.length ?? 0;
        if (!deliver) continue;
        // handed once already, when it was held
        lastHanded.delete(client);
        connection.deliverQoS(later, () => undefined);
      }
      created.clear();
    };
    client.once('connected', () => release(true));
    // still queued: the next connection gets them
    (client.conn as unknown as NodeJS.EventEmitter).once('close', () => release(false));
  }
  packets.set(packet.brokerCounter, packet);
  held.publications++;
  held.bytes += bytes;
  return true;
}
