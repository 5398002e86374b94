import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import type { Client } from 'aedes';
import { collectBufferGarbage } from '../../buffer-garbage.js';

type PacketShape = { cmd: string | null; retain: boolean; qos: number; dup: boolean; length: number; topic: string | null; payload: Buffer | null; messageId?: number };

interface MqttPacketParser {
  error: Error | null;
  settings: { protocolVersion?: number };
  _list: { length: number };
  _stateCounter: number;
  /** Where the packet's fields end, from its variable header; refuseMalformedPackets checks it against the remaining length. */
  _pos: number;
  parse(buf: Buffer): number;
  emit(event: 'packet', packet: PacketShape): boolean;
}

const require = createRequire(import.meta.url);
const Packet = require('mqtt-packet/packet.js') as new () => PacketShape;

const PUBLISH = 3;
const PUBACK_HEADER = 0x40;

/**
 * PUBLISH and PUBACK are nearly everything a busy broker reads. mqtt-packet
 * parses every packet through a byte list that allocates on each step; under
 * QoS 1 load that parser and its garbage were about a fifth of the broker's
 * CPU. PUBLISH and PUBACK packets are parsed here straight from the socket's
 * buffer into the same packet objects mqtt-packet makes and emitted the same
 * way; one cut off at the end of a read waits (copied, at most
 * MAX_HELD_BYTES) for the next read. The first packet of any other kind,
 * anything unusual (MQTT 5, bad flags, a length over the limit) and
 * everything after it go to mqtt-packet, so its error handling stays the one
 * that applies; once it holds no partial packet, reads come back here.
 */
export function parsePublishesDirectly(client: Client, maxPacketSize: number): void {
  const parser = (client as unknown as { _parser: MqttPacketParser })._parser;
  const parseWithMqttPacket = parser.parse;
  let held: Buffer | undefined;
  parser.parse = function parse(this: MqttPacketParser, read: Buffer): number {
    // each read is a buffer of its own, dead once parsed (collectBufferGarbage)
    collectBufferGarbage(read.length);
    if (this.error !== null || this._list.length > 0 || this._stateCounter !== 0 || this.settings.protocolVersion === 5) {
      return parseWithMqttPacket.call(this, read);
    }
    const buf = held === undefined ? read : Buffer.concat([held, read]);
    held = undefined;
    let offset = 0;
    while (offset < buf.length) {
      const end = parseOne(this, buf, offset, maxPacketSize);
      if (end === INCOMPLETE) {
        held = Buffer.from(buf.subarray(offset));
        return 0;
      }
      if (end === NOT_MINE) break;
      // a packet refused as it was emitted (refuseMalformedPackets): the connection is closing
      if (this.error !== null) return 0;
      offset = end;
    }
    return offset === buf.length ? 0 : parseWithMqttPacket.call(this, offset === 0 ? buf : buf.subarray(offset));
  };
}

/** parseOne's answers besides the end of a parsed packet. */
const NOT_MINE = 0;
const INCOMPLETE = -1;
/** A PUBLISH cut off at the end of a read is held for the next one up to this size; a larger one goes to mqtt-packet's list. */
const MAX_HELD_BYTES = 16384;

/** Emits the packet at `offset` and returns where it ends, or NOT_MINE / INCOMPLETE. */
function parseOne(parser: MqttPacketParser, buf: Buffer, offset: number, maxPacketSize: number): number {
  const header = buf[offset];
  if (header === PUBACK_HEADER) return parsePuback(parser, buf, offset);
  if (header >> 4 !== PUBLISH) return NOT_MINE;
  const qos = (header >> 1) & 0x03;
  if (qos === 3) return NOT_MINE; // MQTT-3.3.1-4: mqtt-packet reports it
  // MQTT 3.1.1 section 2.2.3: remaining length, 1-4 bytes of 7 bits
  let length = 0;
  let multiplier = 1;
  let position = offset + 1;
  for (let i = 0; ; i++) {
    if (i === 4) return NOT_MINE;
    if (position >= buf.length) return INCOMPLETE;
    const digit = buf[position++];
    length += (digit & 0x7f) * multiplier;
    if ((digit & 0x80) === 0) break;
    multiplier *= 128;
  }
  const end = position + length;
  if (end - offset > maxPacketSize) return NOT_MINE;
  if (end > buf.length) return end - offset <= MAX_HELD_BYTES ? INCOMPLETE : NOT_MINE;
  // MQTT 3.1.1 section 3.3.2: topic name, then the packet identifier at QoS 1 and 2
  const idBytes = qos > 0 ? 2 : 0;
  if (length < 2 + idBytes) return NOT_MINE;
  const topicLength = buf.readUInt16BE(position);
  const topicEnd = position + 2 + topicLength;
  if (topicEnd + idBytes > end) return NOT_MINE;
  // ill-formed UTF-8 or U+0000 in the topic: mqtt-packet's string parsing refuses it (refuseMalformedPackets)
  const topicBytes = buf.subarray(position + 2, topicEnd);
  if (!isUtf8(topicBytes) || topicBytes.includes(0)) return NOT_MINE;
  const packet = new Packet();
  packet.cmd = 'publish';
  packet.retain = (header & 0x01) !== 0;
  packet.qos = qos;
  packet.dup = (header & 0x08) !== 0;
  packet.length = length;
  packet.topic = topicBytes.toString('utf8');
  if (qos > 0) packet.messageId = buf.readUInt16BE(topicEnd);
  packet.payload = buf.subarray(topicEnd + idBytes, end);
  emitWithFieldsEnd(parser, packet, topicEnd + idBytes - position);
  return end;
}

/** MQTT 3.1.1 section 3.4: 0x40, remaining length 2, the packet identifier. */
function parsePuback(parser: MqttPacketParser, buf: Buffer, offset: number): number {
  if (offset + 1 < buf.length && buf[offset + 1] !== 0x02) return NOT_MINE;
  if (offset + 4 > buf.length) return INCOMPLETE;
  const packet = new Packet();
  packet.cmd = 'puback';
  packet.length = 2;
  packet.messageId = buf.readUInt16BE(offset + 2);
  emitWithFieldsEnd(parser, packet, 2);
  return offset + 4;
}

/** Emits as mqtt-packet does, its position at the packet's fields' end meanwhile, then at 0 again, where its own parsing of the next packet starts. */
function emitWithFieldsEnd(parser: MqttPacketParser, packet: PacketShape, fieldsEnd: number): void {
  parser._pos = fieldsEnd;
  try {
    parser.emit('packet', packet);
  } finally {
    parser._pos = 0;
  }
}
