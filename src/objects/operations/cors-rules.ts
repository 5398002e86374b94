import { errors } from '../errors.js';
import { HEADER_NAME } from './context.js';
import type { ObjectStore } from '../object-store.js';
import { el, isElement } from '../xml.js';

/** One CORSRule of a bucket's CORS configuration (S3 PutBucketCors). */
export interface CorsRule {
  id?: string;
  /** Origins a browser page may have; each may hold one `*`, which stands for any text. */
  allowedOrigins: string[];
  /** GET, PUT, POST, DELETE, HEAD. */
  allowedMethods: string[];
  /** Headers a preflight may ask for (Access-Control-Request-Headers), case-insensitive; one `*` each at most. */
  allowedHeaders: string[];
  /** Response headers a page's script may read (Access-Control-Expose-Headers). */
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

// S3 CORS configuration: up to 100 rules, and these methods only
const MAX_RULES = 100;
const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'];
const MAX_ID_LENGTH = 255;
/** What S3 sends to tell caches that a CORS answer depends on these request headers. */
const VARY = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';

/** The bucket's CORS rules; none when it has no configuration. */
export function corsRulesOf(objects: ObjectStore, bucket: string): CorsRule[] | undefined {
  const stored = objects.configuration(bucket, 'cors');
  return stored ? (JSON.parse(stored) as CorsRule[]) : undefined;
}

/** S3 PutBucketCors's rules from the parsed CORSConfiguration, checked as S3 checks them. */
export function corsRulesFrom(configuration: unknown): CorsRule[] {
  if (!isElement(configuration)) throw errors.malformedXml();
  const elements = (configuration.CORSRule ?? []) as unknown[];
  if (elements.length === 0 || elements.length > MAX_RULES) throw errors.malformedXml();
  return elements.map(ruleOf);
}

function ruleOf(element: unknown): CorsRule {
  if (!isElement(element)) throw errors.malformedXml();
  const list = (name: string) => ((element[name] ?? []) as unknown[]).map((value) => {
    if (typeof value !== 'string') throw errors.malformedXml();
    return value.trim();
  });
  const rule: CorsRule = {
    allowedOrigins: list('AllowedOrigin'), allowedMethods: list('AllowedMethod'), allowedHeaders: list('AllowedHeader'), exposeHeaders: list('ExposeHeader'),
  };
  if (rule.allowedOrigins.length === 0 || rule.allowedMethods.length === 0) throw errors.malformedXml();
  const unsupported = rule.allowedMethods.find((method) => !METHODS.includes(method));
  if (unsupported !== undefined) throw errors.invalidRequest(`Found unsupported HTTP method in CORS config. Unsupported method is ${unsupported}`);
  for (const [name, values] of [['AllowedOrigin', rule.allowedOrigins], ['AllowedHeader', rule.allowedHeaders]] as const) {
    const wild = values.find((value) => value.split('*').length > 2);
    if (wild !== undefined) throw errors.invalidRequest(`${name} "${wild}" can not have more than one wildcard.`);
  }
  const exposedWildcard = rule.exposeHeaders.find((value) => value.includes('*'));
  if (exposedWildcard !== undefined) throw errors.invalidRequest(`ExposeHeader "${exposedWildcard}" contains wildcard. We currently do not support wildcard for ExposeHeader.`);
  // sent as Access-Control-Expose-Headers: a name that is no header field name (RFC 9110 §5.1) made every cross-origin request answer 500
  const notAName = rule.exposeHeaders.find((value) => !HEADER_NAME.test(value));
  if (notAName !== undefined) throw errors.invalidRequest(`ExposeHeader "${notAName}" is not a valid header name.`);
  if (element.ID !== undefined) {
    if (typeof element.ID !== 'string') throw errors.malformedXml();
    if (element.ID.length > MAX_ID_LENGTH) throw errors.invalidArgument(`ID length should not exceed allowed limit of ${MAX_ID_LENGTH}`, 'ID', element.ID);
    if (element.ID) rule.id = element.ID;
  }
  if (element.MaxAgeSeconds !== undefined) {
    if (typeof element.MaxAgeSeconds !== 'string' || !/^\d{1,10}$/.test(element.MaxAgeSeconds.trim())) throw errors.malformedXml();
    rule.maxAgeSeconds = Number(element.MaxAgeSeconds.trim());
  }
  return rule;
}

/** The rule as GetBucketCors answers it. */
export function corsRuleElement(rule: CorsRule): string {
  return el('CORSRule', [
    rule.id !== undefined ? el('ID', rule.id) : '',
    ...rule.allowedHeaders.map((value) => el('AllowedHeader', value)),
    ...rule.allowedMethods.map((value) => el('AllowedMethod', value)),
    ...rule.allowedOrigins.map((value) => el('AllowedOrigin', value)),
    ...rule.exposeHeaders.map((value) => el('ExposeHeader', value)),
    rule.maxAgeSeconds !== undefined ? el('MaxAgeSeconds', rule.maxAgeSeconds) : '',
  ]);
}

/**
 * S3's evaluation of a CORS configuration: the first rule that allows the page's origin, the
 * method and (for a preflight) every header asked for.
 */
export function matchingCorsRule(rules: readonly CorsRule[], origin: string, method: string, requestedHeaders: readonly string[] = []): CorsRule | undefined {
  return rules.find((rule) => rule.allowedOrigins.some((allowed) => wildcardMatch(allowed, origin))
    && rule.allowedMethods.includes(method)
    && requestedHeaders.every((name) => rule.allowedHeaders.some((allowed) => wildcardMatch(allowed.toLowerCase(), name.toLowerCase()))));
}

/**
 * The answer's CORS headers under `rule`: `*` for an origin the rule allows as `*` (without
 * credentials), else the page's origin with credentials allowed; a preflight gets the headers it
 * asked for back.
 */
export function corsHeaders(rule: CorsRule, origin: string, requestedHeaders?: readonly string[]): Record<string, string> {
  const anyOrigin = rule.allowedOrigins.includes('*');
  return {
    'Access-Control-Allow-Origin': anyOrigin ? '*' : origin,
    'Access-Control-Allow-Methods': rule.allowedMethods.join(', '),
    ...(requestedHeaders?.length ? { 'Access-Control-Allow-Headers': requestedHeaders.map((name) => name.toLowerCase()).join(', ') } : {}),
    ...(rule.exposeHeaders.length ? { 'Access-Control-Expose-Headers': rule.exposeHeaders.join(', ') } : {}),
    ...(rule.maxAgeSeconds !== undefined ? { 'Access-Control-Max-Age': String(rule.maxAgeSeconds) } : {}),
    ...(anyOrigin ? {} : { 'Access-Control-Allow-Credentials': 'true' }),
    Vary: VARY,
  };
}

/** A pattern with at most one `*` (any text, none included) against a value. */
function wildcardMatch(pattern: string, value: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

/** The CORS headers of an actual (not preflight) request from a page of `origin`: the first rule allowing the origin and method says them; none without. */
export function crossOriginHeaders(objects: ObjectStore, bucket: string, origin: string, method: string): Record<string, string> {
  const rules = corsRulesOf(objects, bucket);
  const rule = rules && matchingCorsRule(rules, origin, method);
  return rule ? corsHeaders(rule, origin) : {};
}
