import type { Client } from 'aedes';
import type { Socket } from 'node:net';

interface MqttPacketParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
  once(event: 'packet', listener: () => void): void;
}

/** A packet this small is held outside the budgets: maxConnections of them hold little. */
const UNBUDGETED_PACKET_BYTES = 8 * 1024;

/**
 * Bytes of larger packets being received at once, all connections together. The parser holds a
 * packet until its last byte: without a bound, clients could each announce a packet of
 * maxPacketSize and send it slowly, up to maxConnections × 256 KiB of memory (400 such PUBLISHes
 * held 171 MB; a 128 MB board's daemon is killed for less). There are two: one for CONNECTs, sent
 * before the client proved anything (8 MiB; a CONNECT carries at most five 64 KiB fields, so a
 * legitimate one always fits), and one for the packets of admitted clients, so that those cannot
 * keep new clients out.
 */
export class ReceiveBudget {
  private used = 0;

  constructor(readonly bytes: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.bytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

export interface PacketLimits {
  maxPacketSize: number;
  connectBudget: ReceiveBudget;
  /** For the packets after CONNECT. */
  packetBudget: ReceiveBudget;
  onRefused: (reason: 'packet_too_large' | 'connect_budget' | 'receive_budget') => void;
  /**
   * The socket under a WebSocket stream, and the WebSocket whose 'message' says one arrived whole.
   * ws holds a message until its last frame is in, before the parser sees any of it: a client could
   * announce a message of maxPacketSize and send it slowly, unseen by the packet's announced
   * length. What this socket delivered since the last whole message is budgeted instead, in
   * `connectBudget` until the client is admitted, in `packetBudget` after.
   */
  framed?: { socket: Socket; messages: { on(event: 'message', listener: () => void): unknown } };
}

/**
 * Refuses a packet as soon as its fixed header announces a length over the
 * limit — before the parser buffers its body — so one client cannot make the
 * broker hold a 256 MB packet. MQTT 3.1.1 has no error code for it: the
 * connection is closed (MQTT-4.8.0-1 style protocol violation handling).
 * A packet over UNBUDGETED_PACKET_BYTES is held only within its shared
 * ReceiveBudget (the first, the CONNECT, in `connectBudget`; the others in
 * `packetBudget`), and closes the connection beyond it, as Mosquitto does past
 * its memory_limit; the client sends it again once reconnected.
 */
export function limitPacketSize(client: Client, stream: { once(event: 'close', listener: () => void): unknown }, limits: PacketLimits): void {
  const { maxPacketSize, connectBudget, packetBudget, onRefused, framed } = limits;
  const parser = (client as unknown as { _parser: MqttPacketParser })._parser;
  const parseLength = parser._parseLength;
  let first = true;
  let held = 0;
  let heldIn = connectBudget;
  const release = () => {
    heldIn.give(held);
    held = 0;
  };
  stream.once('close', release);
  const refuseOverBudget = (reason: 'connect_budget' | 'receive_budget', what: string) => {
    onRefused(reason);
    parser._emitError(new Error(`${what} does not fit in what ${reason === 'connect_budget' ? 'CONNECT packets' : 'packets'} being received may hold`));
  };
  if (framed) {
    // What the socket delivered: until the client is admitted, all of it, in connectBudget (its login
    // may wait its turn for seconds, and meanwhile ws reads whole messages ahead into the stream);
    // after, what came since ws's last whole message, in packetBudget.
    let budget = connectBudget;
    let received = 0;
    let sinceMessage = 0;
    const charge = () => {
      const wanted = received - UNBUDGETED_PACKET_BYTES - held;
      if (wanted <= 0) return;
      if (!budget.take(wanted)) {
        framed.socket.off('data', count);
        refuseOverBudget(budget === connectBudget ? 'connect_budget' : 'receive_budget', `${received} bytes of WebSocket messages being received`);
        // the parser may never run again (ws still waits for the message's end): the socket is closed here
        framed.socket.destroy();
        return;
      }
      held += wanted;
      heldIn = budget;
    };
    const count = (chunk: Buffer) => {
      received += chunk.length;
      sinceMessage += chunk.length;
      charge();
    };
    framed.socket.on('data', count);
    framed.messages.on('message', () => {
      sinceMessage = 0;
      if (budget !== packetBudget) return;
      release();
      received = 0;
    });
    (client as unknown as { once(event: 'connected', listener: () => void): void }).once('connected', () => {
      release();
      budget = packetBudget;
      received = sinceMessage;
      charge();
    });
  }
  parser._parseLength = function parseLengthWithinLimit(this: MqttPacketParser) {
    const complete = parseLength.call(this);
    if (!complete) return complete;
    if (this.packet.length > maxPacketSize - fixedHeaderSize(this.packet.length)) {
      onRefused('packet_too_large');
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the maximum packet size of ${maxPacketSize}`));
      return false;
    }
    const isFirst = first;
    first = false;
    // over WebSocket every packet was counted as it arrived (framed)
    if (this.packet.length <= UNBUDGETED_PACKET_BYTES || framed) return complete;
    const budget = isFirst ? connectBudget : packetBudget;
    if (!budget.take(this.packet.length)) {
      refuseOverBudget(isFirst ? 'connect_budget' : 'receive_budget', `a packet of ${this.packet.length} bytes`);
      return false;
    }
    held = this.packet.length;
    heldIn = budget;
    this.once('packet', release);
    return complete;
  };
}

/** One type byte plus the 1-4 byte remaining-length field (MQTT 3.1.1 section 2.2.3). */
function fixedHeaderSize(remainingLength: number): number {
  return 1 + (remainingLength < 128 ? 1 : remainingLength < 16384 ? 2 : remainingLength < 2097152 ? 3 : 4);
}
