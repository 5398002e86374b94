import type { AedesPublishPacket, Client } from 'aedes';
import type { Packet } from '../persistence/packet-codec.js';
import { highestGrant } from './overlapping-filters.js';

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

interface DeliveringClient {
  clean: boolean;
  id: string;
  /** aedes' next packet identifier, taken by a packet sent without one. */
  _nextId: number;
  deliverQoS: Deliver;
}

interface RetainedStore {
  outgoingEnqueueSentRetained(clientId: string, packet: Packet & { messageId: number }): Promise<void>;
}

/**
 * MQTT-4.4.0-1: aedes sends the retained messages a SUBSCRIBE matches at their QoS, but keeps those
 * sent to a persistent session nowhere, so one the client went away without acknowledging was lost,
 * where a live publication would be sent again. Here such a message takes its identifier first and
 * is stored in the session's queue before aedes sends it (it keeps an identifier it is given); its
 * PUBACK removes it as any other's. Call it before the client's first SUBSCRIBE.
 */
export function keepRetainedInFlight(client: Client, store: RetainedStore, onError: (error: Error) => void): void {
  const target = client as unknown as DeliveringClient;
  const deliverQoS = target.deliverQoS;
  target.deliverQoS = (packet, callback) => {
    // one the client's filters take at QoS 0 only goes out at QoS 0 (authorizeForward), nothing in flight
    if (target.clean || !isRetainedOnSubscribe(packet) || highestGrant(client, packet.topic) === 0) return deliverQoS(packet, callback);
    packet.messageId = takePacketIdentifier(target);
    // not stored, it is still sent, as aedes would have
    const send = () => deliverQoS(packet, callback);
    store.outgoingEnqueueSentRetained(target.id, packet as unknown as Packet & { messageId: number }).then(send, (error: Error) => {
      onError(error);
      send();
    });
  };
}

/**
 * aedes gives a retained message sent on SUBSCRIBE no brokerId (it must not be deduplicated);
 * a live publication keeps RETAIN only under MQTT 5's retain-as-published, and has one.
 */
function isRetainedOnSubscribe(packet: AedesPublishPacket): boolean {
  return packet.retain && packet.qos > 0 && !packet.brokerId && packet.messageId === undefined;
}

/** As aedes' QoSPacket takes one: 1 to 65535, then around again (MQTT-2.3.1-1). */
function takePacketIdentifier(client: DeliveringClient): number {
  const id = client._nextId;
  client._nextId = id >= 65535 ? 1 : id + 1;
  return id;
}
