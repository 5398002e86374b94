import { S3Error } from './errors.js';

/**
 * The POST policy of a browser-based upload (S3 API Reference, "Creating a POST Policy"): a
 * base64 JSON document with an `expiration` and `conditions` every form field must meet.
 */
export interface PostPolicy {
  /** Epoch milliseconds. */
  expiration: number;
  conditions: PolicyCondition[];
}

export type PolicyCondition =
  | { match: 'eq' | 'starts-with'; field: string; value: string; text: string }
  | { match: 'content-length-range'; min: number; max: number; text: string };

/** Fields no condition needs to name (S3: x-amz-signature, file, policy and x-ignore-*). */
const UNCONDITIONED = new Set(['x-amz-signature', 'file', 'policy']);

const invalidPolicy = (why: string) => new S3Error('InvalidPolicyDocument', 400, `Invalid Policy: ${why}`);
const deniedByPolicy = (why: string) => new S3Error('AccessDenied', 403, `Invalid according to Policy: ${why}`);

/** Decodes and checks the document's form; InvalidPolicyDocument naming what is wrong. */
export function parsePolicy(base64: string): PostPolicy {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    throw invalidPolicy('Invalid JSON.');
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw invalidPolicy('Invalid JSON.');
  const { expiration, conditions } = document as { expiration?: unknown; conditions?: unknown };
  if (expiration === undefined) throw invalidPolicy('Policy missing expiration.');
  // ISO 8601 in UTC, e.g. 2007-12-01T12:00:00.000Z
  if (typeof expiration !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(expiration) || Number.isNaN(Date.parse(expiration))) {
    throw invalidPolicy(`Invalid 'expiration' value: '${String(expiration)}'`);
  }
  if (conditions === undefined) throw invalidPolicy('Policy missing conditions.');
  if (!Array.isArray(conditions)) throw invalidPolicy('Invalid JSON.');
  return { expiration: Date.parse(expiration), conditions: conditions.flatMap(conditionsOf) };
}

/** `{"acl": "public-read"}` (one exact match per member), `["eq"|"starts-with", "$name", value]`, `["content-length-range", min, max]`. */
function conditionsOf(condition: unknown): PolicyCondition[] {
  const invalid = () => invalidPolicy(`Invalid Condition: ${JSON.stringify(condition)}`);
  if (Array.isArray(condition)) {
    const [operator, first, second] = condition as unknown[];
    if (condition.length !== 3 || typeof operator !== 'string') throw invalid();
    const match = operator.toLowerCase();
    if (match === 'content-length-range') {
      const min = Number(first);
      const max = Number(second);
      if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 0 || max < min) throw invalid();
      return [{ match, min, max, text: conditionText([operator, first, second]) }];
    }
    if ((match !== 'eq' && match !== 'starts-with') || typeof first !== 'string' || !first.startsWith('$') || typeof second !== 'string') throw invalid();
    return [{ match, field: first.slice(1).toLowerCase(), value: second, text: conditionText([operator, first, second]) }];
  }
  if (typeof condition !== 'object' || condition === null) throw invalid();
  return Object.entries(condition).map(([name, value]) => {
    if (typeof value !== 'string') throw invalid();
    return { match: 'eq', field: name.toLowerCase(), value, text: conditionText(['eq', `$${name}`, value]) };
  });
}

/** A condition as S3 quotes it in "Policy Condition failed: [...]". */
function conditionText(parts: unknown[]): string {
  return `[${parts.map((part) => JSON.stringify(part)).join(', ')}]`;
}

/**
 * Checks the form against the policy: not expired, every condition met (`bucket` is the addressed
 * bucket; a field not sent is empty), every field named by a condition. Returns the
 * content-length-range, which only the received file can be checked against.
 */
export function checkPolicy(policy: PostPolicy, fields: ReadonlyMap<string, string>, bucket: string, now: number): { min: number; max: number } | undefined {
  if (now > policy.expiration) throw deniedByPolicy('Policy expired.');
  let sizeRange: { min: number; max: number } | undefined;
  const named = new Set<string>();
  for (const condition of policy.conditions) {
    if (condition.match === 'content-length-range') {
      sizeRange = { min: condition.min, max: condition.max };
      continue;
    }
    named.add(condition.field);
    const value = condition.field === 'bucket' ? bucket : fields.get(condition.field) ?? '';
    const holds = condition.match === 'eq' ? value === condition.value : value.startsWith(condition.value);
    if (!holds) throw deniedByPolicy(`Policy Condition failed: ${condition.text}`);
  }
  const extra = [...fields.keys()].filter((name) => !UNCONDITIONED.has(name) && !name.startsWith('x-ignore-') && !named.has(name));
  if (extra.length) throw deniedByPolicy(`Extra input fields: ${extra.join(', ')}`);
  return sizeRange;
}
