import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchedule, yearMatches } from '../src/functions/schedules.js';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { writePackage } from './helpers/functions.js';
import { eventually } from './helpers/eventually.js';
import { jsonLines } from './helpers/json-lines.js';

const TICKER = `const { appendFileSync } = require('node:fs');
exports.handler = async (event) => { appendFileSync(process.env.OUT, JSON.stringify(event) + '\\n'); return 'ok'; };
`;

function scheduled(name: string, out: string, events: Record<string, unknown>): string {
  return JSON.stringify({ Resources: { [name]: { Type: 'AWS::Serverless::Function', Properties: {
    Handler: 'index.handler', Runtime: 'nodejs20.x', Environment: { Variables: { OUT: out } }, Events: events,
  } } } });
}

const lines = jsonLines;

describe('schedule expressions (EventBridge syntax)', () => {
  it('parses rate with EventBridge singular/plural rules', () => {
    expect(parseSchedule('rate(1 minute)')).toEqual({ kind: 'rate', ms: 60_000 });
    expect(parseSchedule('rate(5 minutes)')).toEqual({ kind: 'rate', ms: 300_000 });
    expect(parseSchedule('rate(2 hours)')).toEqual({ kind: 'rate', ms: 7_200_000 });
    expect(parseSchedule('rate(1 day)')).toEqual({ kind: 'rate', ms: 86_400_000 });
    expect(() => parseSchedule('rate(1 minutes)')).toThrow('rate(1 minutes): a value of 1 takes the singular unit: rate(1 minute)');
    expect(() => parseSchedule('rate(5 minute)')).toThrow('rate(5 minute): a value above 1 takes the plural unit: rate(5 minutes)');
    expect(() => parseSchedule('rate(0 minutes)')).toThrow('rate(0 minutes)');
    expect(() => parseSchedule('rate(10 seconds)')).toThrow('rate(10 seconds)');
  });

  it('translates cron to node-cron: UTC fields, days 1-7 from Sunday, names, a/b steps, ? for any', () => {
    expect(parseSchedule('cron(0 10 * * ? *)')).toEqual({ kind: 'cron', pattern: '0 0 10 * * *', years: '*' });
    expect(parseSchedule('cron(0/15 8-17 ? * MON-FRI *)')).toEqual({ kind: 'cron', pattern: '0 0-59/15 8-17 * * 1-5', years: '*' });
    expect(parseSchedule('cron(0 9 ? JAN,MAR 1,7 2027)')).toEqual({ kind: 'cron', pattern: '0 0 9 * 1,3 0,6', years: '2027' });
    expect(parseSchedule('cron(0 9 ? * 3#2 *)')).toMatchObject({ pattern: '0 0 9 * * 2#2' });
    expect(parseSchedule('cron(0 18 L * ? *)')).toMatchObject({ pattern: '0 0 18 L * *' });
    expect(() => parseSchedule('cron(0 10 * * * *)')).toThrow('cron(0 10 * * * *): exactly one of day-of-month and day-of-week must be ?');
    expect(() => parseSchedule('cron(0 10 * * ?)')).toThrow('cron(0 10 * * ?): expected six fields');
    expect(() => parseSchedule('cron(0 10 ? * 8 *)')).toThrow('day-of-week 8 is outside 1-7');
    expect(yearMatches('*', 2030)).toBe(true);
    expect(yearMatches('2026-2028', 2027)).toBe(true);
    expect(yearMatches('2026,2029', 2027)).toBe(false);
  });
});

describe('functions: schedules', () => {
  let daemon: TestDaemon;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    // Test-only clock: a minute of rate(...) passes in a second.
    daemon = await TestDaemon.start({ config: { functions: { scheduleClockScale: 60 } } });
  });

  afterAll(async () => {
    for (const cleanup of cleanups) cleanup();
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
  });

  it('invokes on rate(...) with an EventBridge Scheduled Event through the async queue; removal stops it', async () => {
    const out = join(daemon.dataDir, 'ticks.jsonl');
    const pkg = writePackage({
      'index.js': TICKER,
      'template.yaml': scheduled('Ticker', out, {
        EveryMinute: { Type: 'Schedule', Properties: { Schedule: 'rate(1 minute)' } },
        Weekdays: { Type: 'Schedule', Properties: { Schedule: 'cron(0 10 ? * MON-FRI *)' } },
        Off: { Type: 'Schedule', Properties: { Schedule: 'rate(3 minutes)', Enabled: false, Input: '{"off":true}' } },
        Disabled: { Type: 'Schedule', Properties: { Schedule: 'rate(1 minute)', State: 'DISABLED', Input: '{"off":true}' } },
        // EventBridge names the rule by Name when given: the event's resources say so.
        Named: { Type: 'Schedule', Properties: { Schedule: 'rate(1 minute)', State: 'ENABLED', Name: 'ticker.every-minute', Description: 'the named one' } },
      }),
    });
    cleanups.push(pkg.remove);
    const deployed = await outpost(daemon.socket, ['deploy', pkg.dir]);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0 });
    // Both enabled rules fire; the two disabled ones never do (their Input would show).
    const rulesOf = (events: any[]) => new Set(events.map((event) => event.resources?.[0] ?? JSON.stringify(event)));
    const events = await eventually(() => { const got = lines(out); return rulesOf(got).size >= 2 && got; });
    expect(rulesOf(events)).toEqual(new Set(['arn:aws:events:local:000000000000:rule/Ticker-EveryMinute', 'arn:aws:events:local:000000000000:rule/ticker.every-minute']));
    for (const event of events) {
      expect(event).toEqual({
        version: '0',
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: '000000000000',
        time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
        region: 'local',
        resources: [expect.stringMatching(/^arn:aws:events:local:000000000000:rule\/(Ticker-EveryMinute|ticker\.every-minute)$/)],
        detail: {},
      });
    }
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);

    expect((await outpost(daemon.socket, ['functions', 'rm', 'Ticker'])).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const count = lines(out).length;
    await new Promise((resolve) => setTimeout(resolve, 2200));
    expect(lines(out).length).toBe(count);
  }, 20_000);

  it('sends the rule\'s Input instead of the Scheduled Event when set', async () => {
    const out = join(daemon.dataDir, 'input.jsonl');
    const pkg = writePackage({
      'index.js': TICKER,
      'template.yaml': scheduled('WithInput', out, { Tick: { Type: 'Schedule', Properties: { Schedule: 'rate(1 minute)', Input: '{"job":"flush"}' } } }),
    });
    cleanups.push(pkg.remove);
    expect((await outpost(daemon.socket, ['deploy', pkg.dir])).code).toBe(0);
    expect((await eventually(() => lines(out).length >= 1 && lines(out)))[0]).toEqual({ job: 'flush' });
    expect((await outpost(daemon.socket, ['functions', 'rm', 'WithInput'])).code).toBe(0);
  });

  it('refuses invalid or unsupported expressions, naming them', async () => {
    const cases: Array<[string, string]> = [
      ['rate(1 minutes)', 'rate(1 minutes): a value of 1 takes the singular unit'],
      ['rate(5 minute)', 'rate(5 minute): a value above 1 takes the plural unit'],
      ['cron(0 10 * * MON *)', 'cron(0 10 * * MON *): exactly one of day-of-month and day-of-week must be ?'],
      ['cron(0 8 32 * ? *)', "cron(0 8 32 * ? *): not supported by Outpost's scheduler"],
      ['every 5 minutes', 'every 5 minutes: expected rate(...) or cron(...)'],
    ];
    for (const [expression, message] of cases) {
      const pkg = writePackage({ 'index.js': TICKER, 'template.yaml': scheduled('Bad', '/dev/null', { S: { Type: 'Schedule', Properties: { Schedule: expression } } }) });
      cleanups.push(pkg.remove);
      const refused = await outpost(daemon.socket, ['deploy', pkg.dir]);
      expect(refused.code, expression).toBe(1);
      expect(refused.stderr).toContain(message);
    }
    const unknown = writePackage({ 'index.js': TICKER, 'template.yaml': scheduled('Bad', '/dev/null', { S: { Type: 'Schedule', Properties: { Schedule: 'rate(1 day)', Target: 'x' } } }) });
    cleanups.push(unknown.remove);
    expect((await outpost(daemon.socket, ['deploy', unknown.dir])).stderr).toContain('Resources.Bad.Properties.Events.S.Properties.Target: unsupported key');
    const refusedProperties: Array<[Record<string, unknown>, string]> = [
      [{ State: 'ENABLED', Enabled: true }, 'Resources.Bad.Properties.Events.S.Properties.State: Enabled and State: expected one of them, not both'],
      [{ State: 'PAUSED' }, 'Resources.Bad.Properties.Events.S.Properties.State: expected ENABLED or DISABLED'],
      [{ Name: 'no spaces' }, 'Resources.Bad.Properties.Events.S.Properties.Name: expected a rule name of up to 64 letters, digits, ., - and _'],
    ];
    for (const [properties, message] of refusedProperties) {
      const pkg = writePackage({ 'index.js': TICKER, 'template.yaml': scheduled('Bad', '/dev/null', { S: { Type: 'Schedule', Properties: { Schedule: 'rate(1 day)', ...properties } } }) });
      cleanups.push(pkg.remove);
      expect((await outpost(daemon.socket, ['deploy', pkg.dir])).stderr).toContain(message);
    }
  });
});
