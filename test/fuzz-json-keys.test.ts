import { describe, expect, it } from 'vitest';
import { combinePatches, planSync, withoutRefused } from '../src/sync/shadow-merge.js';

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

  it('sets aside a refused "__proto__" field as a field, and sees a "constructor" the side lacks as absent, not inherited', () => {
    const refused = state('{"reported":{"__proto__":{"x":9},"constructor":null}}');
    const masked = withoutRefused(state('{"reported":{"__proto__":{"x":9},"a":1}}'), state('{"reported":{"__proto__":{"x":1},"a":1}}'), refused);
    expect(JSON.stringify(masked.state)).toBe('{"reported":{"__proto__":{"x":1},"a":1}}');
    expect(JSON.stringify(masked.stillRefused)).toBe('{"reported":{"__proto__":{"x":9},"constructor":null}}');
  });

  it('combines updates of a "__proto__" field as a field', () => {
    const combined = combinePatches(state('{"desired":{"__proto__":{"x":1},"a":1}}'), state('{"desired":{"__proto__":{"y":2}}}'));
    expect(JSON.stringify(combined)).toBe('{"desired":{"__proto__":{"x":1,"y":2},"a":1}}');
  });
});
