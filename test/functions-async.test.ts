import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { adminRequest, collectMessages, connectClient, outpost } from './helpers/mqtt.js';
import { FIXTURES, template, writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

interface Line { id: number; phase: 'start' | 'done'; requestId: string; at: number }

// Retries 1 s apart (the third delay is past Aging's maximum event age); at most 3 events waiting per function.
const CONFIG = {
  mqtt: { allowAnonymous: true, anonymousPolicy: { subscribe: ['#', '$outpost/dlq/#'] } },
  functions: { maxInstances: 2, queueLength: 3, maxRetryAttempts: 3, retryDelaysSeconds: [1, 1, 120] },
};

describe('functions: durable asynchronous queue, retries and the dead-letter queue', () => {
  let daemon: TestDaemon;
  let out: { dir: string; remove: () => void };
  let files = 0;
  /** A fresh file for one test's handler lines. */
  const newFile = () => join(out.dir, `lines-${++files}.jsonl`);
  const lines = (file: string) => jsonLines<Line>(file);
  const invokeAsync = (name: string, payload: unknown) => outpost(daemon.socket, ['--json', 'invoke', name, '--async', '--payload', JSON.stringify(payload)]);
  const deadLetters = async (name?: string) => JSON.parse((await outpost(daemon.socket, ['--json', 'dlq', 'ls', ...(name ? [name] : [])])).stdout).deadLetters as any[];

  beforeAll(async () => {
    out = writePackage({});
    daemon = await TestDaemon.start({ config: CONFIG });
    const deployed = await outpost(daemon.socket, ['deploy', join(FIXTURES, 'async')]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    out.remove();
  });

  it('answers 202 with the event id once committed, and runs the event once', async () => {
    const file = newFile();
    const accepted = await invokeAsync('Recorder', { out: file, id: 1 });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(JSON.parse(accepted.stdout)).toMatchObject({ statusCode: 202, eventId: expect.any(Number) });
    expect((await outpost(daemon.socket, ['invoke', 'Recorder', '--async', '--payload', JSON.stringify({ out: file, id: 2 })])).stdout)
      .toMatch(/^queued as event \d+ \(202\)\n$/);
    await eventually(() => lines(file).filter((l) => l.phase === 'done').length === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lines(file).map((l) => `${l.id}:${l.phase}`)).toEqual(['1:start', '1:done', '2:start', '2:done']);
    expect(JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Recorder'])).stdout).asyncEvents).toBe(0);
  });

  it('retries a failing event with the configured delays, then dead-letters it with its last error; replay runs it again', async () => {
    const file = newFile();
    const gate = join(out.dir, 'flaky-gate');
    const watcher = await connectClient(daemon.mqttUrl, { clientId: 'dlq-watcher' });
    const published = collectMessages(watcher, 1, 15_000);
    await watcher.subscribeAsync('$outpost/dlq/#', { qos: 1 });
    expect((await invokeAsync('Flaky', { out: file, id: 7, gate })).code).toBe(0);
    const dead = await eventually(async () => (await deadLetters('Flaky'))[0], 10_000);
    // MaximumRetryAttempts: 2 from the template: three attempts, 1 s apart.
    const starts = lines(file).filter((l) => l.phase === 'start');
    expect(starts).toHaveLength(3);
    // one request id for the event, each attempt the same, as on Lambda
    expect(new Set(starts.map((l) => l.requestId)).size).toBe(1);
    for (let i = 1; i < starts.length; i++) expect(starts[i].at - starts[i - 1].at).toBeGreaterThanOrEqual(900);
    expect(dead).toMatchObject({
      function: 'Flaky', event: { out: file, id: 7, gate }, source: 'invoke', attempts: 3, reason: 'RetriesExhausted',
      errorType: 'Error', errorMessage: 'failing 7',
    });
    const [record] = await published;
    watcher.end(true);
    expect(record.topic).toBe('$outpost/dlq/Flaky');
    expect(JSON.parse(record.payload)).toMatchObject({ function: 'Flaky', reason: 'RetriesExhausted', errorMessage: 'failing 7' });
    // times in whole milliseconds, as Date.now()
    for (const letter of [dead, JSON.parse(record.payload)]) expect([Number.isInteger(letter.enqueuedAt), Number.isInteger(letter.failedAt)]).toEqual([true, true]);
    expect(daemon.logs.find((entry) => entry.msg === 'asynchronous event sent to the dead-letter queue' && entry.function === 'Flaky')).toMatchObject({ reason: 'RetriesExhausted', attempts: 3 });
    expect(daemon.logs.some((entry) => entry.msg === 'cannot publish a dead letter')).toBe(false);
    const table = await outpost(daemon.socket, ['dlq', 'ls']);
    expect(table.stdout).toMatch(/^ID\s+FUNCTION\s+FAILED\s+ATTEMPTS\s+REASON\s+ERROR\s+EVENT\n/);
    expect(table.stdout).toMatch(new RegExp(`\\n${dead.id}\\s+Flaky\\s+\\S+Z\\s+3\\s+RetriesExhausted\\s+Error: failing 7\\s+\\{`));

    writeFileSync(gate, '');
    const replay = await outpost(daemon.socket, ['dlq', 'replay', String(dead.id)]);
    expect(replay.stdout).toMatch(new RegExp(`^replayed 1\\n  ${dead.id} -> event \\d+\\n$`));
    await eventually(() => lines(file).some((l) => l.phase === 'done'));
    expect(await deadLetters('Flaky')).toEqual([]);
    expect((await outpost(daemon.socket, ['dlq', 'replay', String(dead.id)])).stderr).toBe(`outpost: ResourceNotFoundException: Dead letter not found: ${dead.id}\n`);
  });

  it('dead-letters an event whose next attempt would be past its maximum event age', async () => {
    const file = newFile();
    expect((await invokeAsync('Aging', { out: file, id: 8, fail: true })).code).toBe(0);
    const dead = await eventually(async () => (await deadLetters('Aging'))[0], 10_000);
    // Retries 1 s and 1 s apart; the third would wait 120 s, past MaximumEventAgeInSeconds: 60.
    expect(lines(file).filter((l) => l.phase === 'start')).toHaveLength(3);
    expect(dead).toMatchObject({ attempts: 3, reason: 'EventAgeExceeded', errorType: 'Error', errorMessage: 'failing 8' });
  });

  it('dead-letters MQTT-triggered events with their topic; replay --all and purge', async () => {
    const file = newFile();
    const client = await connectClient(daemon.mqttUrl, { clientId: 'fn-alarm' });
    try {
      await client.publishAsync('alarms/door', JSON.stringify({ out: file, id: 20, fail: true }), { qos: 1 });
      await client.publishAsync('alarms/window', JSON.stringify({ out: file, id: 21, fail: true }), { qos: 1 });
    } finally {
      client.end(true);
    }
    const dead = await eventually(async () => {
      const letters = await deadLetters('OnAlarm');
      return letters.length === 2 ? letters : undefined;
    });
    expect(dead.map((d: any) => [d.event.id, d.source, d.attempts, d.clientContext.Custom.subject]).sort())
      .toEqual([[20, 'mqtt', 1, 'alarms/door'], [21, 'mqtt', 1, 'alarms/window']]);

    const replay = JSON.parse((await outpost(daemon.socket, ['--json', 'dlq', 'replay', '--all', 'OnAlarm'])).stdout);
    expect(replay.replayed).toHaveLength(2);
    await eventually(() => lines(file).filter((l) => l.phase === 'start').length === 4);
    const again = await eventually(async () => {
      const letters = await deadLetters('OnAlarm');
      return letters.length === 2 ? letters : undefined;
    });
    expect(again.map((d: any) => d.source)).toEqual(['replay', 'replay']);

    expect(await outpost(daemon.socket, ['dlq', 'purge', 'OnAlarm'])).toMatchObject({ code: 0, stdout: 'purged 2\n' });
    expect(await deadLetters('OnAlarm')).toEqual([]);
    expect((await deadLetters()).length).toBeGreaterThan(0);
    expect(await outpost(daemon.socket, ['dlq', 'purge'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^purged \d+\n$/) });
    expect(await deadLetters()).toEqual([]);
    // a function that neither exists nor left dead letters is a typo (or an ID given with --all), not an empty answer
    for (const args of [['dlq', 'ls', 'OnAlram'], ['dlq', 'purge', 'OnAlram'], ['dlq', 'replay', '5', '--all']]) {
      expect(await outpost(daemon.socket, args), args.join(' ')).toMatchObject({ code: 1, stderr: expect.stringMatching(/^outpost: ResourceNotFoundException: Function not found: arn:aws:lambda:local:000000000000:function:(OnAlram|5)\n$/) });
    }
  });

  it('refuses an asynchronous invoke beyond functions.queueLength with 429 and counts it', async () => {
    const file = newFile();
    // The first runs for 9 s (Recorder's timeout is 10 s), longer than three rounds of CLI runs on a loaded
    // machine, and Recorder runs one at a time: the 4th invoke finds 3 events queued or running.
    expect((await invokeAsync('Recorder', { out: file, id: 30, ms: 9000 })).code).toBe(0);
    const queued = await Promise.all([31, 32].map((id) => invokeAsync('Recorder', { out: file, id, ms: 1 })));
    expect(queued.map((run) => run.code)).toEqual([0, 0]);
    const refused = await invokeAsync('Recorder', { out: file, id: 33 });
    expect(refused).toMatchObject({ code: 1, stderr: 'outpost: TooManyRequestsException: Rate Exceeded.\n' });
    const status = JSON.parse((await outpost(daemon.socket, ['--json', 'status'])).stdout);
    expect(JSON.stringify(status)).toContain('"throttledEvents":1');
    // the first alone runs 9 s, and may have started only a moment ago
    await eventually(() => lines(file).filter((l) => l.phase === 'done').length === 3, 20_000, 200);
    expect(lines(file).map((l) => l.id)).not.toContain(33);
  }, 40_000);

  it('validates EventInvokeConfig: AWS ranges, destination types Outpost has', async () => {
    const bad = writePackage({
      'template.yaml': template('BadConfig', {
        Handler: 'index.handler',
        EventInvokeConfig: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 30, DestinationConfig: { OnFailure: { Type: 'SNS', Destination: 'arn:aws:sns:us-east-1:1:t' } } },
      }),
      'index.js': 'exports.handler = async () => 1;\n',
    });
    try {
      const refused = await outpost(daemon.socket, ['deploy', bad.dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('Resources.BadConfig.Properties.EventInvokeConfig.DestinationConfig.OnFailure.Type: expected Type Lambda or MQTT');
      expect(refused.stderr).toContain('Resources.BadConfig.Properties.EventInvokeConfig.MaximumRetryAttempts: expected retries 0-2');
      expect(refused.stderr).toContain('Resources.BadConfig.Properties.EventInvokeConfig.MaximumEventAgeInSeconds: expected seconds 60-21600');
    } finally {
      bad.remove();
    }
  });

  it('leaves no queued event of a function removed while its dead letters are replayed and events are sent to it', async () => {
    const doomed = writePackage({
      'template.yaml': template('Doomed', { Handler: 'index.handler', EventInvokeConfig: { MaximumRetryAttempts: 0 } }),
      'index.js': 'exports.handler = async () => { throw new Error("doomed"); };\n',
    });
    const asyncEvents = async () => JSON.parse((await outpost(daemon.socket, ['--json', 'status'])).stdout).services.functions.asyncEvents;
    try {
      for (let round = 0; round < 4; round++) {
        expect(await outpost(daemon.socket, ['deploy', doomed.dir])).toMatchObject({ code: 0 });
        for (let i = 0; i < 3; i++) expect((await invokeAsync('Doomed', { round, i })).code).toBe(0);
        await eventually(async () => (await deadLetters('Doomed')).length >= 3, 10_000);
        // the removal lands at a different point of the replay's and the invoke's commits each round
        const answers = await Promise.all([
          adminRequest(daemon.socket, 'POST', '/v1/dlq/replay', JSON.stringify({ all: true, function: 'Doomed' })),
          adminRequest(daemon.socket, 'POST', '/v1/functions/Doomed/invocations', JSON.stringify({ invocationType: 'Event' })),
          new Promise((resolve) => setTimeout(resolve, round)).then(() => adminRequest(daemon.socket, 'DELETE', '/v1/functions/Doomed')),
        ]);
        expect(answers.map((answer) => answer?.status)).toEqual([200, expect.any(Number), 200]);
        expect([200, 404, 429]).toContain(answers[1]!.status);
        expect(await asyncEvents()).toEqual({ queued: 0, running: 0 });
        await outpost(daemon.socket, ['dlq', 'purge', 'Doomed']);
      }
    } finally {
      doomed.remove();
    }
  }, 60_000);

  it('runs every queued event after kill -9, the one in flight again (at least once)', async () => {
    const file = newFile();
    // The first runs long enough that the kill lands while it is in flight, even on a loaded machine.
    expect((await invokeAsync('Recorder', { out: file, id: 40, ms: 9000 })).code).toBe(0);
    const queued = await Promise.all([41, 42].map((id) => invokeAsync('Recorder', { out: file, id, ms: 1000 })));
    expect(queued.map((run) => run.code)).toEqual([0, 0]);
    await eventually(() => lines(file).some((l) => l.id === 40 && l.phase === 'start'));
    await daemon.kill();
    expect(lines(file).filter((l) => l.phase === 'done')).toEqual([]);
    daemon = await TestDaemon.start({ dataDir: daemon.dataDir, config: CONFIG });
    await eventually(() => new Set(lines(file).filter((l) => l.phase === 'done').map((l) => l.id)).size === 3, 25_000);
    expect(lines(file).filter((l) => l.id === 40 && l.phase === 'start').length).toBeGreaterThanOrEqual(2);
    expect(daemon.logs.some((entry) => entry.msg === 'asynchronous events recovered' && entry.events === 3)).toBe(true);
    await eventually(async () => JSON.parse((await outpost(daemon.socket, ['--json', 'functions', 'info', 'Recorder'])).stdout).asyncEvents === 0);
  }, 45_000);
});

