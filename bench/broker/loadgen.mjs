#!/usr/bin/env node
// Load generator for bench/broker/run.mjs: N publishers as N plain TCP sockets
// writing pre-built MQTT PUBLISH bytes, and/or one subscriber counting and
// checking what arrives. Driven by its parent over the IPC channel:
//
//   parent → child: {cmd:'go'} {cmd:'pubdone'} {cmd:'finish'} {cmd:'exit'}
//   child → parent: {type:'ready', role} {type:'pubdone', …} {type:'subdone', …}
//                   {type:'error', role, message}
//
// Times are process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock in every
// process of the machine) sent as decimal strings, so a subscriber in another
// process can be compared with the publishers' first write.
//
// argv[2]: JSON { role: 'pub'|'sub'|'both', host, port, username?, password?,
//   qos, publishers, messages, payloadSize, window, refill, batch, parser:
//   'fast'|'mqtt-packet', persistentSession, drainMs, clientIdPrefix, topicPrefix }
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import mqttPacket from 'mqtt-packet';
import {
  FrameSplitter, PACKET, buildBatch, connectPacket, disconnectPacket, messageIdFor,
  publishTemplate, subscribePacket,
} from '../lib/mqtt-raw.mjs';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const now = () => process.hrtime.bigint();
const send = (msg) => { if (process.send) process.send(msg); };
const fail = (role, err) => {
  send({ type: 'error', role, message: String(err?.message ?? err) });
};

const sockets = new Set();

/** Opens a socket, sends CONNECT, resolves on CONNACK 0 (bounded by timeoutMs). */
function mqttConnect({ clientId, clean, onFrame, onData, timeoutMs = 10000 }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: cfg.host, port: cfg.port });
    socket.setNoDelay(true);
    sockets.add(socket);
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${clientId}: no CONNACK within ${timeoutMs} ms`));
    }, timeoutMs);
    const splitter = new FrameSplitter((type, flags, buf, start, end) => {
      if (!connected) {
        if (type !== PACKET.CONNACK || end - start < 2) {
          throw new Error(`${clientId}: expected CONNACK, got packet type ${type}`);
        }
        const rc = buf[start + 1];
        clearTimeout(timer);
        if (rc !== 0) {
          reject(new Error(`${clientId}: CONNACK return code ${rc}${rc === 4 || rc === 5 ? ' (bad credentials / not authorised)' : ''}`));
          socket.destroy();
          return;
        }
        connected = true;
        resolve(socket);
        return;
      }
      onFrame(type, flags, buf, start, end);
    });
    socket.on('data', (chunk) => {
      try {
        if (connected && onData) onData(chunk); // nothing can follow CONNACK before we send again
        else splitter.push(chunk);
      } catch (err) { socket.destroy(err); }
      if (connected && socket.afterChunk) socket.afterChunk();
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (!connected) reject(new Error(`${clientId}: ${err.message}`));
      else if (socket.onFailure) socket.onFailure(err);
    });
    socket.on('close', () => {
      sockets.delete(socket);
      clearTimeout(timer);
      if (!connected) reject(new Error(`${clientId}: connection closed before CONNACK`));
      else if (socket.onFailure) socket.onFailure(new Error(`${clientId}: connection closed by the broker`));
    });
    socket.write(connectPacket({ clientId, username: cfg.username, password: cfg.password, clean }));
  });
}

// ---------------------------------------------------------------- publishers

class Publisher {
  constructor(index, group) {
    this.index = index;
    this.group = group;
    this.clientId = `${cfg.clientIdPrefix}pub-${index}`;
    this.tpl = publishTemplate({
      topic: `${cfg.topicPrefix}/${index}`, qos: cfg.qos, payloadSize: cfg.payloadSize, publisherIndex: index,
    });
    this.total = cfg.messages;
    this.sent = 0;
    this.acked = 0;
    this.badAcks = 0;
    this.pendingAcks = 0;
    this.free = 0; // window slots freed by PUBACKs, not yet refilled
    this.outstanding = new Uint8Array(65536); // messageIds in flight (QoS 1)
    this.writes = 0;
    this.finished = false;
  }

  async connect() {
    this.socket = await mqttConnect({
      clientId: this.clientId,
      clean: true,
      onFrame: (type, flags, buf, start) => {
        if (type === PACKET.PUBACK) {
          const id = buf.readUInt16BE(start);
          if (this.outstanding[id] === 1) { this.outstanding[id] = 0; this.pendingAcks++; } else this.badAcks++;
        }
      },
    });
    this.socket.onFailure = (err) => { if (!this.finished) this.group.onFailure(err); };
    this.socket.afterChunk = () => this.onAcks();
  }

  write(count, cb) {
    const first = this.sent;
    const buf = buildBatch(this.tpl, first, count);
    if (this.tpl.messageIdOffset >= 0) {
      for (let s = first; s < first + count; s++) this.outstanding[messageIdFor(s)] = 1;
    }
    this.sent += count;
    this.writes++;
    return this.socket.write(buf, cb);
  }

  start() {
    if (cfg.qos === 0) this.pumpOnce();
    else this.write(Math.min(cfg.window, this.total));
  }

  // QoS 0: one batch per turn (the group interleaves publishers and lets I/O run
  // between turns); a full kernel buffer parks the publisher until 'drain'.
  pumpOnce() {
    const n = Math.min(cfg.batch, this.total - this.sent);
    const last = this.sent + n >= this.total;
    // done once the last bytes are handed to the kernel
    const ok = this.write(n, last ? () => this.done() : undefined);
    if (last) return;
    if (ok) this.group.schedule(this);
    else this.socket.once('drain', () => this.group.schedule(this));
  }

  // QoS 1: every PUBACK frees one slot of the window; refill once per chunk read.
  // With --refill k > 1 the window is topped up only once k slots are free.
  onAcks() {
    const n = this.pendingAcks;
    if (n === 0) return;
    this.pendingAcks = 0;
    this.acked += n;
    this.free += n;
    const room = Math.min(this.free, this.total - this.sent);
    if (room > 0 && (this.free >= cfg.refill || this.sent + room >= this.total)) {
      this.free -= room;
      this.write(room);
    }
    if (this.acked >= this.total) this.done();
  }

  done() {
    if (this.finished) return;
    this.finished = true;
    this.tEnd = now();
    this.group.onPublisherDone(this);
  }
}

class PublisherGroup {
  constructor() {
    this.pubs = Array.from({ length: cfg.publishers }, (_, i) => new Publisher(i, this));
    this.doneCount = 0;
    this.failed = false;
  }

  async connect() {
    await Promise.all(this.pubs.map((p) => p.connect()));
  }

  /** QoS 0 round-robin: publishers ready to write get one batch each per event-loop turn. */
  schedule(pub) {
    (this.runnable ??= []).push(pub);
    if (!this.turnPending) {
      this.turnPending = true;
      setImmediate(() => {
        this.turnPending = false;
        const turn = this.runnable;
        this.runnable = [];
        for (const p of turn) p.pumpOnce();
      });
    }
  }

  go(cpu0, elu0) {
    this.cpu0 = cpu0;
    this.elu0 = elu0;
    this.t0 = now(); // just before the first PUBLISH is written
    for (const p of this.pubs) p.start(); // QoS 0: the first turn now, the rest on later ticks
    this.tStarted = now();
  }

  onPublisherDone() {
    if (++this.doneCount < this.pubs.length) return;
    const cpu = process.cpuUsage(this.cpu0);
    const elu = performance.eventLoopUtilization(this.elu0);
    send({
      type: 'pubdone',
      t0: String(this.t0),
      tStarted: String(this.tStarted),
      tEnd: String(now()),
      sent: this.pubs.reduce((a, p) => a + p.sent, 0),
      acked: this.pubs.reduce((a, p) => a + p.acked, 0),
      badAcks: this.pubs.reduce((a, p) => a + p.badAcks, 0),
      writes: this.pubs.reduce((a, p) => a + p.writes, 0),
      cpuUserUs: cpu.user, cpuSystemUs: cpu.system, elu: elu.utilization, eluActiveMs: elu.active,
    });
  }

  onFailure(err) {
    if (this.failed) return;
    this.failed = true;
    fail('pub', err);
  }
}

// ---------------------------------------------------------------- subscriber

class Subscriber {
  constructor() {
    this.expected = cfg.publishers * cfg.messages;
    this.seen = new Uint8Array(this.expected);
    this.lastSeq = new Int32Array(cfg.publishers).fill(-1);
    this.received = 0; // PUBLISH frames
    this.unique = 0;
    this.duplicates = 0;
    this.reordered = 0;
    this.foreign = 0;
    this.grantedQos = -1;
    this.ackIds = new Uint16Array(65536);
    this.ackCount = 0;
    this.tFirst = 0n;
    this.tLast = 0n;
    this.finished = false;
    this.measuring = false;
    this.chunks = 0; // socket reads while measuring
  }

  onPublish(qos, messageId, buf, p, end) {
    this.received++;
    if (qos > 0) {
      if (this.ackCount === this.ackIds.length) this.flushAcks();
      this.ackIds[this.ackCount++] = messageId;
    }
    if (end - p < 6) { this.foreign++; return; }
    const seq = buf.readUInt32BE(p);
    const pub = buf.readUInt16BE(p + 4);
    if (pub >= cfg.publishers || seq >= cfg.messages) { this.foreign++; return; }
    const k = pub * cfg.messages + seq;
    if (this.seen[k] === 1) { this.duplicates++; return; }
    this.seen[k] = 1;
    this.unique++;
    if (seq <= this.lastSeq[pub]) this.reordered++;
    else this.lastSeq[pub] = seq;
  }

  flushAcks() {
    const n = this.ackCount;
    if (n === 0) return;
    const out = Buffer.allocUnsafe(n * 4);
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      out[o] = 0x40; out[o + 1] = 0x02;
      out.writeUInt16BE(this.ackIds[i], o + 2);
    }
    this.ackCount = 0;
    this.socket.write(out);
  }

  async connect() {
    let subackResolve;
    const suback = new Promise((resolve) => { subackResolve = resolve; });
    const onFastFrame = (type, flags, buf, start, end) => {
      if (type === PACKET.PUBLISH) {
        const qos = (flags >> 1) & 3;
        let p = start + 2 + buf.readUInt16BE(start);
        let id = 0;
        if (qos > 0) { id = buf.readUInt16BE(p); p += 2; }
        this.onPublish(qos, id, buf, p, end);
      } else if (type === PACKET.SUBACK) {
        subackResolve(buf[start + 2]);
      }
    };
    let onData;
    if (cfg.parser === 'mqtt-packet') {
      // Full parse of every packet (the CONNACK is still split by the fast path).
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on('packet', (pkt) => {
        if (pkt.cmd === 'publish') {
          this.onPublish(pkt.qos, pkt.messageId ?? 0, pkt.payload, 0, pkt.payload.length);
        } else if (pkt.cmd === 'suback') subackResolve(pkt.granted[0]);
      });
      parser.on('error', (err) => this.onFailure(err));
      onData = (chunk) => parser.parse(chunk);
    }
    const clean = !cfg.persistentSession;
    this.socket = await mqttConnect({ clientId: `${cfg.clientIdPrefix}sub`, clean, onFrame: onFastFrame, onData });
    this.socket.onFailure = (err) => this.onFailure(err);
    this.socket.afterChunk = () => {
      if (!this.measuring) { this.flushAcks(); return; }
      this.chunks++;
      const t = now();
      if (this.tFirst === 0n && this.received > 0) this.tFirst = t;
      this.tLast = t;
      this.flushAcks();
      if (this.unique >= this.expected) this.done(false);
    };
    this.socket.write(subscribePacket({ topic: `${cfg.topicPrefix}/#`, qos: cfg.qos, messageId: 1 }));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no SUBACK within 10000 ms')), 10000).unref());
    this.grantedQos = await Promise.race([suback, timeout]);
    if (this.grantedQos === 0x80) throw new Error(`SUBACK refused ${cfg.topicPrefix}/# (0x80): not authorised?`);
  }

  go(cpu0, elu0) {
    this.cpu0 = cpu0;
    this.elu0 = elu0;
    this.measuring = true;
  }

  // After the publishers are done: give up once nothing arrived for drainMs.
  startDrain() {
    if (this.finished || this.drainTimer) return;
    let lastCount = this.received;
    let lastChange = Date.now();
    this.drainTimer = setInterval(() => {
      if (this.received !== lastCount) { lastCount = this.received; lastChange = Date.now(); return; }
      if (Date.now() - lastChange >= cfg.drainMs) this.done(false);
    }, Math.max(10, Math.min(100, cfg.drainMs / 5)));
  }

  done(aborted) {
    if (this.finished) return;
    this.finished = true;
    if (this.drainTimer) clearInterval(this.drainTimer);
    const cpu = process.cpuUsage(this.cpu0);
    const elu = this.elu0 ? performance.eventLoopUtilization(this.elu0) : { utilization: 0, active: 0 };
    send({
      type: 'subdone',
      aborted,
      tFirst: String(this.tFirst),
      tLast: String(this.tLast),
      tDone: String(now()),
      expected: this.expected,
      received: this.received,
      unique: this.unique,
      missing: this.expected - this.unique,
      duplicates: this.duplicates,
      reordered: this.reordered,
      foreign: this.foreign,
      grantedQos: this.grantedQos,
      chunks: this.chunks,
      cpuUserUs: cpu.user, cpuSystemUs: cpu.system, elu: elu.utilization, eluActiveMs: elu.active,
    });
  }

  onFailure(err) {
    if (this.finished) return;
    fail('sub', err);
  }
}

// ---------------------------------------------------------------- main

const role = cfg.role ?? 'both';
const group = role === 'pub' || role === 'both' ? new PublisherGroup() : null;
const sub = role === 'sub' || role === 'both' ? new Subscriber() : null;

function shutdown(code = 0) {
  for (const s of sockets) {
    try { if (!s.destroyed) s.end(disconnectPacket()); } catch { /* closing anyway */ }
  }
  // Bounded: exit once every socket is closed or after 1 s.
  const deadline = Date.now() + 1000;
  const t = setInterval(() => {
    if (sockets.size === 0 || Date.now() > deadline) { clearInterval(t); process.exit(code); }
  }, 20);
}

process.on('message', (msg) => {
  switch (msg?.cmd) {
    case 'go': {
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      if (sub) sub.go(cpu0, elu0);
      if (group) group.go(cpu0, elu0);
      break;
    }
    case 'pubdone': if (sub) sub.startDrain(); break;
    case 'finish': if (sub) sub.done(true); break;
    case 'exit': shutdown(0); break;
    default: break;
  }
});
process.on('disconnect', () => shutdown(0)); // parent went away

try {
  // Subscriber first, so it is subscribed before any publisher can publish.
  if (sub) { await sub.connect(); send({ type: 'ready', role: 'sub' }); }
  if (group) { await group.connect(); send({ type: 'ready', role: 'pub' }); }
} catch (err) {
  fail(sub && !group ? 'sub' : 'pub', err);
}
