import type { Policy } from '../config/schema.js';
import { filterCovers, levelsMatch } from './topic.js';

/** A policy with `${thing}` and `${clientid}` filled in for one connection. */
export interface BoundPolicy {
  /** Publish filters split into levels once, since every PUBLISH is checked against them. */
  publish: string[][];
  subscribe: string[];
}

const WILDCARD_OR_SEPARATOR = /[+#/\u0000]/;

/**
 * Fills `${thing}` and `${clientid}` into the policy's patterns. A pattern whose
 * value would contain a wildcard or a level separator is dropped rather than
 * letting a crafted client id widen what the policy grants.
 */
export function bindPolicy(policy: Pick<Policy, 'publish' | 'subscribe'>, thing: string | null, clientId: string): BoundPolicy {
  const values: Record<string, string | null> = { thing, clientid: clientId };
  const bind = (patterns: string[]) => patterns.flatMap((pattern) => {
    let unsafe = false;
    const bound = pattern.replace(/\$\{(thing|clientid)\}/g, (_, name: string) => {
      const value = values[name];
      if (value === null || value === '' || WILDCARD_OR_SEPARATOR.test(value)) unsafe = true;
      return value ?? '';
    });
    return unsafe ? [] : [bound];
  });
  return { publish: bind(policy.publish).map((filter) => filter.split('/')), subscribe: bind(policy.subscribe) };
}

export function mayPublish(policy: BoundPolicy, topic: string): boolean {
  return policy.publish.some((levels) => levelsMatch(levels, topic));
}

export function maySubscribe(policy: BoundPolicy, filter: string): boolean {
  return policy.subscribe.some((allowed) => filterCovers(allowed, filter));
}

/** Client id patterns: `${thing}`/`${clientid}` substituted, a trailing `*` matches any suffix. */
export function clientIdAllowed(patterns: string[], thing: string, clientId: string): boolean {
  return patterns.some((pattern) => {
    const bound = pattern.replace(/\$\{thing\}/g, thing).replace(/\$\{clientid\}/g, clientId);
    return bound.endsWith('*') ? clientId.startsWith(bound.slice(0, -1)) : clientId === bound;
  });
}
