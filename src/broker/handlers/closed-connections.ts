import type { AedesPublishPacket, Client } from 'aedes';

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

/**
 * aedes goes on handing a connection that has closed the rest of what it was sending (the retained
 * messages of its SUBSCRIBE, a burst of live ones), and its write answers each with a new Error,
 * through setImmediate. Each Error's unformatted stack holds the Immediate it ran under, whose
 * arguments hold the Error before: a chain as long as the stream, that no collection can free
 * until it ends — 20,000 retained messages to two clients that left took a 48 MB heap. A closed
 * client's deliveries are skipped here instead, without an Error. Nothing is lost by it: a
 * persistent session's messages were queued before delivery (retained-in-flight.ts stores its own
 * only for a client still there), and a retained message stays retained. Install it last: it must
 * wrap the other handlers' deliver functions.
 */
export function skipDeliveriesAfterClose(client: Client): void {
  const target = client as unknown as { closed: boolean; deliver0: Deliver; deliverQoS: Deliver };
  for (const name of ['deliver0', 'deliverQoS'] as const) {
    const deliver = target[name];
    target[name] = (packet, callback) => {
      if (target.closed) setImmediate(callback);
      else deliver(packet, callback);
    };
  }
}
