// The three-way merge of shadow sync, as pure functions over the `state` of a shadow document.
import { isDeepStrictEqual } from 'node:util';
import { own, setKey, type Json, type JsonObject, type ShadowState } from '../shadows/document.js';

export type Direction = 'both' | 'device-to-cloud' | 'cloud-to-device';
/** A shadow update's `state`: changed keys with their new value, removed keys as null. */
export type StatePatch = { desired?: JsonObject | null; reported?: JsonObject | null };

export interface SyncPlan {
  /** What to send to the cloud shadow, undefined when it already matches. */
  cloud?: StatePatch;
  /** What to apply to the local shadow. */
  local?: StatePatch;
  /** The new last-synced document. */
  base: ShadowState;
}

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Merges two sides' changes since `base`, key by key and into nested objects; where both changed
 * the same key differently, `winner` decides: the device's side for `reported`, the cloud's for
 * `desired` (the issue's conflict rules, see docs/sync.md).
 */
export function merge3(base: Json | undefined, local: Json | undefined, cloud: Json | undefined, winner: 'local' | 'cloud'): Json | undefined {
  if (isDeepStrictEqual(local, cloud)) return local;
  if (isDeepStrictEqual(local, base)) return cloud;
  if (isDeepStrictEqual(cloud, base)) return local;
  if (!isObject(local) || !isObject(cloud)) return winner === 'local' ? local : cloud;
  const merged: JsonObject = {};
  const baseObject = isObject(base) ? base : {};
  // Field names come from devices: a key absent on one side ("constructor", "__proto__") must read as absent there, not as what objects inherit.
  for (const key of new Set([...Object.keys(baseObject), ...Object.keys(local), ...Object.keys(cloud)])) {
    const value = merge3(own(baseObject, key), own(local, key), own(cloud, key), winner);
    if (value !== undefined) setKey(merged, key, value);
  }
  return merged;
}

/** The update that turns `from` into `to` (undefined when equal): changed keys, and null for removed ones. */
export function patch(from: Json | undefined, to: Json | undefined): Json | undefined {
  if (isDeepStrictEqual(from, to)) return undefined;
  if (to === undefined) return null;
  if (!isObject(from) || !isObject(to)) return to;
  const changes: JsonObject = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    const change = patch(own(from, key), own(to, key));
    if (change !== undefined) setKey(changes, key, change);
  }
  return Object.keys(changes).length > 0 ? changes : undefined;
}

function statePatch(from: ShadowState, to: ShadowState): StatePatch | undefined {
  const result: StatePatch = {};
  for (const section of ['desired', 'reported'] as const) {
    const change = patch(from[section], to[section]);
    // A section that ends up empty is removed whole (AWS: "desired": null).
    if (change !== undefined) result[section] = to[section] === undefined ? null : change as JsonObject;
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

/** A shadow with neither section: one that does not exist reads so too. */
export const isEmptyState = (state: ShadowState) => state.desired === undefined && state.reported === undefined;
const section = (value: Json | undefined): JsonObject | undefined => (isObject(value) && Object.keys(value).length > 0 ? value : undefined);

/** What one sync does, given the last synced document and both sides' current states. */
export function planSync(base: ShadowState, local: ShadowState, cloud: ShadowState, direction: Direction): SyncPlan {
  // One way, the source side is the authority: the other side's shadow deleted (or emptied) gets its whole state back.
  if (direction === 'device-to-cloud') return { cloud: statePatch(isEmptyState(cloud) ? {} : base, local), base: local };
  if (direction === 'cloud-to-device') return { local: statePatch(isEmptyState(local) ? {} : base, cloud), base: cloud };
  const merged: ShadowState = {};
  const desired = section(merge3(base.desired, emptiedSection(local.desired, base.desired), emptiedSection(cloud.desired, base.desired), 'cloud'));
  const reported = section(merge3(base.reported, emptiedSection(local.reported, base.reported), emptiedSection(cloud.reported, base.reported), 'local'));
  if (desired) merged.desired = desired as JsonObject;
  if (reported) merged.reported = reported as JsonObject;
  return { cloud: statePatch(cloud, merged), local: statePatch(local, merged), base: merged };
}

/**
 * A section a side no longer has (its shadow deleted, or the section set to null) as the merge sees
 * it: emptied, key by key, so that a key the other side added meanwhile is merged as any other
 * (kept), and one it changed meets the removal under the section's conflict rule. As a whole value,
 * the removal met every change of the other side's under that rule: a device's delete of its shadow
 * took with it the battery level the cloud had just added to `reported`.
 */
function emptiedSection(side: Json | undefined, base: Json | undefined): Json | undefined {
  return side === undefined && isObject(base) ? {} : side;
}

/**
 * One side's state as the merge is to see it while it still holds changes the other side refused
 * for good (`refused`, the update as it was sent): the base's value in their place, so that they
 * are neither sent again with every later change nor taken for a removal. A change the side makes
 * to such a key is a change again. `stillRefused`: the part of `refused` the side still holds.
 */
export function withoutRefused(state: ShadowState, base: ShadowState, refused: StatePatch): { state: ShadowState; stillRefused: StatePatch } {
  const seen: ShadowState = { ...state };
  const stillRefused: StatePatch = {};
  for (const name of ['desired', 'reported'] as const) {
    if (refused[name] === undefined) continue;
    const part = maskRefused(state[name], base[name], refused[name]);
    if (part.seen === undefined) delete seen[name];
    else seen[name] = part.seen as JsonObject;
    if (part.still !== undefined) stillRefused[name] = part.still as JsonObject | null;
  }
  return { state: seen, stillRefused };
}

/** One value of withoutRefused: a refused `null` is a removal, held while the key is still absent. */
function maskRefused(side: Json | undefined, base: Json | undefined, refused: Json): { seen: Json | undefined; still: Json | undefined } {
  const held = refused === null ? side === undefined : isDeepStrictEqual(side, refused);
  if (held) return { seen: base, still: refused };
  if (!isObject(refused) || !isObject(side)) return { seen: side, still: undefined };
  const seen: JsonObject = { ...side };
  const still: JsonObject = {};
  const baseObject = isObject(base) ? base : {};
  for (const [key, value] of Object.entries(refused)) {
    const part = maskRefused(own(side, key), own(baseObject, key), value);
    if (part.seen === undefined) delete seen[key];
    else setKey(seen, key, part.seen);
    if (part.still !== undefined) setKey(still, key, part.still);
  }
  return { seen, still: Object.keys(still).length > 0 ? still : undefined };
}

/** Two updates as one, `later` winning where both set a key. */
export function combinePatches(earlier: StatePatch, later: StatePatch): StatePatch {
  const combined: StatePatch = { ...earlier };
  for (const name of ['desired', 'reported'] as const) {
    if (later[name] !== undefined) combined[name] = combineValues(earlier[name], later[name]) as JsonObject | null;
  }
  return combined;
}

function combineValues(earlier: Json | undefined, later: Json): Json {
  if (!isObject(earlier) || !isObject(later)) return later;
  const combined: JsonObject = { ...earlier };
  for (const [key, value] of Object.entries(later)) setKey(combined, key, combineValues(own(earlier, key), value));
  return combined;
}

/**
 * An update as updates of one key each, the deepest it names (`{"reported":{"a":{"b":1,"c":2}}}`:
 * `a.b` and `a.c`): applied in any order, or a subset of them combined (combinePatches), they set
 * what the whole sets. Arrays, scalars, removals (null) and empty objects are one key each.
 */
export function patchLeaves(update: StatePatch): StatePatch[] {
  const leaves: StatePatch[] = [];
  for (const name of ['desired', 'reported'] as const) {
    const value = update[name];
    if (value === undefined) continue;
    for (const leaf of valueLeaves(value)) leaves.push({ [name]: leaf } as StatePatch);
  }
  return leaves;
}

function valueLeaves(value: Json): Json[] {
  if (!isObject(value) || Object.keys(value).length === 0) return [value];
  return Object.entries(value).flatMap(([key, inner]) => valueLeaves(inner).map((leaf) => {
    const single: JsonObject = {};
    setKey(single, key, leaf);
    return single;
  }));
}

/** The keys an update sets or removes, as dotted paths ("reported.log"), for the log and the status. */
export function patchPaths(patch: StatePatch | JsonObject, prefix = ''): string[] {
  return Object.entries(patch).flatMap(([key, value]) => (isObject(value ?? null) && Object.keys(value as JsonObject).length > 0
    ? patchPaths(value as JsonObject, `${prefix}${key}.`) : [`${prefix}${key}`]));
}
