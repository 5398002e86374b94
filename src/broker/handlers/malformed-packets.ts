import { isUtf8 } from 'node:buffer';
import type { Client } from 'aedes';
import { hasUnsafeCharacter, isValidFilter } from '../topic.js';

/** What of mqtt-packet's parser this reaches into (the same instance parsePublishesDirectly wraps). */
interface CheckedParser {
  _pos: number;
  _list: { slice(start: number, end: number): Buffer };
  packet: { cmd?: string; protocolId?: string; protocolVersion?: number };
  _parseString(): string | null;
  _emitError(error: Error): void;
  emit(event: string, ...args: unknown[]): boolean;
}

type ParsedPacket = {
  cmd: string; qos?: number; dup?: boolean; messageId?: number; topic?: string; subscriptions?: Array<{ topic: string }>; unsubscriptions?: string[];
  protocolId?: string; protocolVersion?: number; will?: { topic: string; qos: number }; username?: string; password?: Buffer; length: number;
};

/** Packets whose fields fill their remaining length exactly, in MQTT 3.1.1 (a PUBLISH's payload, a SUBSCRIBE's filters take the rest). */
const EXACT_LENGTH = new Set(['connect', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'pingreq', 'disconnect']);

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
      const violation = lengthViolationOf(args[0] as ParsedPacket, this._pos) ?? violationOf(args[0] as ParsedPacket);
      if (violation) {
        this._emitError(new Error(violation));
        return false;
      }
    }
    return emit.call(this, event, ...args);
  };
  const emitError = parser._emitError;
  parser._emitError = function answeredError(this: CheckedParser, error: Error): void {
    // MQTT-3.1.2-2 (aedes answers levels the parser knows; the parser stops at the others)
    if (this.packet.cmd === 'connect' && unacceptableLevel(this.packet as ParsedPacket) && !client.conn.destroyed) {
      client.conn.write(CONNACK_UNACCEPTABLE_PROTOCOL);
    }
    emitError.call(this, error);
  };
}

/** "MQTT" is level 4 (5 for MQTT 5), "MQIsdp" level 3 (MQTT 3.1): another pairing gets CONNACK 0x01 as an unknown level does. */
function unacceptableLevel({ protocolId, protocolVersion }: ParsedPacket): boolean {
  if (protocolVersion === undefined) return false;
  return protocolId === 'MQIsdp' ? protocolVersion !== 3 : protocolVersion !== 4 && protocolVersion !== 5;
}

/**
 * mqtt-packet reads a field past the packet's end from the bytes after it (the next packet's, or
 * none: a missing packet identifier is -1, acknowledged as 65535), and leaves bytes after a
 * CONNECT's last field unread: a packet whose fields do not fill its remaining length is malformed.
 */
function lengthViolationOf(packet: ParsedPacket, fieldsEnd: number): string | undefined {
  if (fieldsEnd > packet.length || packet.messageId === -1) return `${packet.cmd.toUpperCase()} shorter than its fields (remaining length ${packet.length})`;
  if (fieldsEnd < packet.length && EXACT_LENGTH.has(packet.cmd) && (packet.cmd === 'connect' ? packet.protocolVersion! < 5 : true)) {
    return `${packet.cmd.toUpperCase()} with ${packet.length - fieldsEnd} bytes after its fields`;
  }
  return undefined;
}

function violationOf(packet: ParsedPacket): string | undefined {
  switch (packet.cmd) {
    case 'connect':
      if (unacceptableLevel(packet)) return `protocol ${packet.protocolId} at level ${packet.protocolVersion} (MQTT-3.1.2-2)`;
      if (packet.will !== undefined && packet.will.qos > 2) return 'will QoS 3 (MQTT-3.1.2-14)';
      // MQTT 5 allows it (3.1.2.9)
      if (packet.password !== undefined && packet.username === undefined && packet.protocolVersion! < 5) return 'password without a user name (MQTT-3.1.2-22)';
      return undefined;
    case 'publish':
      if (packet.qos === 0 && packet.dup) return 'DUP flag set on a QoS 0 PUBLISH (MQTT-3.3.1-2)';
      if (packet.qos! > 0 && packet.messageId === 0) return 'PUBLISH with packet identifier 0 (MQTT-2.3.1-1)';
      if (hasUnsafeCharacter(packet.topic!)) return 'PUBLISH topic with a control character or non-character (MQTT-1.5.3)';
      return undefined;
    case 'subscribe':
      if (packet.messageId === 0) return 'SUBSCRIBE with packet identifier 0 (MQTT-2.3.1-1)';
      if (packet.subscriptions?.some(({ topic }) => hasUnsafeCharacter(topic))) return 'SUBSCRIBE filter with a control character or non-character (MQTT-1.5.3)';
      // all alike, as Mosquitto: aedes closed on a misplaced '#' and granted 0x80 to a misplaced '+'
      if (packet.subscriptions?.some(({ topic }) => !isValidFilter(topic))) return 'SUBSCRIBE with an invalid topic filter (MQTT-4.7.1)';
      return undefined;
    case 'unsubscribe':
      if (packet.messageId === 0) return 'UNSUBSCRIBE with packet identifier 0 (MQTT-2.3.1-1)';
      if (packet.unsubscriptions?.length === 0) return 'UNSUBSCRIBE without a topic filter (MQTT-3.10.3-2)';
      if (packet.unsubscriptions?.some((topic) => !isValidFilter(topic))) return 'UNSUBSCRIBE with an invalid topic filter (MQTT-4.7.1)';
      return undefined;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      if (packet.messageId === 0) return `${packet.cmd.toUpperCase()} with packet identifier 0 (MQTT-2.3.1-1)`;
      return undefined;
    default:
      return undefined;
  }
}
