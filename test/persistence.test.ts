import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store/store.js';
import { migrations } from '../src/broker/persistence/migrations.js';
import { SqlitePersistence, type DropReason, type Packet, type SqlitePersistenceOptions } from '../src/broker/persistence/sqlite-persistence.js';

// What aedes-persistence's abstract suite (test/conformance/) does not cover:
// durability across a reopen and a kill -9, the bounds, and the broker's own policies.

const BROKER = { id: 'broker-1' };
const persistent = (id: string) => ({ id, clean: false });
const clean = (id: string) => ({ id, clean: true });

let dir: string;
let stores: Store[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-persistence-'));
  stores = [];
});

afterEach(async () => {
  for (const store of stores) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens a persistence on `file` with a connection of its own. Opening the same
 * file again without closing the first is what a restart after a crash sees:
 * nothing drained, nothing checkpointed, only what was committed.
 */
async function open(file: string, options: Partial<SqlitePersistenceOptions> = {}) {
  const store = new Store({ file, synchronous: 'full', cacheSizeKb: 1024 });
  stores.push(store);
  const drops: Array<[DropReason, string | undefined]> = [];
  const persistence = new SqlitePersistence({
    store,
    maxQueuedMessages: 100,
    maxRetained: 100,
    onDrop: (reason, clientId) => drops.push([reason, clientId]),
    ...options,
  });
  await persistence.setup(BROKER);
  return { store, persistence, drops };
}

async function collect<T>(stream: Readable): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item as T);
  return items;
}

let counter = 0;
function publish(topic: string, payload: string, extra: Partial<Packet> = {}): Packet {
  return { cmd: 'publish', brokerId: BROKER.id, brokerCounter: ++counter, topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, ...extra };
}

const payloads = (packets: Packet[]) => packets.map((packet) => String(packet.payload));

describe('durability', () => {
  it('a reopened database has the retained messages, subscriptions, queues, incoming QoS 2 packets and wills', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence: before } = await open(file);

    await before.storeRetained(publish('home/temp', '21.5', { retain: true }));
    await before.addSubscriptions(persistent('sink'), [
      { topic: 'home/#', qos: 1, rh: 0, rap: true, nl: false },
      { topic: 'alerts', qos: 0, rh: 0, rap: false, nl: true, subscriptionIdentifier: 7 },
    ]);
    const subs = await before.subscriptionsByTopic('home/temp');
    const queued = ['a', 'b', 'c', 'd'].map((payload) => publish('home/temp', payload, { qos: payload === 'c' ? 2 : 1 }));
    for (const packet of queued) await before.outgoingEnqueueCombi(subs, packet);
    // 'a' is in flight with identifier 1, 'c' has reached PUBREL.
    await before.outgoingUpdate(persistent('sink'), { ...queued[0], messageId: 1 });
    await before.outgoingUpdate(persistent('sink'), { ...queued[2], messageId: 3 });
    await before.outgoingUpdate(persistent('sink'), { cmd: 'pubrel', messageId: 3 });
    await before.incomingStorePacket(persistent('device'), publish('home/cmd', 'on', { qos: 2, messageId: 42 }));
    const will: Packet = { topic: 'home/device/status', payload: Buffer.from('offline'), qos: 1, retain: true };
    await before.putWill(persistent('device'), will);

    const { persistence: after } = await open(file);
    await after.setup({ id: 'broker-2' });

    expect(await collect(after.createRetainedStream('home/+'))).toEqual([
      { cmd: 'publish', brokerId: BROKER.id, brokerCounter: expect.any(Number), topic: 'home/temp', payload: Buffer.from('21.5'), qos: 1, retain: true, dup: false },
    ]);
    expect(await after.subscriptionsByClient(persistent('sink'))).toEqual([
      { topic: 'alerts', qos: 0, rh: 0, rap: false, nl: true, subscriptionIdentifier: 7 },
      { topic: 'home/#', qos: 1, rh: 0, rap: true, nl: false },
    ]);
    expect(await after.subscriptionsByTopic('home/temp')).toEqual(subs);
    expect(await after.countOffline()).toEqual({ subsCount: 1, clientsCount: 1 });

    const restored = await collect<Packet>(after.outgoingStream(persistent('sink')));
    expect(restored).toEqual([
      { ...queued[0], messageId: 1 },
      { ...queued[1], messageId: undefined },
      { cmd: 'pubrel', messageId: 3 },
      { ...queued[3], messageId: undefined },
    ]);
    expect(await after.outgoingClearMessageId(persistent('sink'), { cmd: 'puback', messageId: 1 })).toEqual({ ...queued[0], messageId: 1 });

    expect(await after.incomingGetPacket(persistent('device'), { messageId: 42 })).toMatchObject({ topic: 'home/cmd', payload: Buffer.from('on'), qos: 2, messageId: 42 });
    const expectedWill = { ...will, brokerId: BROKER.id, clientId: 'device' };
    expect(await after.getWill(persistent('device'))).toEqual(expectedWill);
    // The broker that stored the will is gone, so aedes will publish it.
    expect(await collect(after.streamWill({ 'broker-2': Date.now() }))).toEqual([expectedWill]);
  });

  it('keeps every write it acknowledged before a kill -9, queues in enqueue order', async () => {
    const file = join(dir, 'outpost.db');
    const src = (path: string) => fileURLToPath(new URL(`../src/${path}`, import.meta.url));
    const child = join(dir, 'crash.ts');
    // Acknowledges as aedes would (after each promise), spreads the writes over
    // several group commits, and kills itself while later ones are in flight. Each
    // acknowledgement is written to stdout at once (console.log's may be lost to the kill).
    writeFileSync(child, `
      import { writeSync } from 'node:fs';
      import { Store } from ${JSON.stringify(src('store/store.ts'))};
      import { SqlitePersistence } from ${JSON.stringify(src('broker/persistence/sqlite-persistence.ts'))};
      const store = new Store({ file: process.argv[2], synchronous: 'full', cacheSizeKb: 1024 });
      const persistence = new SqlitePersistence({ store, maxQueuedMessages: 1000, maxRetained: 100 });
      await persistence.setup({ id: 'crashing-broker' });
      await persistence.addSubscriptions({ id: 'sink', clean: false }, [{ topic: 'k/#', qos: 1 }]);
      await persistence.putWill({ id: 'sink', clean: false }, { topic: 'gone', payload: Buffer.from('sink'), qos: 0, retain: false });
      await persistence.storeRetained({ cmd: 'publish', topic: 'k/last', payload: Buffer.from('kept'), qos: 1, retain: true });
      writeSync(1, 'setup acked\\n');
      for (let i = 0; i < 400; i++) {
        const packet = { cmd: 'publish', brokerId: 'crashing-broker', brokerCounter: i + 1, topic: 'k/' + i, payload: Buffer.from(String(i)), qos: 1, retain: false };
        persistence.subscriptionsByTopic(packet.topic)
          .then((subs) => persistence.outgoingEnqueueCombi(subs, packet))
          .then(() => {
            writeSync(1, 'acked ' + i + '\\n');
            if (i === 250) process.kill(process.pid, 'SIGKILL');
          });
        if (i % 25 === 24) await new Promise((resolve) => setImmediate(resolve));
      }
    `);
    const viteNode = fileURLToPath(new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url));
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [viteNode, child, file], (error, stdout) => {
        if (error?.signal === 'SIGKILL') resolve(stdout);
        else reject(error ?? new Error(`crash child exited normally:\n${stdout}`));
      });
    });
    expect(output).toContain('setup acked');
    const acked = [...output.matchAll(/acked (\d+)/g)].map((match) => Number(match[1]));
    expect(acked).toContain(250);

    const { persistence } = await open(file);
    const queued = payloads(await collect<Packet>(persistence.outgoingStream(persistent('sink')))).map(Number);
    expect(queued).toEqual([...queued].sort((a, b) => a - b));
    expect(queued).toEqual(expect.arrayContaining(acked));
    expect(await persistence.subscriptionsByClient(persistent('sink'))).toMatchObject([{ topic: 'k/#', qos: 1 }]);
    expect(await persistence.getWill(persistent('sink'))).toMatchObject({ topic: 'gone', brokerId: 'crashing-broker' });
    expect(payloads(await collect(persistence.createRetainedStream('k/last')))).toEqual(['kept']);
  }, 30_000);

  it('takes a stored QoS 2 PUBLISH sent again for a duplicate only if it was stored in this run (which publishes it)', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence: before } = await open(file);
    const incoming = publish('home/cmd', 'on', { qos: 2, messageId: 42 });
    await before.incomingStorePacket(persistent('device'), incoming);
    // stored in this run, which publishes it next: a resend is a duplicate
    await expect(before.incomingGetPacket(persistent('device'), { cmd: 'publish', messageId: 42 })).resolves.toMatchObject({ topic: 'home/cmd' });
    await expect(before.incomingGetPacket(persistent('device'), { cmd: 'pubrel', messageId: 42 })).resolves.toMatchObject({ topic: 'home/cmd' });
    // after a crash nothing says whether it was published: published again (a duplicate, never a loss); its PUBREL still finds it
    const { persistence: after } = await open(file);
    await expect(after.incomingGetPacket(persistent('device'), { cmd: 'publish', messageId: 42 })).rejects.toThrow();
    await expect(after.incomingGetPacket(persistent('device'), { cmd: 'pubrel', messageId: 42 })).resolves.toMatchObject({ topic: 'home/cmd' });
  });

  it('resolves only after the write is committed', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence } = await open(file);
    const { store: reader } = await open(file);
    const pending = persistence.storeRetained(publish('a', '1', { retain: true }));
    const count = () => reader.db.prepare('SELECT COUNT(*) AS n FROM broker_retained_messages').get();
    expect(count()).toEqual({ n: 0 });
    await pending;
    expect(count()).toEqual({ n: 1 });
  });
});

describe('outgoing queue bound', () => {
  it('drops the oldest packet of a full queue and reports each drop', async () => {
    const { persistence, drops } = await open(join(dir, 'outpost.db'), { maxQueuedMessages: 3 });
    const subs = [{ clientId: 'slow' }, { clientId: 'fast' }];
    const first = publish('t', '1');
    for (const packet of [first, publish('t', '2'), publish('t', '3')]) await persistence.outgoingEnqueueCombi(subs, packet);
    // Only 'fast' acknowledges '1'.
    await persistence.outgoingUpdate(persistent('fast'), { ...first, messageId: 9 });
    await persistence.outgoingClearMessageId(persistent('fast'), { cmd: 'puback', messageId: 9 });
    expect(drops).toEqual([]);

    for (const payload of ['4', '5']) await persistence.outgoingEnqueueCombi(subs, publish('t', payload));

    expect(payloads(await collect(persistence.outgoingStream(persistent('slow'))))).toEqual(['3', '4', '5']);
    expect(payloads(await collect(persistence.outgoingStream(persistent('fast'))))).toEqual(['3', '4', '5']);
    expect(drops).toEqual([['queue-full', 'slow'], ['queue-full', 'slow'], ['queue-full', 'fast']]);
  });

  it('leaves out the first maxInflightMessages sent and not acknowledged; those sent beyond count as queued', async () => {
    const { persistence, drops } = await open(join(dir, 'outpost.db'), { maxQueuedMessages: 2, maxInflightMessages: 1 });
    const [a, b] = [publish('t', 'a'), publish('t', 'b')];
    for (const packet of [a, b]) await persistence.outgoingEnqueue({ clientId: 'c' }, packet);
    await persistence.outgoingUpdate(persistent('c'), { ...a, messageId: 1 });
    await persistence.outgoingUpdate(persistent('c'), { ...b, messageId: 2 });
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', 'c'));
    expect(drops).toEqual([]);
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', 'd'));
    expect(payloads(await collect(persistence.outgoingStream(persistent('c'))))).toEqual(['a', 'c', 'd']);
    expect(drops).toEqual([['queue-full', 'c']]);
  });

  it('holds across a reopen, also when the bound was lowered', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence: before } = await open(file, { maxQueuedMessages: 5 });
    for (const payload of ['1', '2', '3', '4', '5']) await before.outgoingEnqueue({ clientId: 'c' }, publish('t', payload));

    const { persistence: after, drops } = await open(file, { maxQueuedMessages: 3 });
    await after.outgoingEnqueue({ clientId: 'c' }, publish('t', '6'));

    expect(payloads(await collect(after.outgoingStream(persistent('c'))))).toEqual(['4', '5', '6']);
    expect(drops).toEqual([['queue-full', 'c'], ['queue-full', 'c'], ['queue-full', 'c']]);
  });

  it('by bytes (topic and payload) drops the message that does not fit and keeps the queue, freeing what is acknowledged', async () => {
    // each message counts 1 byte of topic and 4 of payload
    const { persistence, drops } = await open(join(dir, 'outpost.db'), { maxQueuedBytes: 12 });
    const first = publish('t', '1111');
    for (const packet of [first, publish('t', '2222'), publish('t', '3333')]) await persistence.outgoingEnqueue({ clientId: 'c' }, packet);
    expect(payloads(await collect(persistence.outgoingStream(persistent('c'))))).toEqual(['1111', '2222']);
    expect(drops).toEqual([['queue-full', 'c']]);

    // a PUBREL replacing a sent PUBLISH keeps no topic or payload; a PUBACK frees its message
    await persistence.outgoingUpdate(persistent('c'), { ...first, messageId: 7 });
    await persistence.outgoingUpdate(persistent('c'), { cmd: 'pubrel', messageId: 7 });
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', '4444'));
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', '5555'));
    expect(drops).toEqual([['queue-full', 'c'], ['queue-full', 'c']]);
    await persistence.outgoingClearMessageId(persistent('c'), { cmd: 'pubcomp', messageId: 7 });
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', '6'));
    expect(payloads((await collect<Packet>(persistence.outgoingStream(persistent('c')))).filter((packet) => packet.cmd === 'publish')))
      .toEqual(['2222', '4444', '6']);
  });

  it('by bytes holds across a reopen, counted from the stored messages', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence: before } = await open(file);
    for (const payload of ['ü1', '2222']) await before.outgoingEnqueue({ clientId: 'c' }, publish('tö', payload));

    // 3 + 3 and 3 + 4 bytes stored: 13 of 15
    const { persistence: after, drops } = await open(file, { maxQueuedBytes: 15 });
    await after.outgoingEnqueue({ clientId: 'c' }, publish('t', '33'));
    await after.outgoingEnqueue({ clientId: 'c' }, publish('t', '4'));

    expect(payloads(await collect(after.outgoingStream(persistent('c'))))).toEqual(['ü1', '2222', '4']);
    expect(drops).toEqual([['queue-full', 'c']]);
  });

  it('queues a publication without RETAIN (MQTT-3.3.1-9), also one queued with it by an older version, and a retained message sent on SUBSCRIBE with it and its identifier (MQTT-3.3.1-8)', async () => {
    const file = join(dir, 'outpost.db');
    const older = new Store({ file, synchronous: 'full', cacheSizeKb: 1024 });
    stores.push(older);
    older.migrate('broker', migrations.slice(0, 3));
    older.db.prepare("INSERT INTO broker_outgoing_packets (client_id, cmd, broker_id, broker_counter, topic, payload, qos, retain, dup) VALUES ('c', 'publish', 'old', 1, 't', 'old', 1, 1, 0)").run();
    const { persistence } = await open(file);
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', 'live', { retain: true }));
    await persistence.outgoingEnqueueSentRetained('c', { ...publish('t', 'sent', { retain: true }), brokerId: null, messageId: 7 });
    const queued = await collect<Packet>(persistence.outgoingStream(persistent('c')));
    expect(queued.map(({ payload, retain, messageId }) => [String(payload), retain, messageId])).toEqual([['old', false, undefined], ['live', false, undefined], ['sent', true, 7]]);
  });

  it('queues one copy per client however many of its filters match', async () => {
    const { persistence } = await open(join(dir, 'outpost.db'));
    await persistence.addSubscriptions(persistent('c'), [{ topic: 'a/#', qos: 1 }, { topic: 'a/b', qos: 2 }]);
    const packet = publish('a/b', 'x');
    await persistence.outgoingEnqueueCombi(await persistence.subscriptionsByTopic('a/b'), packet);
    // aedes "clears" the second, deduplicated delivery with a packet that has no identifier.
    await persistence.outgoingClearMessageId(persistent('c'), { ...packet, messageId: undefined });
    expect(payloads(await collect(persistence.outgoingStream(persistent('c'))))).toEqual(['x']);
  });
});

describe('retained messages', () => {
  it('kept on reserved $aws/ topics by an older version are deleted at the upgrade, the others kept', async () => {
    const file = join(dir, 'outpost.db');
    const older = new Store({ file, synchronous: 'full', cacheSizeKb: 1024 });
    stores.push(older);
    older.migrate('broker', migrations.slice(0, 2));
    const insert = older.db.prepare('INSERT INTO broker_retained_messages (cmd, topic, payload, qos, retain) VALUES (?, ?, ?, 1, 1)');
    for (const topic of ['$aws/things/lamp/shadow/update', '$awsome/x', 'lamps/lamp/state']) insert.run('publish', topic, Buffer.from('on'));
    const { persistence } = await open(file);
    const topics = async (filter: string) => (await collect<Packet>(persistence.createRetainedStream(filter))).map((packet) => packet.topic);
    expect(await topics('$aws/#')).toEqual([]);
    expect([...await topics('$awsome/#'), ...await topics('#')]).toEqual(['$awsome/x', 'lamps/lamp/state']);
  });

  it('refuses a new topic beyond maxRetained but always updates and deletes existing ones', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence, drops } = await open(file, { maxRetained: 2 });
    await persistence.storeRetained(publish('a', '1', { retain: true }));
    await persistence.storeRetained(publish('b', '1', { retain: true }));
    await persistence.storeRetained(publish('c', '1', { retain: true }));
    expect(drops).toEqual([['retained-limit', undefined]]);

    await persistence.storeRetained(publish('a', '2', { retain: true }));
    expect(drops).toHaveLength(1);
    expect(payloads(await collect(persistence.createRetainedStream('#')))).toEqual(['2', '1']);

    await persistence.storeRetained(publish('a', '', { retain: true }));
    await persistence.storeRetained(publish('c', '1', { retain: true }));
    expect((await collect<Packet>(persistence.createRetainedStream('#'))).map((packet) => packet.topic)).toEqual(['b', 'c']);

    const { persistence: reopened, drops: reopenedDrops } = await open(file, { maxRetained: 2 });
    await reopened.storeRetained(publish('d', '1', { retain: true }));
    expect(reopenedDrops).toEqual([['retained-limit', undefined]]);
  });

  it('keeps at most maxRetainedBytes of topic and payload: a message beyond it is not retained and removes the one it would replace', async () => {
    const file = join(dir, 'outpost.db');
    // each topic counts 1 byte
    const { persistence, drops } = await open(file, { maxRetainedBytes: 12 });
    await persistence.storeRetained(publish('a', '12345', { retain: true }));
    await persistence.storeRetained(publish('b', '1234', { retain: true }));
    await persistence.storeRetained(publish('c', '12', { retain: true }));
    expect(drops).toEqual([['retained-limit', undefined]]);
    // a replacement counts instead of the message it replaces
    await persistence.storeRetained(publish('a', '123456', { retain: true }));
    expect(drops).toHaveLength(1);
    // a string payload counts as its UTF-8 bytes
    await persistence.storeRetained({ ...publish('b', ''), payload: 'ééé', retain: true });
    expect(drops).toHaveLength(2);
    expect((await collect<Packet>(persistence.createRetainedStream('#'))).map((packet) => packet.topic)).toEqual(['a']);
    const { persistence: reopened, drops: reopenedDrops } = await open(file, { maxRetainedBytes: 12 });
    await reopened.storeRetained(publish('d', '12345', { retain: true }));
    await reopened.storeRetained(publish('e', '1234', { retain: true }));
    expect(reopenedDrops).toEqual([['retained-limit', undefined]]);
    expect((await collect<Packet>(reopened.createRetainedStream('#'))).map((packet) => packet.topic)).toEqual(['a', 'e']);
  });

  it('deletes the retained message on an empty payload and does not store it (MQTT-3.3.1-10/11)', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence } = await open(file);
    await persistence.storeRetained(publish('a/b', 'on', { retain: true }));
    await persistence.storeRetained(publish('a/b', '', { retain: true }));
    await persistence.storeRetained({ cmd: 'publish', topic: 'never', payload: '', qos: 0, retain: true });
    expect(await collect(persistence.createRetainedStream('#'))).toEqual([]);
    const { persistence: reopened } = await open(file);
    expect(await collect(reopened.createRetainedStream('#'))).toEqual([]);
  });

  it('matches topic filters as MQTT does', async () => {
    const { persistence } = await open(join(dir, 'outpost.db'));
    for (const topic of ['sport', 'sport/tennis', 'sport/tennis/player1', 'sport/', 'sports', 'sport0', '/finance', '$SYS/uptime']) {
      await persistence.storeRetained(publish(topic, topic, { retain: true }));
    }
    const matching = async (...filters: string[]) => payloads(await collect(persistence.createRetainedStreamCombi(filters))).sort();

    expect(await matching('sport/#')).toEqual(['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1']);
    expect(await matching('sport/+')).toEqual(['sport/', 'sport/tennis']);
    expect(await matching('+')).toEqual(['sport', 'sport0', 'sports']);
    expect(await matching('+/+')).toEqual(['/finance', 'sport/', 'sport/tennis']);
    // MQTT-4.7.2-1
    expect(await matching('#')).not.toContain('$SYS/uptime');
    expect(await matching('$SYS/#')).toEqual(['$SYS/uptime']);
    // Overlapping filters of one SUBSCRIBE send each retained message once.
    expect(await matching('sport/tennis', 'sport/+', 'sport/#')).toEqual(['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1']);
  });

  it('pages through more matches than one read returns', async () => {
    const { persistence } = await open(join(dir, 'outpost.db'), { maxRetained: 1000 });
    await Promise.all(Array.from({ length: 300 }, (_, i) => persistence.storeRetained(publish(`dev/${String(i).padStart(3, '0')}/state`, String(i), { retain: true }))));
    await persistence.storeRetained(publish('dev0', 'outside', { retain: true }));
    expect(payloads(await collect(persistence.createRetainedStream('dev/+/state')))).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    expect(await collect(persistence.createRetainedStream('#'))).toHaveLength(301);
  });

  it('gives back payloads and MQTT 5 properties as stored', async () => {
    const file = join(dir, 'outpost.db');
    const { persistence } = await open(file);
    const properties = { contentType: 'text/plain', correlationData: Buffer.from([1, 2]), userProperties: { site: ['a', 'b'] } };
    await persistence.storeRetained({ cmd: 'publish', topic: 'text', payload: 'a string', qos: 0, retain: true, properties });
    const { persistence: reopened } = await open(file);
    expect(await collect(reopened.createRetainedStream('text'))).toEqual([
      { cmd: 'publish', topic: 'text', payload: 'a string', qos: 0, retain: true, properties },
    ]);
  });
});

describe('clean sessions', () => {
  it('never touch SQLite', async () => {
    const { store, persistence } = await open(join(dir, 'outpost.db'));
    const client = clean('phone');
    const transactions = store.commit.stats.transactions;

    // CONNECT
    await persistence.cleanSubscriptions(client);
    await persistence.cleanIncoming(client);
    await persistence.delWill(client);
    expect(await collect(persistence.outgoingStream(client))).toEqual([]);
    // SUBSCRIBE, PUBLISH QoS 1 and 2 without persistent subscribers, PUBACK
    expect(await collect(persistence.createRetainedStreamCombi(['#']))).toEqual([]);
    const packet = publish('t', 'x', { qos: 2, messageId: 5 });
    await expect(persistence.incomingGetPacket(client, packet)).rejects.toThrow('no such packet');
    await persistence.incomingStorePacket(client, packet);
    await persistence.outgoingEnqueueCombi(await persistence.subscriptionsByTopic('t'), packet);
    expect(await persistence.incomingGetPacket(client, { messageId: 5 })).toMatchObject({ topic: 't', messageId: 5 });
    await persistence.incomingDelPacket(client, { messageId: 5 });
    await persistence.outgoingClearMessageId(client, { cmd: 'puback', messageId: 1 });
    // disconnect
    await persistence.cleanIncoming(client);
    expect(await collect(persistence.streamWill({}))).toEqual([]);

    await store.commit.drain();
    expect(store.commit.stats.transactions).toBe(transactions);
  });

  it('drop their QoS 2 state when aedes cleans it', async () => {
    const { persistence } = await open(join(dir, 'outpost.db'));
    await persistence.incomingStorePacket(clean('c'), publish('t', 'x', { qos: 2, messageId: 1 }));
    await persistence.cleanIncoming(clean('c'));
    await expect(persistence.incomingGetPacket(clean('c'), { messageId: 1 })).rejects.toThrow('no such packet');
  });
});

describe('writes queued in the same tick', () => {
  it('are seen by the reads that follow them', async () => {
    const { persistence } = await open(join(dir, 'outpost.db'));
    const device = persistent('device');
    // aedes handles a socket read's packets concurrently: a DUP retransmission can be checked before the first copy committed.
    const stored = persistence.incomingStorePacket(device, publish('t', 'x', { qos: 2, messageId: 7 }));
    const retransmission = persistence.incomingGetPacket(device, { messageId: 7 });
    await stored;
    expect(await retransmission).toMatchObject({ messageId: 7 });

    const subscribed = persistence.addSubscriptions(device, [{ topic: 't', qos: 1 }]);
    const cleaned = persistence.cleanSubscriptions(device);
    await Promise.all([subscribed, cleaned]);
    expect(await persistence.subscriptionsByClient(device)).toEqual([]);
  });
});

describe('a failed commit', () => {
  it('leaves the in-memory view as it is on disk', async () => {
    const { store, persistence } = await open(join(dir, 'outpost.db'));
    await persistence.addSubscriptions(persistent('kept'), [{ topic: 'x', qos: 1 }]);
    // A deferred foreign key violation fails at COMMIT, rolling back the whole batch.
    store.db.exec(`
      CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TEMP TRIGGER fail_commit AFTER INSERT ON broker_outgoing_packets BEGIN INSERT INTO child VALUES (1); END;
    `);

    const results = await Promise.allSettled([
      persistence.addSubscriptions(persistent('lost'), [{ topic: 'x', qos: 1 }]),
      persistence.outgoingEnqueue({ clientId: 'lost' }, publish('x', '1')),
      persistence.storeRetained(publish('x', '1', { retain: true })),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    await new Promise((resolve) => setImmediate(resolve));

    expect(await persistence.countOffline()).toEqual({ subsCount: 1, clientsCount: 1 });
    expect((await persistence.subscriptionsByTopic('x')).map((sub) => sub.clientId)).toEqual(['kept']);
    expect(await collect(persistence.outgoingStream(persistent('lost')))).toEqual([]);
    expect(await collect(persistence.createRetainedStream('x'))).toEqual([]);
  });
});
