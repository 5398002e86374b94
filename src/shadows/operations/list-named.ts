import { SHADOW_NAME_PATTERN, validateThingName } from '../document.js';
import { errors } from '../errors.js';
import type { OperationContext } from './context.js';

export const DEFAULT_PAGE_SIZE = 25;
/** AWS: pageSize 1–100. */
export const MAX_PAGE_SIZE = 100;

export interface NamedShadowPage {
  results: string[];
  /** null when there are no more results, as the IoT data plane answers. */
  nextToken: string | null;
  timestamp: number;
}

/** ListNamedShadowsForThing: names in order, paged by an opaque token (the last name returned). */
export function listNamedShadows(thing: string, query: { nextToken?: string | null; pageSize?: string | null }, context: OperationContext): NamedShadowPage {
  validateThingName(thing, context.limits);
  const pageSize = parsePageSize(query.pageSize);
  const after = query.nextToken ? decodeToken(query.nextToken) : '';
  // One more than asked tells whether another page exists without a second query.
  const names = context.shadows.namedAfter(thing, after, pageSize + 1);
  const results = names.slice(0, pageSize);
  const nextToken = names.length > pageSize ? Buffer.from(results[results.length - 1]).toString('base64url') : null;
  return { results, nextToken, timestamp: context.now() };
}

function parsePageSize(value: string | null | undefined): number {
  if (value === undefined || value === null) return DEFAULT_PAGE_SIZE;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) throw errors.invalidPageSize();
  return size;
}

function decodeToken(token: string): string {
  const name = Buffer.from(token, 'base64url').toString('utf8');
  if (!SHADOW_NAME_PATTERN.test(name)) throw errors.invalidNextToken();
  return name;
}
