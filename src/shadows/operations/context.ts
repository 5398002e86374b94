import type { GroupCommit } from '../../store/group-commit.js';
import type { JsonObject, ShadowLimits, StoredShadow, UpdateResult } from '../document.js';
import { validateShadowName, validateThingName } from '../document.js';
import type { ShadowStore } from '../store.js';
import { CLASSIC } from '../store.js';
import { errors } from '../errors.js';

/** What every shadow operation works with. */
export interface OperationContext {
  shadows: ShadowStore;
  commit: GroupCommit;
  limits: ShadowLimits;
  /** Epoch seconds, the unit of AWS's `timestamp` fields. */
  now: () => number;
  /**
   * Publishes what a committed update or delete produces; called in commit order, so that
   * subscribers see versions in the order they were given. Settles once the bus has taken it, never rejects.
   */
  announce: {
    updated(address: ShadowAddress, result: UpdateResult): Promise<void>;
    deleted(address: ShadowAddress, document: JsonObject): Promise<void>;
  };
}

/** A thing's classic shadow (name '') or one of its named shadows. */
export interface ShadowAddress {
  thing: string;
  name: string;
}

export function checkAddress(address: ShadowAddress, limits: ShadowLimits): void {
  validateThingName(address.thing, limits);
  if (address.name !== CLASSIC) validateShadowName(address.name, limits);
}

/** What "No shadow exists with name: …" names, as AWS IoT does: the thing for its classic shadow, `thing~shadow` for a named one. */
export function displayName(address: ShadowAddress): string {
  return address.name === CLASSIC ? address.thing : `${address.thing}~${address.name}`;
}

/** The shadow's stored record, or 404 when it never existed or was deleted. */
export function existingShadow(address: ShadowAddress, context: OperationContext): StoredShadow {
  const record = context.shadows.read(address.thing, address.name);
  if (!record || record.deletedAt !== undefined) throw errors.noSuchShadow(displayName(address));
  return record;
}
