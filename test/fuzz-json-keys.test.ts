import { describe, expect, it } from 'vitest';
import { planSync } from '../src/sync/shadow-merge.js';

// Found by fuzzing shadow documents with keys objects inherit or treat specially; JSON.parse as the sync agent reads documents.
const state = (text: string) => JSON.parse(text);

describe('shadow sync with field names objects inherit ("constructor", "toString", "__proto__")', () => {
  it('sends a "constructor" field deleted on the device as a delete, so the cloud does not give it back', () => {
    const base = state('{"reported":{"constructor":5,"a":1}}');
    const plan = planSync(base, state('{"reported":{"a":1}}'), state('{"reported":{"constructor":5,"a":1}}'), 'both');
    expect(JSON.stringify(plan.cloud)).toBe('{"reported":{"constructor":null}}');
    expect(JSON.stringify(plan.base)).toBe('{"reported":{"a":1}}');
  });

  it('removes a "toString" field the cloud deleted from the device, rather than keeping it', () => {
    const base = state('{"desired":{"toString":"x","on":true}}');
    const plan = planSync(base, state('{"desired":{"toString":"x","on":true}}'), state('{"desired":{"on":true}}'), 'both');
    expect(JSON.stringify(plan.local)).toBe('{"desired":{"toString":null}}');
  });

  it('merges a "__proto__" field changed on both sides as a field, not as the merged object\'s prototype', () => {
    const base = state('{"reported":{"__proto__":{"x":1},"a":1}}');
    const plan = planSync(base, state('{"reported":{"__proto__":{"x":2},"a":1}}'), state('{"reported":{"__proto__":{"x":1},"a":2}}'), 'both');
    expect(JSON.stringify(plan.base)).toBe('{"reported":{"__proto__":{"x":2},"a":2}}');
    expect(JSON.stringify(plan.cloud)).toBe('{"reported":{"__proto__":{"x":2}}}');
    expect(JSON.stringify(plan.local)).toBe('{"reported":{"a":2}}');
  });
});
