import { createRequire } from 'node:module';
import type { AedesPublishPacket, Client } from 'aedes';

type WriteToStream = (packet: { cmd: string; messageId?: number }, stream: unknown, opts?: unknown) => boolean;

const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as { writeToStream: WriteToStream };
const writeToStream = mqttPacket.writeToStream;

/**
 * PUBACK only after the message is durable. aedes writes a QoS 1 PUBACK before
 * it stores the message for persistent sessions and as retained; we hold that
 * PUBACK back (on connections we manage) and send it from the `published`
 * hook, which aedes calls only after storeRetained and the offline enqueue
 * have resolved — i.e. after our group commit. A crash in between leaves the
 * message unacknowledged, so the client sends it again (MQTT-4.3.2).
 */
export class DurablePuback {
  private readonly held = new WeakMap<object, Set<number>>();

  constructor() {
    // aedes calls mqtt-packet's writeToStream through the module object, so one
    // wrapper sees every PUBACK; streams we don't manage pass straight through.
    const held = this.held;
    mqttPacket.writeToStream = function holdPuback(packet, stream, opts) {
      if (packet.cmd === 'puback' && packet.messageId !== undefined) {
        const waiting = held.get(stream as object);
        if (waiting) {
          waiting.add(packet.messageId);
          return true;
        }
      }
      return writeToStream(packet, stream, opts);
    };
  }

  /** Starts holding PUBACKs on this client's connection. */
  manage(client: Client): void {
    this.held.set(client.conn, new Set());
  }

  /** The `published` hook: the packet is now durable, so its PUBACK may go. */
  release(packet: AedesPublishPacket, client: Client | null): void {
    if (!client || packet.qos !== 1 || packet.messageId === undefined) return;
    const waiting = this.held.get(client.conn);
    if (!waiting?.delete(packet.messageId)) return;
    const conn = client.conn as { destroyed?: boolean; writable?: boolean };
    if (conn.destroyed || conn.writable === false) return;
    writeToStream({ cmd: 'puback', messageId: packet.messageId }, client.conn);
  }

  /** Restores mqtt-packet's writer (for tests that start and stop brokers in one process). */
  dispose(): void {
    mqttPacket.writeToStream = writeToStream;
  }
}
