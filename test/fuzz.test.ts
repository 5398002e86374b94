import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { collectMessages, connectClient } from './helpers/mqtt.js';

const ITERATIONS = 3000;
const CONCURRENCY = 16;
const TIME_BUDGET_MS = 90_000;

/** A small deterministic PRNG so a failure can be replayed from its seed. */
function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const validConnect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'fuzz', keepalive: 10 } as any);
const templates: Buffer[] = [
  validConnect,
  mqttPacket.generate({ cmd: 'publish', topic: 'fuzz/a', payload: Buffer.from('hello'), qos: 1, messageId: 7, retain: false, dup: false } as any),
  mqttPacket.generate({ cmd: 'publish', topic: 'fuzz/r', payload: Buffer.from('retained'), qos: 2, messageId: 9, retain: true, dup: false } as any),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'fuzz/#', qos: 1 }] } as any),
  mqttPacket.generate({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['fuzz/#'] } as any),
  mqttPacket.generate({ cmd: 'pubrel', messageId: 9 } as any),
  mqttPacket.generate({ cmd: 'pingreq' } as any),
];

function mutate(random: () => number): Buffer {
  const pick = () => templates[Math.floor(random() * templates.length)];
  const kind = Math.floor(random() * 6);
  switch (kind) {
    case 0: // pure noise
      return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
    case 1: { // truncated packet after a valid CONNECT
      const packet = pick();
      return Buffer.concat([validConnect, packet.subarray(0, Math.floor(random() * packet.length))]);
    }
    case 2: { // bit flips in a valid sequence
      const bytes = Buffer.concat([validConnect, pick(), pick()]);
      for (let i = 0; i < 1 + random() * 4; i++) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      return bytes;
    }
    case 3: { // absurd remaining length
      const header = Buffer.from([0x30 | Math.floor(random() * 16), 0xff, 0xff, 0xff, 0x7f]);
      return Buffer.concat([validConnect, header, Buffer.alloc(Math.floor(random() * 32))]);
    }
    case 4: // packets before CONNECT
      return Buffer.concat([pick(), pick()]);
    default: { // valid CONNECT then garbage
      return Buffer.concat([validConnect, Buffer.from(Array.from({ length: Math.floor(random() * 128) }, () => Math.floor(random() * 256)))]);
    }
  }
}

function throwBytes(port: number, bytes: Buffer, random: () => number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = () => { socket.destroy(); resolve(); };
    const timer = setTimeout(done, 100 + random() * 200);
    socket.on('error', () => { clearTimeout(timer); done(); });
    socket.on('close', () => { clearTimeout(timer); resolve(); });
    socket.on('connect', () => {
      // Sometimes split the bytes across writes to exercise partial reads.
      const cut = Math.floor(random() * bytes.length);
      socket.write(bytes.subarray(0, cut));
      setImmediate(() => { if (!socket.destroyed) socket.end(bytes.subarray(cut)); });
    });
  });
}

describe('fuzzing the MQTT listener', () => {
  it(`survives ${ITERATIONS} random and truncated packets and keeps serving`, { timeout: TIME_BUDGET_MS + 30_000 }, async () => {
    const daemon = await TestDaemon.start({ config: { mqtt: { allowAnonymous: true } } });
    try {
      const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
      const random = prng(seed);
      const port = daemon.port('mqtt');
      const started = Date.now();
      let sent = 0;
      const worker = async () => {
        while (sent < ITERATIONS && Date.now() - started < TIME_BUDGET_MS) {
          sent++;
          await throwBytes(port, mutate(random), random);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      expect(daemon.process.exitCode, `daemon died (seed ${seed})`).toBeNull();
      expect(sent).toBeGreaterThanOrEqual(Math.min(ITERATIONS, 500));

      const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'after-fuzz-sub' });
      await subscriber.subscribeAsync('check/#', { qos: 1 });
      const arriving = collectMessages(subscriber, 1);
      const publisher = await connectClient(daemon.mqttUrl, { clientId: 'after-fuzz-pub' });
      await publisher.publishAsync('check/alive', 'yes', { qos: 1 });
      expect((await arriving)[0].payload).toBe('yes');
      const health = await fetch(`http://127.0.0.1:${daemon.port('http')}/healthz`);
      expect(health.status, `seed ${seed}`).toBe(200);
      subscriber.end(true);
      publisher.end(true);
    } finally {
      await daemon.cleanup();
    }
  });
});
