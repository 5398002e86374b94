// The three-way merge of shadow sync, as pure functions over the `state` of a shadow document.
import { isDeepStrictEqual } from 'node:util';
import type { Json, JsonObject, ShadowState } from '../shadows/document.js';

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
  for (const key of new Set([...Object.keys(baseObject), ...Object.keys(local), ...Object.keys(cloud)])) {
    const value = merge3(baseObject[key], local[key], cloud[key], winner);
    if (value !== undefined) merged[key] = value;
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
    const change = patch(from[key], to[key]);
    if (change !== undefined) changes[key] = change;
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
  const desired = section(merge3(base.desired, local.desired, cloud.desired, 'cloud'));
  const reported = section(merge3(base.reported, local.reported, cloud.reported, 'local'));
  if (desired) merged.desired = desired as JsonObject;
  if (reported) merged.reported = reported as JsonObject;
  return { cloud: statePatch(cloud, merged), local: statePatch(local, merged), base: merged };
}
