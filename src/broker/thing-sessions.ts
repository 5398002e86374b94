import { clientIdAllowed } from './policy.js';
import type { ThingRegistry } from './things/registry.js';

/**
 * The client ids among `stored` (persistent sessions' ids) whose sessions are `thing`'s: ids its
 * policy's client id patterns allow and that no other thing owns (the longest registered name
 * before a `-`). Asked while `thing` is registered: once it is gone, it owns no id.
 */
export function sessionsOfThing(thing: string, clientIdPatterns: string[], stored: Iterable<string>, things: Pick<ThingRegistry, 'clientIdOwner'>): string[] {
  const ids: string[] = [];
  for (const id of stored) {
    if (clientIdAllowed(clientIdPatterns, thing, id) && (things.clientIdOwner(id) ?? thing) === thing) ids.push(id);
  }
  return ids;
}
