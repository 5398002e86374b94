import { createRequire } from 'node:module';
import type { AedesPublishPacket, Client } from 'aedes';
import { answerEachFilter, type SubackPacket } from './repeated-filters.js';
import { packetAnswered } from './packet-order.js';

type Packet = { cmd: string; messageId?: number; topic?: string; payload?: Buffer | string; qos?: number; dup?: boolean; retain?: boolean; properties?: unknown; granted?: number[] };
type WriteToStream = (packet: Packet, stream: unknown, opts?: unknown) => boolean;
interface Writable {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  destroyed?: boolean;
  writable?: boolean;
  writableNeedDrain?: boolean;
  writableLength?: number;
}

const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as { writeToStream: WriteToStream; generate: (packet: Packet, opts?: unknown) => Buffer };
const writeToStream = mqttPacket.writeToStream;
// mqtt-packet would otherwise make, at its first write, a 2-byte Buffer for each of the 65,536
// packet ids and lengths and keep them for good: 6 MiB of heap (a tenth of a 128 MB board's idle
// budget) to spare one 2-byte allocation per number written, which PUBLISH (encoded below) never needs.
(writeToStream as WriteToStream & { cacheNumbers: boolean }).cacheNumbers = false;

/**
 * QoS 0 PUBLISHes of at least this size are encoded once for all their subscribers (aedes hands
 * each its own packet, with the same payload), and written by reference rather than copied into a
 * connection's batch: 100 subscribers of 60 KiB messages made 6 MB of buffers of each message.
 * QoS 1/2 ones, whose packet id is each subscriber's own, are a header of their own followed by the
 * payload by reference: 40 subscribers not reading held a copy each of every message aedes had
 * under way (up to 100), 180 MB of 60 KB messages.
 */
const SHARED_FROM_BYTES = 1024;
/** The encoding of a QoS 0 PUBLISH, by its payload: the same bytes for every subscriber. */
const sharedEncodings = new WeakMap<Buffer, { topic: string; firstByte: number; bytes: Buffer }>();

/**
 * PUBLISH is most of what a broker writes: encode it into one exact-size buffer
 * (MQTT 3.1.1 section 3.3) instead of mqtt-packet's pieces and concat. Anything
 * else, or anything unusual, takes mqtt-packet's own encoder.
 */
function encode(packet: Packet, opts: unknown): Buffer | [header: Buffer, payload: Buffer] {
  const payload = packet.payload;
  if (packet.cmd !== 'publish' || opts !== undefined || packet.properties !== undefined || typeof packet.topic !== 'string' || !Buffer.isBuffer(payload)) {
    return mqttPacket.generate(packet, opts);
  }
  const qos = packet.qos ?? 0;
  if (qos > 0 && typeof packet.messageId !== 'number') return mqttPacket.generate(packet, opts);
  const firstByte = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0);
  const shared = qos === 0 && !packet.retain && payload.length >= SHARED_FROM_BYTES;
  if (shared) {
    const known = sharedEncodings.get(payload);
    if (known?.topic === packet.topic && known.firstByte === firstByte) return known.bytes;
  }
  const topicLength = Buffer.byteLength(packet.topic);
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payload.length;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4;
  const byReference = !shared && payload.length >= SHARED_FROM_BYTES;
  const bytes = Buffer.allocUnsafe(1 + lengthBytes + remaining - (byReference ? payload.length : 0));
  bytes[0] = firstByte;
  let offset = 1;
  let length = remaining;
  do {
    const digit = length % 128;
    length = Math.floor(length / 128);
    bytes[offset++] = length > 0 ? digit | 0x80 : digit;
  } while (length > 0);
  bytes.writeUInt16BE(topicLength, offset);
  offset += 2;
  offset += bytes.write(packet.topic, offset, 'utf8');
  if (qos > 0) {
    bytes.writeUInt16BE(packet.messageId!, offset);
    offset += 2;
  }
  if (byReference) return [bytes, payload];
  payload.copy(bytes, offset);
  if (shared) sharedEncodings.set(payload, { topic: packet.topic, firstByte, bytes });
  return bytes;
}

/** A connection's packets of one event-loop turn go out in one write, or in writes of about this much. */
const WRITE_AT_BYTES = 64 * 1024;

interface Connection {
  pending: Buffer[];
  pendingBytes: number;
  /** Whether a piece of `pending` is large enough to be written by reference (SHARED_FROM_BYTES). */
  largePending: boolean;
  /** QoS 1 PUBACKs waiting for their message to be durable, by message id. */
  heldPubacks: Set<number>;
}

/**
 * Everything aedes writes to a client passes through mqtt-packet's
 * writeToStream, which aedes calls through the module object; one wrapper
 * around it, for the connections this broker manages, does three things:
 *
 * - Batching: aedes writes each packet as several small writes with a cork per
 *   packet, i.e. one writev system call per message. Here each packet is encoded
 *   once and a connection's packets of one event-loop turn go out in one write
 *   (or one per WRITE_AT_BYTES).
 * - Durable PUBACK: aedes writes a QoS 1 PUBACK before it stores the message for
 *   persistent sessions and as retained. The PUBACK is held until aedes' `published`
 *   hook, which runs only after those writes committed (`release`). A crash in
 *   between leaves the message unacknowledged, so the client resends it (MQTT-4.3.2).
 * - A SUBACK answers each filter of its SUBSCRIBE, a repeated one too (repeated-filters.ts).
 */
export class OutgoingWrites {
  private readonly connections = new WeakMap<object, Connection>();
  private dirty = new Set<Writable>();
  private flushScheduled = false;
  /** Sockets found holding unsent bytes (clients not keeping up), with what they held then and what was queued to them since. */
  private readonly behind = new Map<Writable, number>();
  /** Their bytes together. */
  private behindBytes = 0;

  /**
   * A live QoS 0 PUBLISH to a connection is dropped (`publishes.dropped`) rather than queued when
   * what waits unsent for it (its socket's buffer and this turn's packets) reaches
   * `limits.perClient`, or when its socket holds unsent bytes and those of all such sockets
   * together reach `limits.total`: clients that keep up still get it. `publishes.sent` counts those
   * written.
   */
  constructor(private readonly limits: { perClient: number; total: number }, publishes: { sent(): void; dropped(): void }) {
    const connections = this.connections;
    mqttPacket.writeToStream = (packet, stream, opts) => {
      const connection = connections.get(stream as object);
      if (!connection) return writeToStream(packet, stream, opts);
      if (packet.cmd === 'suback') packet = answerEachFilter(stream as object, packet as SubackPacket);
      if (packet.cmd === 'puback' && packet.messageId !== undefined) {
        connection.heldPubacks.add(packet.messageId);
        return true;
      }
      if (packet.cmd !== 'publish') {
        packetAnswered(stream as object, packet);
        return this.enqueue(stream as Writable, connection, encode(packet, opts));
      }
      if (!packet.qos && !packet.retain) {
        // A live QoS 0 message never makes aedes wait for this socket (it would hold every other
        // delivery meanwhile); at most once, it is dropped when too much waits for the client.
        // Retained ones, sent on SUBSCRIBE from a stream of their own, still wait for the socket.
        if (this.backlog(stream as Writable, connection) >= this.limits.perClient || this.overSharedBound(stream as Writable)) {
          publishes.dropped();
          return true;
        }
        this.enqueue(stream as Writable, connection, encode(packet, opts));
        publishes.sent();
        return true;
      }
      publishes.sent();
      return this.enqueue(stream as Writable, connection, encode(packet, opts));
    };
  }

  manage(client: Client): void {
    this.connections.set(client.conn, { pending: [], pendingBytes: 0, largePending: false, heldPubacks: new Set() });
  }

  /** The `published` hook: the packet is durable now, so its PUBACK may go. */
  release(packet: AedesPublishPacket, client: Client | null): void {
    if (!client || packet.qos !== 1 || packet.messageId === undefined) return;
    const connection = this.connections.get(client.conn);
    if (!connection?.heldPubacks.delete(packet.messageId)) return;
    // MQTT 3.1.1 section 3.4: PUBACK is 0x40, remaining length 2, the packet identifier.
    this.enqueue(client.conn as Writable, connection, Buffer.from([0x40, 0x02, packet.messageId >> 8, packet.messageId & 0xff]));
  }

  /** Restores mqtt-packet's writer (for tests that start and stop brokers in one process). */
  dispose(): void {
    mqttPacket.writeToStream = writeToStream;
  }

  /** Bytes written to clients that their sockets have not taken yet (all clients together). */
  backlogBytes(): number {
    this.countBehind();
    return this.behindBytes;
  }

  private backlog(stream: Writable, connection: Connection): number {
    return (stream.writableLength ?? 0) + connection.pendingBytes;
  }

  private enqueue(stream: Writable, connection: Connection, encoded: Buffer | [header: Buffer, payload: Buffer]): boolean {
    const length = Array.isArray(encoded) ? addPending(connection, encoded[0]) + addPending(connection, encoded[1]) : addPending(connection, encoded);
    const behind = this.behind.get(stream);
    if (behind !== undefined) {
      this.behind.set(stream, behind + length);
      this.behindBytes += length;
    }
    // a burst goes out as it comes, so that a socket that stops taking it is known to be behind at once
    if (connection.pendingBytes >= WRITE_AT_BYTES) this.writeOut(stream, connection);
    this.dirty.add(stream);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return stream.writableNeedDrain !== true;
  }

  private flush(): void {
    this.flushScheduled = false;
    const streams = this.dirty;
    this.dirty = new Set();
    for (const stream of streams) {
      const connection = this.connections.get(stream);
      if (connection) this.writeOut(stream, connection);
    }
    this.countBehind();
  }

  private writeOut(stream: Writable, connection: Connection): void {
    const pending = connection.pending;
    const largePending = connection.largePending;
    connection.pending = [];
    connection.pendingBytes = 0;
    connection.largePending = false;
    if (pending.length === 0 || stream.destroyed || stream.writable === false) return;
    if (pending.length === 1) stream.write(pending[0]);
    else if (largePending) {
      // large pieces (encodings shared with other subscribers among them) by reference, in one writev
      stream.cork();
      for (const bytes of pending) stream.write(bytes);
      stream.uncork();
    } else {
      // One buffer, one write: cheaper than a writev of many small pieces.
      stream.write(Buffer.concat(pending));
    }
    const unsent = stream.writableLength ?? 0;
    if (unsent && !this.behind.has(stream)) {
      this.behind.set(stream, unsent);
      this.behindBytes += unsent;
    }
  }

  /**
   * Whether a live QoS 0 message to `stream` is over the bound of all slow clients together: it is
   * one of them, and they hold `limits.total`. Looked at again for this socket, as the last flush
   * may be long past (nothing was queued to anyone since): one that caught up meanwhile gets it.
   */
  private overSharedBound(stream: Writable): boolean {
    if (this.behindBytes < this.limits.total || !this.behind.has(stream)) return false;
    this.recount(stream);
    return this.behindBytes >= this.limits.total && this.behind.has(stream);
  }

  /** Sockets that took everything since leave `behind`; the rest count what they still hold. */
  private countBehind(): void {
    for (const stream of this.behind.keys()) this.recount(stream);
  }

  private recount(stream: Writable): void {
    const connection = this.connections.get(stream);
    const unsent = connection && !stream.destroyed ? this.backlog(stream, connection) : 0;
    this.behindBytes += unsent - (this.behind.get(stream) ?? 0);
    if (unsent === 0) this.behind.delete(stream);
    else this.behind.set(stream, unsent);
  }
}

/** Puts `bytes` in the connection's next write; its length. */
function addPending(connection: Connection, bytes: Buffer): number {
  connection.pending.push(bytes);
  connection.pendingBytes += bytes.length;
  if (bytes.length >= SHARED_FROM_BYTES) connection.largePending = true;
  return bytes.length;
}
