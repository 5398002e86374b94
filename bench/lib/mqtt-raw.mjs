// Raw MQTT 3.1.1 packets for the load generator: built once with mqtt-packet,
// then copied and patched (messageId, sequence number) instead of re-encoded.
import mqttPacket from 'mqtt-packet';

const PROTOCOL = { protocolId: 'MQTT', protocolVersion: 4 };

/** CONNECT bytes. `clean` false asks for a persistent session. */
export function connectPacket({ clientId, username, password, clean = true, keepalive = 60 }) {
  const packet = { cmd: 'connect', ...PROTOCOL, clean, clientId, keepalive };
  if (username !== undefined && username !== null) packet.username = username;
  if (password !== undefined && password !== null) packet.password = Buffer.from(password, 'utf8');
  return mqttPacket.generate(packet);
}

export function subscribePacket({ topic, qos, messageId = 1 }) {
  return mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
}

export function disconnectPacket() {
  return mqttPacket.generate({ cmd: 'disconnect' });
}

/**
 * Payload layout (size ≥ 6 bytes): [0..4) sequence number (uint32 BE),
 * [4..6) publisher index (uint16 BE), rest filler. The subscriber reads the
 * first six bytes to check every message arrived exactly once.
 */
export const PAYLOAD_HEADER = 6;

/**
 * A PUBLISH template for one publisher plus the offsets to patch. Building a
 * batch of k messages = k copies of `bytes` with the sequence number (and the
 * messageId at QoS 1) written in place.
 */
export function publishTemplate({ topic, qos, payloadSize, publisherIndex }) {
  if (payloadSize < PAYLOAD_HEADER) throw new Error(`payload size must be ≥ ${PAYLOAD_HEADER} bytes`);
  const payload = Buffer.alloc(payloadSize, 0x78); // 'x'
  payload.writeUInt32BE(0, 0);
  payload.writeUInt16BE(publisherIndex, 4);
  const packet = { cmd: 'publish', topic, payload, qos, retain: false, dup: false };
  if (qos > 0) packet.messageId = 1;
  const bytes = mqttPacket.generate(packet);
  const payloadOffset = bytes.length - payloadSize;
  const messageIdOffset = qos > 0 ? payloadOffset - 2 : -1;
  return { bytes, length: bytes.length, payloadOffset, messageIdOffset, seqOffset: payloadOffset };
}

/** messageId for the n-th message (0-based) of a publisher: 1..65535, wrapping. */
export const messageIdFor = (seq) => (seq % 65535) + 1;

/**
 * Fills `count` PUBLISH packets for sequence numbers first..first+count-1 into
 * a fresh buffer (fresh because net.Socket may hold on to it until flushed).
 */
export function buildBatch(tpl, first, count) {
  const { bytes, length, seqOffset, messageIdOffset } = tpl;
  const out = Buffer.allocUnsafe(length * count);
  // Copy the template once, then double the filled region (few large memcpys).
  bytes.copy(out, 0);
  let filled = length;
  const total = length * count;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    out.copy(out, filled, 0, n);
    filled += n;
  }
  for (let i = 0, off = 0; i < count; i++, off += length) {
    const seq = first + i;
    out.writeUInt32BE(seq, off + seqOffset);
    if (messageIdOffset >= 0) out.writeUInt16BE(messageIdFor(seq), off + messageIdOffset);
  }
  return out;
}

export const PACKET = Object.freeze({
  CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBACK: 9, PINGRESP: 13,
});

/**
 * Minimal incremental MQTT frame splitter: calls onFrame(type, flags, buf,
 * bodyStart, bodyEnd) for every complete frame, with no allocation for frames
 * that sit wholly in one chunk. Only a partial frame at a chunk's end is kept.
 */
export class FrameSplitter {
  constructor(onFrame, maxFrame = 1 << 20) {
    this.onFrame = onFrame;
    this.maxFrame = maxFrame;
    this.rest = null;
  }

  push(chunk) {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      if (len - pos < 2) break;
      const b0 = buf[pos];
      // remaining length: 1-4 bytes, 7 bits each
      let rl = 0;
      let mul = 1;
      let i = pos + 1;
      let complete = false;
      for (let k = 0; k < 4; k++, i++) {
        if (i >= len) break;
        const b = buf[i];
        rl += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; i++; break; }
        if (k === 3) throw new Error('malformed remaining length');
      }
      if (!complete) break;
      if (rl > this.maxFrame) throw new Error(`frame of ${rl} bytes exceeds ${this.maxFrame}`);
      const end = i + rl;
      if (end > len) break;
      this.onFrame(b0 >> 4, b0 & 0x0f, buf, i, end);
      pos = end;
    }
    if (pos < len) this.rest = buf.subarray(pos);
  }
}
