import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { collectMessages, connectAndCollect, connectClient } from './helpers/mqtt.js';
import { canMountTmpfs, fillLeaving, mountTmpfs, unmountTmpfs } from './helpers/tmpfs.js';

const storageLogs = (daemon: TestDaemon) => daemon.logs.filter((line: any) => line.msg?.startsWith("could not store a client's request"));
const storageFailedCount = async (daemon: TestDaemon) => {
  const metrics = await (await fetch(`http://127.0.0.1:${daemon.port('http')}/metrics`)).text();
  return Number(/outpost_mqtt_connections_refused_total\{reason="storage_failed"\} (\d+)/.exec(metrics)?.[1]);
};

describe.skipIf(!canMountTmpfs())('broker with a full disk (tmpfs data directory)', () => {
  let daemon: TestDaemon;
  let mountPoint: string | undefined;

  beforeAll(async () => {
    mountPoint = mountTmpfs(24);
    mkdirSync(join(mountPoint!, 'data'));
    daemon = await TestDaemon.start({ dataDir: join(mountPoint!, 'data'), config: { mqtt: { allowAnonymous: true } } });
  });

  afterAll(async () => {
    await daemon?.stop();
    if (mountPoint) unmountTmpfs(mountPoint);
  });

  it('acknowledges nothing it could not store, says so once a minute at most, and takes the requests again once space returns', async () => {
    const filler = fillLeaving(mountPoint!, 0);
    // A persistent session's SUBSCRIBE cannot be stored: no SUBACK, the connection closes.
    const subscriber = await connectClient(daemon.mqttUrl, { clientId: 'logger', clean: false, reconnectPeriod: 0 });
    await expect(subscriber.subscribeAsync('readings/#', { qos: 1 })).rejects.toThrow(/Connection closed/);
    subscriber.end(true);
    // A retained QoS 1 message neither: no PUBACK.
    const publisher = await connectClient(daemon.mqttUrl, { clientId: 'station', reconnectPeriod: 0 });
    const closed = new Promise((resolve) => publisher.once('close', resolve));
    let acknowledged = false;
    publisher.publishAsync('status/station', 'online', { qos: 1, retain: true }).then(() => { acknowledged = true; }, () => undefined);
    await closed;
    expect(acknowledged).toBe(false);
    publisher.end(true);

    // the operator is told, at error level and once (the second within the minute is only counted)
    await eventually(async () => (await storageFailedCount(daemon)) === 2, 5_000, 100);
    expect(storageLogs(daemon)).toHaveLength(1);
    expect(storageLogs(daemon)[0]).toMatchObject({ level: 50, clientId: 'logger', err: { message: 'database or disk is full', code: 'SQLITE_FULL' } });
    // clean sessions' QoS 0 traffic needs no disk and goes on
    const live = await connectClient(daemon.mqttUrl, { clientId: 'live' });
    await live.subscribeAsync('live/#', { qos: 0 });
    const got = collectMessages(live, 1);
    await live.publishAsync('live/1', 'hello', { qos: 0 });
    expect((await got).map((message) => message.payload)).toEqual(['hello']);
    live.end(true);
    expect(daemon.process.exitCode).toBeNull();

    // Space returns: the same requests, sent again, are stored and acknowledged.
    rmSync(filler);
    const again = await connectClient(daemon.mqttUrl, { clientId: 'logger', clean: false });
    expect((await again.subscribeAsync('readings/#', { qos: 1 }))[0].qos).toBe(1);
    again.end(true);
    const station = await connectClient(daemon.mqttUrl, { clientId: 'station' });
    await station.publishAsync('status/station', 'online', { qos: 1, retain: true });
    station.end(true);
    const reader = await connectClient(daemon.mqttUrl, { clientId: 'reader' });
    const retained = collectMessages(reader, 1);
    await reader.subscribeAsync('status/#', { qos: 1 });
    expect(await retained).toMatchObject([{ topic: 'status/station', payload: 'online', retain: true }]);
    reader.end(true);
    // the persistent session's filter is there: a message for it while it is away is kept for it
    const sender = await connectClient(daemon.mqttUrl, { clientId: 'sensor' });
    await sender.publishAsync('readings/t', '21.5', { qos: 1 });
    sender.end(true);
    // listening from the start: the queued message may come in the same read as the CONNACK
    const { client: back, messages } = connectAndCollect(daemon.mqttUrl, { clientId: 'logger', clean: false }, 1);
    expect(await messages).toMatchObject([{ topic: 'readings/t', payload: '21.5' }]);
    back.end(true);
  }, 60_000);
});
