import type { Client } from 'aedes';

interface PacketEmitter {
  emit(event: string, ...args: unknown[]): boolean;
}

type Requested = { topic: string; qos: number };
type SubscribePacket = { cmd: string; messageId?: number; subscriptions?: Requested[] };
export type SubackPacket = { cmd: 'suback'; messageId?: number; granted: number[] };

/** The filters of a connection's SUBSCRIBEs that repeat a filter, by packet id, until their SUBACK is written. */
const repeating = new WeakMap<object, Map<number, Requested[]>>();

/**
 * aedes keeps only the last of the entries of one SUBSCRIBE that name the same filter (it replaces
 * the earlier: MQTT-3.8.4-3) and answers only those it kept, so the return codes after a repeated
 * filter land on the wrong filters, and the client misses some. Remembers such a SUBSCRIBE's
 * filters for its SUBACK (answerEachFilter).
 */
export function rememberRepeatedFilters(client: Client): void {
  const parser = (client as unknown as { _parser: PacketEmitter })._parser;
  const emit = parser.emit;
  parser.emit = function rememberingEmit(this: PacketEmitter, event: string, ...args: unknown[]): boolean {
    const packet = args[0] as SubscribePacket;
    if (event === 'packet' && packet.cmd === 'subscribe' && packet.messageId !== undefined && repeatsAFilter(packet.subscriptions ?? [])) {
      let packets = repeating.get(client.conn);
      if (!packets) repeating.set(client.conn, packets = new Map());
      packets.set(packet.messageId, packet.subscriptions!.map(({ topic, qos }) => ({ topic, qos })));
    }
    return emit.call(this, event, ...args);
  };
}

function repeatsAFilter(subscriptions: Requested[]): boolean {
  return subscriptions.length > 1 && new Set(subscriptions.map((subscription) => subscription.topic)).size < subscriptions.length;
}

/**
 * MQTT-3.9.3-1: a return code for each filter of the SUBSCRIBE, in its order. aedes' codes are
 * for the filters in the order each first appeared, granted to the last entry of each; an earlier
 * entry of a repeated filter gets the QoS it asked for, as Mosquitto answers it (capped as the
 * last entry's was, if it was), and 0x80 with the last.
 */
export function answerEachFilter(stream: object, suback: SubackPacket): SubackPacket {
  const packets = repeating.get(stream);
  const requested = suback.messageId === undefined ? undefined : packets?.get(suback.messageId);
  if (!requested) return suback;
  packets!.delete(suback.messageId!);
  const kept = [...new Set(requested.map((subscription) => subscription.topic))];
  if (kept.length !== suback.granted.length) return suback;
  const grantedTo = new Map(kept.map((topic, index) => [topic, suback.granted[index]]));
  const lastAsked = new Map(requested.map(({ topic, qos }) => [topic, qos]));
  const granted = requested.map(({ topic, qos }) => {
    const code = grantedTo.get(topic)!;
    if (code === 0x80) return code;
    return code < lastAsked.get(topic)! ? Math.min(qos, code) : qos;
  });
  return { ...suback, granted };
}
