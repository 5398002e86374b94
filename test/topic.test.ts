import { describe, expect, it } from 'vitest';
import { filterCovers, isValidFilter, topicMatches } from '../src/broker/topic.js';
import { bindPolicy, clientIdAllowed, mayPublish, maySubscribe } from '../src/broker/policy.js';

describe('MQTT topic matching (section 4.7)', () => {
  it.each([
    ['sport/tennis/player1/#', 'sport/tennis/player1', true], // MQTT-4.7.1-2: '#' matches the parent
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/#', 'sport', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true], // '+' matches an empty level
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['#', '$SYS/broker', false], // MQTT-4.7.2-1
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['$SYS/#', '$SYS/broker', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/bc', false],
    ['a/bc', 'a/b', false],
    ['a//b', 'a//b', true],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('validates filters', () => {
    for (const ok of ['#', '+', 'a/+/b', 'a/#', '/', '+/+']) expect(isValidFilter(ok)).toBe(true);
    for (const bad of ['', 'a/#/b', 'a#', 'a/b+', '#/a', 'a\u0000b']) expect(isValidFilter(bad)).toBe(false);
  });

  it('decides whether an allowed filter covers a requested subscription', () => {
    expect(filterCovers('things/x/#', 'things/x/a/+')).toBe(true);
    expect(filterCovers('things/x/#', 'things/#')).toBe(false);
    expect(filterCovers('things/+/temp', 'things/a/temp')).toBe(true);
    expect(filterCovers('things/+/temp', 'things/+/temp')).toBe(true);
    expect(filterCovers('things/a/temp', 'things/+/temp')).toBe(false);
    expect(filterCovers('#', '$aws/things/x')).toBe(false);
    expect(filterCovers('$aws/#', '$aws/things/x/shadow/#')).toBe(true);
  });
});

describe('policies', () => {
  const policy = { clientIds: ['${thing}', '${thing}-*'], publish: ['things/${thing}/#'], subscribe: ['things/${thing}/#', 'broadcast/${clientid}'] };

  it('substitutes ${thing} and ${clientid}', () => {
    const bound = bindPolicy(policy, 'pump', 'pump-1');
    expect(mayPublish(bound, 'things/pump/temp')).toBe(true);
    expect(mayPublish(bound, 'things/valve/temp')).toBe(false);
    expect(maySubscribe(bound, 'broadcast/pump-1')).toBe(true);
    expect(maySubscribe(bound, 'broadcast/pump-2')).toBe(false);
  });

  it('drops a pattern whose substituted client id would widen it', () => {
    const bound = bindPolicy(policy, 'pump', 'evil/#');
    expect(maySubscribe(bound, 'broadcast/evil/#')).toBe(false);
    expect(bound.subscribe).toEqual(['things/pump/#']);
  });

  it('matches client ids exactly or by a trailing *', () => {
    expect(clientIdAllowed(policy.clientIds, 'pump', 'pump')).toBe(true);
    expect(clientIdAllowed(policy.clientIds, 'pump', 'pump-7')).toBe(true);
    expect(clientIdAllowed(policy.clientIds, 'pump', 'pumpkin')).toBe(false);
  });
});
