import { describe, expect, it } from 'vitest';
import {
  applyUpdate, decodePayload, deltaOf, getDocument, parseStored, parseTokenRequest, parseUpdateRequest, validateShadowName, validateThingName,
  VERSION_KEPT_AFTER_DELETE_SECONDS, type ShadowLimits, type ShadowRecord,
} from '../src/shadows/document.js';
import { ShadowError } from '../src/shadows/errors.js';

const limits: ShadowLimits = { maxDocumentBytes: 8192, maxDepth: 6, maxPayloadBytes: 65536, maxClientTokenBytes: 64, maxThingNameBytes: 128, maxShadowNameBytes: 64 };
const T0 = 1_700_000_000;

/** An update of `previous` (as objects), with what it stores and publishes parsed back into objects. */
function update(previous: ShadowRecord | undefined, request: unknown, now = T0) {
  const stored = previous && { ...previous, state: JSON.stringify(previous.state), metadata: JSON.stringify(previous.metadata) };
  const result = applyUpdate(stored, parseUpdateRequest(request, limits), now, limits);
  return {
    stored: result.stored,
    record: parseStored(result.stored),
    accepted: JSON.parse(result.accepted),
    delta: result.delta === undefined ? undefined : JSON.parse(result.delta),
    documents: JSON.parse(result.documents),
  };
}
function refusal(action: () => unknown): { code: number; message: string } {
  try {
    action();
  } catch (error) {
    if (error instanceof ShadowError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a ShadowError');
}

describe('shadow documents: updates, metadata, versions', () => {
  it('creates a shadow at version 1 with a timestamp per leaf and echoes the request in /accepted', () => {
    const result = update(undefined, { state: { desired: { color: 'red', light: { on: true } } }, clientToken: 'c1' });
    expect(result.record).toEqual({
      state: { desired: { color: 'red', light: { on: true } } },
      metadata: { desired: { color: { timestamp: T0 }, light: { on: { timestamp: T0 } } } },
      version: 1, timestamp: T0,
    });
    expect(result.accepted).toEqual({
      state: { desired: { color: 'red', light: { on: true } } },
      metadata: { desired: { color: { timestamp: T0 }, light: { on: { timestamp: T0 } } } },
      version: 1, timestamp: T0, clientToken: 'c1',
    });
  });

  it('changes only the fields named and increments the version on every accepted update', () => {
    const first = update(undefined, { state: { desired: { a: 1, b: 2 } } }).record;
    const second = update(first, { state: { desired: { b: 3 }, reported: { a: 1 } } }, T0 + 5).record;
    expect(second.state).toEqual({ desired: { a: 1, b: 3 }, reported: { a: 1 } });
    expect(second.metadata.desired).toEqual({ a: { timestamp: T0 }, b: { timestamp: T0 + 5 } });
    expect(second.version).toBe(2);
    expect(update(second, { state: {} }).record.version).toBe(3);
  });

  it('deletes a field with a null leaf, and an emptied section disappears', () => {
    const record = update(undefined, { state: { reported: { a: 1, nested: { x: 1, y: 2 } } } }).record;
    const next = update(record, { state: { reported: { a: null, nested: { x: null } } } }).record;
    expect(next.state).toEqual({ reported: { nested: { y: 2 } } });
    expect(next.metadata).toEqual({ reported: { nested: { y: { timestamp: T0 } } } });
    const emptied = update(next, { state: { reported: { nested: null } } }).record;
    expect(emptied.state).toEqual({});
  });

  it('removes a section with "desired": null', () => {
    const record = update(undefined, { state: { desired: { a: 1 }, reported: { a: 2 } } }).record;
    const next = update(record, { state: { desired: null } });
    expect(next.record.state).toEqual({ reported: { a: 2 } });
    expect(next.delta).toBeUndefined();
  });

  it('clears the state with "state": null but keeps the shadow and its version', () => {
    const record = update(undefined, { state: { desired: { a: 1 }, reported: { b: 2 } } }).record;
    const next = update(record, { state: null });
    expect(next.record).toMatchObject({ state: {}, metadata: {}, version: 2 });
    // echoed as sent, as AWS does (clients test the accepted state for null)
    expect(next.accepted).toMatchObject({ state: null, version: 2 });
    expect(getDocument(next.record, T0)).toEqual({ state: {}, metadata: {}, version: 2, timestamp: T0 });
  });

  it('replaces arrays whole, with metadata per element', () => {
    const record = update(undefined, { state: { reported: { colors: ['red', 'green', 'blue'] } } }).record;
    const next = update(record, { state: { reported: { colors: ['white'] } } }, T0 + 1).record;
    expect(next.state.reported).toEqual({ colors: ['white'] });
    expect(next.metadata.reported).toEqual({ colors: [{ timestamp: T0 + 1 }] });
  });

  it('accepts an update naming the current version and refuses another with 409 "Version conflict"', () => {
    const record = update(undefined, { state: { reported: { a: 1 } } }).record;
    expect(update(record, { state: { reported: { a: 2 } }, version: 1 }).record.version).toBe(2);
    expect(refusal(() => update(record, { state: { reported: { a: 2 } }, version: 7 }))).toEqual({ code: 409, message: 'Version conflict' });
  });

  it('continues the version of a shadow deleted within 48 hours, and restarts after that', () => {
    const deleted: ShadowRecord = { state: {}, metadata: {}, version: 9, timestamp: T0, deletedAt: T0 };
    const recreated = update(deleted, { state: { reported: { a: 1 } } }, T0 + 60);
    expect(recreated.record.version).toBe(10);
    // as AWS IoT's /update/documents of a shadow an update creates: previous is null, not left out
    expect(recreated.documents).toHaveProperty('previous', null);
    expect(update(deleted, { state: { reported: { a: 1 } } }, T0 + VERSION_KEPT_AFTER_DELETE_SECONDS + 1).record.version).toBe(1);
  });

  it('refuses desired + reported over the document limit with 413', () => {
    const big = 'x'.repeat(5000);
    const record = update(undefined, { state: { desired: { big } } }).record;
    expect(refusal(() => update(record, { state: { reported: { big } } }))).toEqual({ code: 413, message: 'The payload exceeds the maximum size allowed' });
  });

  it('stores and publishes JSON text as JSON.stringify writes it, desired before reported', () => {
    const first = update(undefined, { state: { reported: { a: 1 } } });
    const second = update(first.record, { state: { desired: { a: 2, 'quote"d': 'x' } }, clientToken: 'tok"en' }, T0 + 1);
    expect(second.stored.state).toBe(JSON.stringify({ desired: { a: 2, 'quote"d': 'x' }, reported: { a: 1 } }));
    expect(second.stored.metadata).toBe(JSON.stringify({ desired: { a: { timestamp: T0 + 1 }, 'quote"d': { timestamp: T0 + 1 } }, reported: { a: { timestamp: T0 } } }));
    const result = applyUpdate(first.stored, parseUpdateRequest({ state: { desired: { a: 2 } }, clientToken: 'tok"en' }, limits), T0 + 1, limits);
    const current = parseStored(result.stored);
    expect(result.documents).toBe(JSON.stringify({
      previous: { state: first.record.state, metadata: first.record.metadata, version: 1 },
      current: { state: current.state, metadata: current.metadata, version: 2 },
      timestamp: T0 + 1,
      clientToken: 'tok"en',
    }));
    expect(result.accepted).toBe(JSON.stringify({ state: { desired: { a: 2 } }, metadata: { desired: { a: { timestamp: T0 + 1 } } }, version: 2, timestamp: T0 + 1, clientToken: 'tok"en' }));
    expect(result.delta).toBe(JSON.stringify({ state: { a: 2 }, metadata: { a: { timestamp: T0 + 1 } }, version: 2, timestamp: T0 + 1, clientToken: 'tok"en' }));
  });

  it('keeps "__proto__" a plain field', () => {
    const result = update(undefined, JSON.parse('{"state":{"desired":{"__proto__":{"polluted":true}}}}'));
    expect(Object.hasOwn(result.record.state.desired!, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(result.record.state))).toEqual(JSON.parse('{"desired":{"__proto__":{"polluted":true}}}'));
  });
});

describe('shadow documents: delta', () => {
  it('holds desired fields missing from reported or different to it', () => {
    expect(deltaOf({ a: 1, b: 2, c: 3 }, { a: 1, b: 5 })).toEqual({ b: 2, c: 3 });
    expect(deltaOf({ a: 1 }, { a: 1, extra: 2 })).toBeUndefined();
  });

  it('keeps the full path of nested objects', () => {
    expect(deltaOf({ light: { color: { r: 1, g: 2 }, on: true } }, { light: { color: { r: 1, g: 0 }, on: true } }))
      .toEqual({ light: { color: { g: 2 } } });
  });

  it('compares arrays whole', () => {
    expect(deltaOf({ list: [1, 2, 3] }, { list: [1, 2, 3] })).toBeUndefined();
    expect(deltaOf({ list: [1, 2, 3] }, { list: [1, 2] })).toEqual({ list: [1, 2, 3] });
    expect(deltaOf({ list: [{ a: 1 }] }, { list: [{ a: 2 }] })).toEqual({ list: [{ a: 1 }] });
  });

  it('publishes the delta with its metadata after an update, and shows it on get', () => {
    const record = update(undefined, { state: { reported: { color: 'red', light: { on: false, level: 3 } } } }).record;
    const result = update(record, { state: { desired: { color: 'green', light: { on: true, level: 3 } } }, clientToken: 't' }, T0 + 2);
    expect(result.delta).toEqual({
      state: { color: 'green', light: { on: true } },
      metadata: { color: { timestamp: T0 + 2 }, light: { on: { timestamp: T0 + 2 } } },
      version: 2, timestamp: T0 + 2, clientToken: 't',
    });
    expect(getDocument(result.record, T0 + 3, 'g').state).toEqual({
      desired: { color: 'green', light: { on: true, level: 3 } },
      reported: { color: 'red', light: { on: false, level: 3 } },
      delta: { color: 'green', light: { on: true } },
    });
    expect(update(result.record, { state: { reported: { color: 'green', light: { on: true } } } }).delta).toBeUndefined();
  });

  it('carries previous and current in /documents', () => {
    const record = update(undefined, { state: { reported: { a: 1 } } }).record;
    const result = update(record, { state: { reported: { a: 2 } }, clientToken: 'd' }, T0 + 1);
    expect(result.documents).toEqual({
      previous: { state: { reported: { a: 1 } }, metadata: { reported: { a: { timestamp: T0 } } }, version: 1 },
      current: { state: { reported: { a: 2 } }, metadata: { reported: { a: { timestamp: T0 + 1 } } }, version: 2 },
      timestamp: T0 + 1, clientToken: 'd',
    });
  });
});

describe('shadow documents: request validation with AWS error codes and messages', () => {
  const bad = (request: unknown) => refusal(() => parseUpdateRequest(request, limits));

  it('400 for invalid JSON', () => {
    expect(refusal(() => decodePayload(Buffer.from('{"state":'), limits))).toEqual({ code: 400, message: 'Payload contains invalid json' });
    expect(bad([1, 2])).toEqual({ code: 400, message: 'Payload contains invalid json' });
    expect(refusal(() => parseTokenRequest('text', limits)).code).toBe(400);
  });
  it('415 for a payload that is not UTF-8', () => {
    expect(refusal(() => decodePayload(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), limits)))
      .toEqual({ code: 415, message: 'Unsupported documented encoding; supported encoding is UTF-8' });
  });
  it('413 for a payload over maxPayloadBytes, before parsing', () => {
    expect(refusal(() => decodePayload(Buffer.alloc(limits.maxPayloadBytes + 1, 0x20), limits)).code).toBe(413);
  });
  it('400 "Missing required node: state"', () => expect(bad({ desired: {} })).toEqual({ code: 400, message: 'Missing required node: state' }));
  it('400 "State node must be an object"', () => expect(bad({ state: 'on' })).toEqual({ code: 400, message: 'State node must be an object' }));
  it('400 "Desired node must be an object"', () => expect(bad({ state: { desired: [1] } })).toEqual({ code: 400, message: 'Desired node must be an object' }));
  it('400 "Reported node must be an object"', () => expect(bad({ state: { reported: 5 } })).toEqual({ code: 400, message: 'Reported node must be an object' }));
  it('400 "State contains an invalid node"', () => {
    // AWS names a node under `state` other than desired and reported
    expect(bad({ state: { delta: {} } })).toEqual({ code: 400, message: "State contains an invalid node: 'delta'" });
    expect(bad({ state: { reported: { huge: Infinity } } })).toEqual({ code: 400, message: 'State contains an invalid node' });
    // AWS: "Arrays can't have null values"
    expect(bad({ state: { desired: { colors: [null, 'RED'] } } })).toEqual({ code: 400, message: 'State contains an invalid node' });
    expect(bad({ state: { reported: { rows: [[1], [2, null]] } } })).toEqual({ code: 400, message: 'State contains an invalid node' });
  });
  it('400 "Invalid version"', () => {
    for (const version of ['1', -1, 1.5, null, 2 ** 60]) expect(bad({ state: {}, version })).toEqual({ code: 400, message: 'Invalid version' });
  });
  it('400 "Invalid clientToken" over 64 bytes or not a string', () => {
    expect(bad({ state: {}, clientToken: 'x'.repeat(65) })).toEqual({ code: 400, message: 'Invalid clientToken' });
    expect(bad({ state: {}, clientToken: 5 })).toEqual({ code: 400, message: 'Invalid clientToken' });
    expect(parseUpdateRequest({ state: {}, clientToken: 'x'.repeat(64) }, limits).clientToken).toHaveLength(64);
  });
  it('400 for nesting deeper than 6 levels inside desired or reported', () => {
    const nest = (levels: number): unknown => (levels === 0 ? 1 : { n: nest(levels - 1) });
    expect(() => parseUpdateRequest({ state: { desired: nest(6) } }, limits)).not.toThrow();
    expect(bad({ state: { reported: nest(7) } })).toEqual({ code: 400, message: 'JSON contains too many levels of nesting; maximum is 6' });
    // Counted as AWS's own edge shadow service (Greengrass shadow manager) counts: desired or reported
    // is level 1, a non-empty object or array one level more; an empty one and a leaf add none.
    const nestWith = (levels: number, leaf: unknown): unknown => (levels === 0 ? leaf : { n: nestWith(levels - 1, leaf) });
    expect(() => parseUpdateRequest({ state: { desired: nestWith(6, {}) } }, limits)).not.toThrow();
    expect(() => parseUpdateRequest({ state: { desired: nestWith(6, []) } }, limits)).not.toThrow();
    expect(bad({ state: { desired: nestWith(5, [[1]]) } }).code).toBe(400);
    expect(() => parseUpdateRequest({ state: { desired: nestWith(5, [1]) } }, limits)).not.toThrow();
    const deep = JSON.parse(`{"state":{"desired":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`);
    expect(bad(deep).code).toBe(400);
  });
  it('400 for names outside AWS rules', () => {
    expect(() => validateThingName('lamp-1:a_b', limits)).not.toThrow();
    expect(refusal(() => validateThingName('x'.repeat(129), limits)).code).toBe(400);
    expect(refusal(() => validateThingName('has space', limits)).code).toBe(400);
    expect(refusal(() => validateShadowName('y'.repeat(65), limits)).code).toBe(400);
    expect(refusal(() => validateShadowName('a.b', limits)).code).toBe(400);
  });
});
