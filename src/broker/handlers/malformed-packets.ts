import { isUtf8 } from 'node:buffer';
import type { Client } from 'aedes';

/** What of mqtt-packet's parser this reaches into (the same instance parsePublishesDirectly wraps). */
interface CheckedParser {
  _pos: number;
  _list: { slice(start: number, end: number): Buffer };
  packet: { cmd?: string; protocolVersion?: number };
  _parseString(): string | null;
  _emitError(error: Error): void;
  emit(event: string, ...args: unknown[]): boolean;
}

type ParsedPacket = { cmd: string; qos?: number; dup?: boolean; messageId?: number; unsubscriptions?: string[] };

/** MQTT 3.1.1 table 3.1: CONNACK, remaining length 2, no session, return code 0x01. */
const CONNACK_UNACCEPTABLE_PROTOCOL = Buffer.from([0x20, 0x02, 0x00, 0x01]);

/**
 * Closes the connection on what mqtt-packet parses without complaint but the spec calls a protocol
 * violation: every string of a packet (client id, will topic, user name, topic names and filters)
 * must be well-formed UTF-8 without U+0000, and a few fields have fixed rules. A protocol level the
 * parser does not know gets its CONNACK 0x01 first.
 */
export function refuseMalformedPackets(client: Client): void {
  const parser = (client as unknown as { _parser: CheckedParser })._parser;
  const parseString = parser._parseString;
  // MQTT-1.5.3-1: ill-formed UTF-8 closes the connection; MQTT-1.5.3-2: so does U+0000. A null
  // answer is what mqtt-packet's callers take for an unparsable string: they emit their error.
  parser._parseString = function checkedString(this: CheckedParser): string | null {
    const start = this._pos;
    const text = parseString.call(this);
    if (text === null) return null;
    const bytes = this._list.slice(start + 2, this._pos);
    return isUtf8(bytes) && !bytes.includes(0) ? text : null;
  };
  const emit = parser.emit;
  parser.emit = function checkedEmit(this: CheckedParser, event: string, ...args: unknown[]): boolean {
    if (event === 'packet') {
      const violation = violationOf(args[0] as ParsedPacket);
      if (violation) {
        this._emitError(new Error(violation));
        return false;
      }
    }
    return emit.call(this, event, ...args);
  };
  const emitError = parser._emitError;
  parser._emitError = function answeredError(this: CheckedParser, error: Error): void {
    const { cmd, protocolVersion } = this.packet;
    // MQTT-3.1.2-2 (aedes answers levels the parser knows; the parser stops at the others)
    if (cmd === 'connect' && protocolVersion !== undefined && ![3, 4, 5].includes(protocolVersion) && !client.conn.destroyed) {
      client.conn.write(CONNACK_UNACCEPTABLE_PROTOCOL);
    }
    emitError.call(this, error);
  };
}

function violationOf(packet: ParsedPacket): string | undefined {
  switch (packet.cmd) {
    case 'publish':
      if (packet.qos === 0 && packet.dup) return 'DUP flag set on a QoS 0 PUBLISH (MQTT-3.3.1-2)';
      if (packet.qos! > 0 && packet.messageId === 0) return 'PUBLISH with packet identifier 0 (MQTT-2.3.1-1)';
      return undefined;
    case 'subscribe':
      if (packet.messageId === 0) return 'SUBSCRIBE with packet identifier 0 (MQTT-2.3.1-1)';
      return undefined;
    case 'unsubscribe':
      if (packet.messageId === 0) return 'UNSUBSCRIBE with packet identifier 0 (MQTT-2.3.1-1)';
      if (packet.unsubscriptions?.length === 0) return 'UNSUBSCRIBE without a topic filter (MQTT-3.10.3-2)';
      return undefined;
    default:
      return undefined;
  }
}
