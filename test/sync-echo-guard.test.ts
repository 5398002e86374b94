import { describe, expect, it } from 'vitest';
import { EchoGuard } from '../src/sync/bridge.js';

describe('sync echo guard', () => {
  it('takes only the inbound rule\'s own publish for an echo, not the daemon\'s other publishes to the same topic meanwhile', () => {
    const guard = new EchoGuard();
    const inbound = Buffer.from('{"open":true}');
    guard.expect(inbound);
    const message = (payload: Buffer, clientId?: string) => ({ topic: 'cloud/cmd/valve', payload, qos: 1 as const, retain: false, clientId });
    expect(guard.isEcho(message(inbound))).toBe(true);
    // a function's publish of the same bytes to the same topic, while the inbound one is on its way
    expect(guard.isEcho(message(Buffer.from('{"open":true}')))).toBe(false);
    expect(guard.isEcho(message(inbound, 'device-1'))).toBe(false);
    guard.settled(inbound);
    expect(guard.isEcho(message(inbound))).toBe(false);
  });
});
