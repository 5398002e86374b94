import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { addThing } from './helpers/mqtt.js';
import { http, ShadowMqttClient } from './helpers/shadow.js';

const THING = 'press';
const SHADOW = `$aws/things/${THING}/shadow`;
const ROUNDS = 30;

interface Accepted { writer: string; round: number; version: number }

describe('a shadow written by many clients at once', () => {
  let daemon: TestDaemon;
  const clients: ShadowMqttClient[] = [];

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: { http: { auth: 'none' } } });
    await addThing(daemon.socket, THING, 'pw');
  });
  afterAll(async () => {
    for (const client of clients) client.end();
    await daemon.cleanup();
  });

  it('accepts one update per version (optimistic locking over MQTT and HTTP), publishes each once in version order, and ends as the last accepted left it', async () => {
    const connect = async (clientId: string, subscriptions: string[]) => {
      const client = await ShadowMqttClient.connect(daemon.mqttUrl, { clientId, username: THING, password: 'pw' }, subscriptions);
      clients.push(client);
      return client;
    };
    const watcher = await connect('press-watcher', [`${SHADOW}/update/documents`]);
    const first = await http(daemon.port('http'), 'POST', `/things/${THING}/shadow`, JSON.stringify({ state: { reported: { last: 'setup' } } }));
    expect(first.body.version).toBe(1);

    const accepted: Accepted[] = [];
    const conflicts: string[] = [];
    const unexpected: string[] = [];
    /** Reads the version, then updates naming it: a conflict when another writer got there first. */
    const writer = async (name: string, read: () => Promise<number>, update: (body: object) => Promise<{ status: number; version?: number; message?: string }>) => {
      for (let round = 1; round <= ROUNDS; round++) {
        const version = await read();
        const answer = await update({ state: { reported: { [name]: round, last: name }, ...(round % 3 === 0 ? { desired: { [name]: round } } : {}) }, version });
        if (answer.status === 200) accepted.push({ writer: name, round, version: answer.version! });
        else if (answer.status === 409 && answer.message === 'Version conflict') conflicts.push(name);
        else unexpected.push(`${name} round ${round}: ${answer.status} ${answer.message}`);
      }
    };
    const mqttWriter = async (name: string) => {
      const client = await connect(name, [`${SHADOW}/get/+`, `${SHADOW}/update/+`]);
      return writer(name,
        async () => (await client.request(`${SHADOW}/get`)).body.version,
        async (body) => {
          const answer = await client.request(`${SHADOW}/update`, body as Record<string, unknown>);
          return answer.outcome === 'accepted' ? { status: 200, version: answer.body.version } : { status: answer.body.code, message: answer.body.message };
        });
    };
    const httpWriter = (name: string) => writer(name,
      async () => (await http(daemon.port('http'), 'GET', `/things/${THING}/shadow`)).body.version,
      async (body) => {
        const answer = await http(daemon.port('http'), 'POST', `/things/${THING}/shadow`, JSON.stringify(body));
        return { status: answer.status, version: answer.body.version, message: answer.body.message };
      });
    await Promise.all([...['press-1', 'press-2', 'press-3', 'press-4'].map(mqttWriter), httpWriter('http-1'), httpWriter('http-2')]);

    expect(unexpected).toEqual([]);
    // writers racing for one version: most rounds lose it
    expect(conflicts.length).toBeGreaterThan(0);
    // versions 2, 3, … each given once, none skipped
    const versions = accepted.map((update) => update.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: accepted.length }, (_, index) => index + 2));

    // the document holds each writer's last accepted round, and the writer of the highest version as last
    const byVersion = [...accepted].sort((a, b) => a.version - b.version);
    const lastRound = (name: string) => byVersion.filter((update) => update.writer === name).at(-1)?.round;
    const final = await http(daemon.port('http'), 'GET', `/things/${THING}/shadow`);
    expect(final.body.version).toBe(accepted.length + 1);
    expect(final.body.state.reported.last).toBe(byVersion.at(-1)!.writer);
    for (const name of new Set(accepted.map((update) => update.writer))) expect(final.body.state.reported[name]).toBe(lastRound(name));

    // /update/documents once per accepted update, each from the version before it
    const documents = [];
    for (let index = 0; index < accepted.length + 1; index++) documents.push(await watcher.nextEvent(`${SHADOW}/update/documents`));
    // in version order, as committed, whether MQTT or HTTP asked
    const pairs = documents.map((document) => [document.previous?.version ?? 0, document.current.version]);
    expect(pairs).toEqual(Array.from({ length: accepted.length + 1 }, (_, index) => [index, index + 1]));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(watcher.events.filter((event) => event.topic.endsWith('/documents'))).toEqual([]);
  });
});
