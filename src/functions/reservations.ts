import { apiErrors } from './errors.js';
import type { FunctionVersion } from './store.js';

/**
 * Environments of functions.maxConcurrency that reservations must leave to the functions without
 * one, as Lambda leaves 100 of an account's concurrency: a function deployed later without a
 * reservation can always run.
 */
export const MIN_UNRESERVED = 1;

/** Function name → ReservedConcurrentExecutions of its `$LATEST`, for the functions that set it. */
export function reservationsOf(latest: Iterable<FunctionVersion>): Map<string, number> {
  const reservations = new Map<string, number>();
  for (const { name, spec } of latest) if (spec.reservedConcurrency !== undefined) reservations.set(name, spec.reservedConcurrency);
  return reservations;
}

/** The environments `reservations` add up to. */
export function reservedTotal(reservations: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const count of reservations.values()) total += count;
  return total;
}

/**
 * The reservations set aside out of `max`: all of them when they leave MIN_UNRESERVED. Beyond (a
 * functions.maxConcurrency lowered under deployed reservations), each that still fits in name
 * order; the others are their function's maximum only and draw on the unreserved pool.
 */
export function setAside(reservations: ReadonlyMap<string, number>, max: number): Map<string, number> {
  const kept = new Map<string, number>();
  let total = 0;
  for (const name of [...reservations.keys()].sort()) {
    const reserved = reservations.get(name)!;
    if (total + reserved > max - MIN_UNRESERVED) continue;
    kept.set(name, reserved);
    total += reserved;
  }
  return kept;
}

/** The environments of `max` left to the functions without a reservation set aside. */
export function unreservedPool(reservations: ReadonlyMap<string, number>, max: number): number {
  return max - reservedTotal(setAside(reservations, max));
}

/**
 * Refuses `changed` (functions about to take these specs as `$LATEST`) when one raises its
 * reservation and all of them then leave less than MIN_UNRESERVED, with PutFunctionConcurrency's
 * error, naming the function as a deploy's errors do. A reservation lowered, removed or unchanged
 * always passes, so a deployment over a lowered bound can still be redeployed or brought down.
 */
export function checkReservations(changed: ReadonlyArray<{ name: string; reservedConcurrency?: number }>, current: ReadonlyMap<string, number>, max: number): void {
  const after = new Map(current);
  for (const { name, reservedConcurrency } of changed) {
    if (reservedConcurrency === undefined) after.delete(name);
    else after.set(name, reservedConcurrency);
  }
  if (reservedTotal(after) <= max - MIN_UNRESERVED) return;
  const raised = changed.find(({ name, reservedConcurrency }) => (reservedConcurrency ?? 0) > (current.get(name) ?? 0));
  // Lambda's wording (InvalidParameterValueException), its minimum in brackets.
  if (raised) throw apiErrors.invalidParameter(`${raised.name}: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [${MIN_UNRESERVED}].`);
}
