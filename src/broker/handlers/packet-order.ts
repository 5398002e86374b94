import type { Client } from 'aedes';

type OrderedPacket = { cmd: string; qos?: number; messageId?: number };

/** The answer a connection's next packets wait for. */
interface Wait {
  cmd: 'suback' | 'unsuback' | 'pubrec';
  messageId: number | undefined;
  answered: boolean;
}

interface PacketOrder {
  waiting: Wait | undefined;
  /** What arrived since, in order: handed to aedes once the answer is written. */
  held: OrderedPacket[];
  /** Ids of QoS 2 PUBLISHes handed to aedes and not answered with PUBREC yet. */
  awaitingPubrec: Set<number>;
  release(): void;
}

interface ParserWithClient {
  emit(event: string, ...args: unknown[]): boolean;
}

/** aedes' count of a connection's packets being handled; it reads more from the socket when it drops to 0. */
interface BatchingClient {
  /** A CONNECT is being handled, or was accepted. */
  connecting: boolean;
  connected: boolean;
  _parser: ParserWithClient;
  _parsingBatch: number;
  _nextBatch(): void;
}

const orders = new WeakMap<object, PacketOrder>();

/**
 * aedes hands every packet of a read to its handler at once, so one that is stored first (a QoS 1
 * PUBLISH, a SUBSCRIBE) may finish after those behind it. Where the spec orders their effects,
 * the packets after one wait until its answer is written:
 * - UNSUBSCRIBE: a PUBLISH after it, in the same read, reached the subscriber after its UNSUBACK
 *   (MQTT-3.10.4-2: no new messages once the UNSUBSCRIBE is received); SUBSCRIBE likewise (its
 *   filters hold for the messages after it, as a client publishing to itself expects).
 * - PUBREL of a QoS 2 PUBLISH still being stored: answered PUBCOMP as unknown before the PUBREC,
 *   which left the message awaiting a PUBREL for the life of the connection (MQTT-4.3.3).
 * The other packets (PUBLISH streams) go on together, so group commit still batches them. What
 * waits is bounded by one read: aedes reads no more from the socket meanwhile.
 */
export function keepPacketOrder(client: Client): void {
  const batching = client as unknown as BatchingClient;
  const parser = batching._parser;
  const emit = parser.emit;
  const order: PacketOrder = {
    waiting: undefined,
    held: [],
    awaitingPubrec: new Set(),
    release: () => {
      order.waiting = undefined;
      const held = order.held;
      order.held = [];
      for (const [index, packet] of held.entries()) {
        if (order.waiting) {
          // after a PUBREL offer() held again
          order.held = [...order.held, ...held.slice(index)];
          break;
        }
        offer(packet);
      }
      // the unit wait() added: aedes reads on once its packets are handled
      batching._nextBatch();
    },
  };
  orders.set(client.conn, order);

  const wait = (cmd: Wait['cmd'], messageId: number | undefined) => {
    order.waiting = { cmd, messageId, answered: false };
    batching._parsingBatch++;
  };
  const offer = (packet: OrderedPacket): boolean => {
    if (order.waiting) {
      order.held.push(packet);
      return true;
    }
    if (packet.cmd === 'pubrel' && packet.messageId !== undefined && order.awaitingPubrec.has(packet.messageId)) {
      wait('pubrec', packet.messageId);
      order.held.push(packet);
      return true;
    }
    if (packet.cmd === 'publish' && packet.qos === 2 && packet.messageId !== undefined) order.awaitingPubrec.add(packet.messageId);
    // before the packet is handed over: its answer may be written before emit returns. Not before a
    // CONNECT: aedes closes the connection on such a packet (MQTT-3.1.0-1) only when it is the one
    // packet being handled, and with the wait counted it held it for a CONNACK until the connect timeout.
    const afterConnect = batching.connecting || batching.connected;
    if (packet.cmd === 'subscribe' && afterConnect) wait('suback', packet.messageId);
    if (packet.cmd === 'unsubscribe' && afterConnect) wait('unsuback', packet.messageId);
    return emit.call(parser, 'packet', packet);
  };
  parser.emit = function orderedEmit(this: ParserWithClient, event: string, ...args: unknown[]): boolean {
    return event === 'packet' ? offer(args[0] as OrderedPacket) : emit.call(this, event, ...args);
  };
}

/** Called for each packet written to a connection: the answer its next packets may wait for. */
export function packetAnswered(stream: object, packet: OrderedPacket): void {
  const order = orders.get(stream);
  if (!order) return;
  if (packet.cmd === 'pubrec' && packet.messageId !== undefined) order.awaitingPubrec.delete(packet.messageId);
  const waiting = order.waiting;
  if (!waiting || waiting.answered || waiting.cmd !== packet.cmd || waiting.messageId !== packet.messageId) return;
  waiting.answered = true;
  // after the handler that wrote it has gone on (its answer is written from inside it)
  process.nextTick(order.release);
}
