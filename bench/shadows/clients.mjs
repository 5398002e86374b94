// The shadow bench's load generator: MQTT clients as plain net sockets that write hand-encoded
// PUBLISHes and read answers through the minimal frame splitter, so that the load generator costs
// the 2-core machine little CPU next to the daemon (mqtt.js clients cost about three times as much).
import net from 'node:net';
import { FrameSplitter, PACKET, connectPacket } from '../lib/mqtt-raw.mjs';
import mqttPacket from 'mqtt-packet';

const now = () => process.hrtime.bigint();
const TOKEN_KEY = Buffer.from('"clientToken":"');
const ACCEPTED = 0x61; // 'a' of …/update/accepted; 'r' of …/update/rejected

/** A QoS 1 PUBLISH, encoded into one exact-size buffer (MQTT 3.1.1 section 3.3). */
function encodePublish(topic, payload, messageId) {
  const topicLength = Buffer.byteLength(topic);
  const payloadLength = Buffer.byteLength(payload);
  const remaining = 2 + topicLength + 2 + payloadLength;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16384 ? 2 : 3;
  const bytes = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  bytes[0] = 0x32;
  let offset = 1;
  for (let length = remaining; ; ) {
    const digit = length % 128;
    length = Math.floor(length / 128);
    bytes[offset++] = length > 0 ? digit | 0x80 : digit;
    if (length === 0) break;
  }
  bytes.writeUInt16BE(topicLength, offset);
  offset += 2 + bytes.write(topic, offset + 2, 'latin1');
  bytes.writeUInt16BE(messageId, offset);
  bytes.write(payload, offset + 2, 'utf8');
  return bytes;
}

/**
 * One bench client: a connection owning every `clients`-th thing, subscribed to their
 * `update/accepted|rejected`. `send()` queues an update of its next thing; the queued updates
 * of one turn leave in one write. `onAnswer(ms)` gets each answer's publish→answer time.
 */
export class ShadowClient {
  constructor(index, things) {
    this.index = index;
    this.things = things;
    this.updateTopics = things.map((thing) => `$aws/things/${thing}/shadow/update`);
    this.sequence = 0;
    this.sentAt = new Map();
    this.accepted = 0;
    this.rejected = 0;
    this.outgoing = [];
    this.onAnswer = () => {};
  }

  /** Connects (TCP_NODELAY, as devices answering at once would) and subscribes. */
  async connect(port) {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    this.socket = socket;
    let waiting;
    const next = (type) => new Promise((resolve, reject) => { waiting = { type, resolve, reject }; });
    const splitter = new FrameSplitter((type, flags, buf, start, end) => {
      if (type === PACKET.PUBLISH) this.answer(flags, buf, start, end);
      else if (waiting?.type === type) waiting.resolve(buf.subarray(start, end));
    });
    socket.on('data', (chunk) => {
      splitter.push(chunk);
      this.flush();
    });
    socket.on('error', (error) => waiting?.reject(error));
    const connack = next(PACKET.CONNACK);
    socket.write(connectPacket({ clientId: `bench-${this.index}` }));
    if ((await connack)[1] !== 0) throw new Error(`bench-${this.index}: CONNACK refused`);
    const suback = next(PACKET.SUBACK);
    const subscriptions = this.things.flatMap((thing) => ['accepted', 'rejected'].map((answer) => ({ topic: `$aws/things/${thing}/shadow/update/${answer}`, qos: 1 })));
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions }));
    const granted = await suback;
    if (granted.subarray(2).some((code) => code === 0x80)) throw new Error(`bench-${this.index}: SUBSCRIBE refused`);
  }

  /** Queues a reported-state update of the client's next thing; it leaves at `flush()`. */
  send() {
    const sequence = this.sequence++;
    const topic = this.updateTopics[sequence % this.things.length];
    const payload = `{"state":{"reported":{"temperature":${20 + (sequence % 10)},"seq":${sequence}}},"clientToken":"${sequence}"}`;
    this.outgoing.push(encodePublish(topic, payload, (sequence % 65535) + 1));
    this.sentAt.set(sequence, 0n);
  }

  /** Writes what `send()` and the PUBACKs of the answers queued, in one write. */
  flush() {
    if (this.outgoing.length === 0) return;
    const bytes = this.outgoing.length === 1 ? this.outgoing[0] : Buffer.concat(this.outgoing);
    this.outgoing = [];
    const sentAt = now();
    for (const [sequence, at] of this.sentAt) if (at === 0n) this.sentAt.set(sequence, sentAt);
    this.socket.write(bytes);
  }

  get inFlight() {
    return this.sentAt.size;
  }

  close() {
    this.socket.destroy();
  }

  /** An `/accepted` or `/rejected`: PUBACK it, find its clientToken, time it. */
  answer(flags, buf, start, end) {
    const topicLength = buf.readUInt16BE(start);
    const topicEnd = start + 2 + topicLength;
    let payloadStart = topicEnd;
    if ((flags & 0x06) !== 0) {
      const messageId = buf.readUInt16BE(topicEnd);
      this.outgoing.push(Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]));
      payloadStart += 2;
    }
    const key = buf.indexOf(TOKEN_KEY, payloadStart);
    if (key === -1 || key >= end) return;
    let sequence = 0;
    for (let i = key + TOKEN_KEY.length; i < end && buf[i] !== 0x22; i++) sequence = sequence * 10 + buf[i] - 0x30;
    const sentAt = this.sentAt.get(sequence);
    if (sentAt === undefined) return;
    this.sentAt.delete(sequence);
    if (buf[topicEnd - 8] === ACCEPTED) this.accepted++;
    else this.rejected++;
    this.onAnswer(Number(now() - sentAt) / 1e6);
  }
}
