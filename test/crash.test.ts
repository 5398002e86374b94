import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDaemon } from './helpers/daemon.js';
import { RawMqtt, addThing, connectClient, publishUntilCut } from './helpers/mqtt.js';
import { straceWorks } from './helpers/strace.js';

const ROUNDS = 3;
const WINDOW = 20;

describe('kill -9 while publishing QoS 1 to an offline persistent session', () => {
  it('delivers every PUBACKed message after restart, in order', { timeout: 120_000 }, async () => {
    let daemon = await TestDaemon.start({ config: { mqtt: { maxQueuedMessages: 100_000 } } });
    const dataDir = daemon.dataDir;
    await addThing(daemon.socket, 'crash', 'pw', { publish: ['k/#'], subscribe: ['k/#'], clientIds: ['crash-*'] });
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'crash-sub', username: 'crash', password: 'pw', clean: false });
    await subscriber.subscribeAsync('k/#', { qos: 1 });
    subscriber.end(true);

    const acked: number[] = [];
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const current = daemon;
      const got = await publishUntilCut(current.mqttUrl, {
        client: { clientId: 'crash-pub', username: 'crash', password: 'pw' },
        message: (n) => ({ topic: `k/${n}`, payload: String(n) }),
        startAt: seq, window: WINDOW, killAfterMs: 300 + round * 250, kill: () => void current.kill(),
      });
      await current.kill();
      expect(got.length).toBeGreaterThan(0);
      acked.push(...got);
      seq = Math.max(...got) + WINDOW + 1;
      daemon = await TestDaemon.start({ config: { mqtt: { maxQueuedMessages: 100_000 } }, dataDir });
    }

    try {
      // Drain the queue: everything that was stored arrives; stop when quiet for a second.
      const received: number[] = [];
      const client = mqtt.connect(daemon.mqttUrl, { clientId: 'crash-sub', username: 'crash', password: 'pw', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      client.on('message', (_topic, payload) => received.push(Number(payload.toString())));
      let last = -1;
      for (let i = 0; i < 120 && (received.length !== last || received.length === 0); i++) {
        last = received.length;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      client.end(true);

      const missing = acked.filter((n) => !received.includes(n));
      expect(missing, `PUBACKed but not delivered (of ${acked.length} acked, ${received.length} received)`).toEqual([]);
      const distinct = received.filter((n, i) => received.indexOf(n) === i);
      expect(distinct).toEqual([...distinct].sort((a, b) => a - b));
    } finally {
      await daemon.cleanup();
    }
  });
});

describe('kill -9 while the write-ahead log is checkpointed', () => {
  /** 32 KiB that say which message they are: eight pages of the log each, a checkpoint every ~128 messages. */
  const payloadOf = (n: number) => Buffer.from(Array.from({ length: 32 * 1024 }, (_, i) => (n * 31 + i) & 255));

  it('delivers every PUBACKed message whole after restart, and leaves the database intact', { timeout: 120_000 }, async () => {
    const config = { mqtt: { maxQueuedMessages: 100_000, maxQueuedBytesPerSession: 1024 * 1024 * 1024 } };
    let daemon = await TestDaemon.start({ config });
    const dataDir = daemon.dataDir;
    await addThing(daemon.socket, 'ckpt', 'pw', { publish: ['c/#'], subscribe: ['c/#'], clientIds: ['ckpt-*'] });
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'ckpt-sub', username: 'ckpt', password: 'pw', clean: false });
    await subscriber.subscribeAsync('c/#', { qos: 1 });
    subscriber.end(true);

    const acked: number[] = [];
    let seq = 0;
    for (const killAfterMs of [700, 1100, 1500]) {
      const current = daemon;
      const got = await publishUntilCut(current.mqttUrl, {
        client: { clientId: 'ckpt-pub', username: 'ckpt', password: 'pw' },
        message: (n) => ({ topic: `c/${n}`, payload: payloadOf(n) }),
        startAt: seq, window: WINDOW, killAfterMs, kill: () => void current.kill(),
      });
      await current.kill();
      expect(got.length).toBeGreaterThan(0);
      expect(integrityOf(dataDir)).toBe('ok');
      acked.push(...got);
      seq = Math.max(...got) + WINDOW + 1;
      daemon = await TestDaemon.start({ config, dataDir });
    }

    try {
      const received = new Map<number, boolean>();
      const client = mqtt.connect(daemon.mqttUrl, { clientId: 'ckpt-sub', username: 'ckpt', password: 'pw', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
      client.on('message', (topic, payload) => {
        const n = Number(topic.slice('c/'.length));
        received.set(n, payload.equals(payloadOf(n)));
      });
      let last = -1;
      for (let i = 0; i < 120 && (received.size !== last || received.size === 0); i++) {
        last = received.size;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      client.end(true);
      expect(acked.filter((n) => !received.has(n)), `PUBACKed but not delivered (of ${acked.length} acked, ${received.size} received)`).toEqual([]);
      expect([...received].filter(([, whole]) => !whole).map(([n]) => n), 'delivered with another payload').toEqual([]);
    } finally {
      await daemon.cleanup();
    }
  });

  /** SQLite's check of the database as a kill -9 left it (opening it recovers the log, as the daemon's start does). */
  function integrityOf(dataDir: string): unknown {
    const db = new Database(join(dataDir, 'outpost.db'));
    try {
      return db.pragma('integrity_check', { simple: true });
    } finally {
      db.close();
    }
  }
});

// every fdatasync of the daemon takes 400 ms longer: a commit's window is wide enough to kill it in
const SLOW_SYNCS = ['strace', '-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:delay_enter=400000'];

describe.skipIf(!straceWorks)('kill -9 while a persistent session\'s QoS 2 PUBLISH is delivered and its PUBREC not sent yet', () => {
  it('does not publish it again when its sender sends it again after the restart (MQTT-4.3.3-2)', { timeout: 120_000 }, async () => {
    const config = { mqtt: { allowAnonymous: true, anonymousPolicy: { publish: ['once/#'], subscribe: ['once/#'] } } };
    let daemon = await TestDaemon.start({ config, wrapper: SLOW_SYNCS, startTimeoutMs: 60_000 });
    const dataDir = daemon.dataDir;
    const received: string[] = [];
    const watch = async () => {
      const watcher = await connectClient(daemon.mqttUrl, { clientId: 'once-watcher' });
      watcher.on('message', (_topic, payload) => received.push(payload.toString()));
      await watcher.subscribeAsync('once/x', { qos: 2 });
      return watcher;
    };
    const sender = async () => {
      const raw = await RawMqtt.open(daemon.port('mqtt'));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'once-sender', keepalive: 60 });
      expect(await raw.waitFor((packet) => packet.cmd === 'connack', 10_000)).toMatchObject({ returnCode: 0 });
      return raw;
    };
    let watcher = await watch();
    let raw = await sender();
    try {
      raw.send({ cmd: 'publish', topic: 'once/x', payload: Buffer.from('exactly once'), qos: 2, messageId: 7, dup: false, retain: false });
      // killed as soon as it is delivered
      for (let waited = 0; waited < 10_000 && received.length === 0; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(received).toEqual(['exactly once']);
      // strace's child is the daemon
      const pid = Number(readFileSync(`/proc/${daemon.process.pid}/task/${daemon.process.pid}/children`, 'utf8').trim().split(' ')[0]);
      process.kill(pid, 'SIGKILL');
      await daemon.kill();
      watcher.end(true);
      raw.end();

      daemon = await TestDaemon.start({ config, dataDir });
      watcher = await watch();
      raw = await sender();
      // no PUBREC came before the kill, or it was not read: sent again, as the client must (MQTT-4.4.0-1)
      raw.send({ cmd: 'publish', topic: 'once/x', payload: Buffer.from('exactly once'), qos: 2, messageId: 7, dup: true, retain: false });
      expect(await raw.waitFor((packet) => packet.cmd === 'pubrec', 10_000)).toMatchObject({ messageId: 7 });
      raw.send({ cmd: 'pubrel', messageId: 7 });
      expect(await raw.waitFor((packet) => packet.cmd === 'pubcomp', 10_000)).toMatchObject({ messageId: 7 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(received).toEqual(['exactly once']);
    } finally {
      watcher.end(true);
      raw.end();
      await daemon.cleanup();
    }
  });
});
