import { randomBytes } from 'node:crypto';
import { AdminError, objectBody, optionalString, type AdminRouter } from '../admin/router.js';
import type { AccessKeys } from '../auth/access-keys.js';
import type { FunctionInvoker } from '../service.js';
import { S3Error } from './errors.js';
import { EVENT_TYPES, functionNameOf, validateRules, type NotificationRule } from './events.js';
import type { ObjectStore } from './object-store.js';
import { isBucketName } from './names.js';
import { changeRules, rulesOf } from './operations/notification-rules.js';
import { changeLifecycle, lifecycleOf, TRANSITION_MINIMUM_SIZES, type LifecycleRule } from './operations/lifecycle-rules.js';

interface Dependencies {
  objects: () => ObjectStore;
  functions: FunctionInvoker | undefined;
  accessKeys: AccessKeys;
  /** The S3 API's URL for local clients (the CLI). */
  endpoint: () => string;
  region: string;
}

/** `/v1/buckets` and `/v1/s3/endpoint` on the admin API, for `outpost buckets` and `outpost objects`. */
export function registerObjectAdminRoutes(router: AdminRouter, deps: Dependencies): void {
  router.add('GET', '/v1/buckets', () => ({
    body: { buckets: deps.objects().buckets().map((bucket) => ({ ...bucket, rules: rulesOf(deps.objects(), bucket.name).length })) },
  }));

  router.add('POST', '/v1/buckets', ({ body }) => asAdminError(async () => {
    const name = optionalString(objectBody(body), 'name');
    if (!name) throw new AdminError(400, 'expected {"name": "bucket-name"}');
    // S3's own answer (InvalidBucketName: The specified bucket is not valid.) does not say why
    if (!isBucketName(name)) {
      throw new AdminError(400, `invalid bucket name "${name}": expected 3-63 characters of a-z 0-9 . - that begin and end with a letter or digit, without "..", not shaped like an IP address, without a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, …)`);
    }
    return { created: await deps.objects().createBucket(name) };
  }));

  router.add('DELETE', '/v1/buckets/:name', ({ params }) => asAdminError(async () => {
    await deps.objects().deleteBucket(params.name);
    return { deleted: params.name };
  }));

  router.add('GET', '/v1/buckets/:name/notification', ({ params }) => asAdminError(() => {
    deps.objects().existingBucket(params.name);
    return { rules: rulesOf(deps.objects(), params.name) };
  }));

  // outpost buckets notify: adds one rule (replacing the rule of the same id); {"rules": []} clears them.
  router.add('POST', '/v1/buckets/:name/notification', ({ params, body }) => asAdminError(async () => {
    const fields = objectBody(body);
    deps.objects().existingBucket(params.name);
    const rule = fields.clear === true ? undefined : ruleOf(fields);
    // added to the rules as they are when written: another change at the same time is kept
    const rules = await changeRules(deps.objects(), params.name, (current) => {
      const changed = rule ? withRule(current, rule) : [];
      validateRules(changed, deps.functions);
      return changed;
    });
    return { rules };
  }));

  router.add('GET', '/v1/buckets/:name/lifecycle', ({ params }) => asAdminError(() => {
    deps.objects().existingBucket(params.name);
    return { rules: lifecycleOf(deps.objects(), params.name)?.rules ?? [] };
  }));

  // outpost buckets lifecycle: adds one expiration rule (replacing the rule of the same id); {"clear": true} removes them all.
  router.add('POST', '/v1/buckets/:name/lifecycle', ({ params, body }) => asAdminError(async () => {
    const fields = objectBody(body);
    deps.objects().existingBucket(params.name);
    const rule = fields.clear === true ? undefined : expirationRuleOf(fields);
    // added to the rules as they are when written: another change at the same time is kept
    const changed = await changeLifecycle(deps.objects(), params.name, (current) => rule
      ? { transitionDefaultMinimumObjectSize: TRANSITION_MINIMUM_SIZES[0], ...current, rules: withRule(current?.rules ?? [], rule) }
      : undefined);
    return { rules: changed?.rules ?? [] };
  }));

  // outpost objects: the CLI speaks S3 itself (streaming, no size limit) with the daemon's own key for it.
  router.add('GET', '/v1/s3/endpoint', async () => ({
    body: { endpoint: deps.endpoint(), region: deps.region, ...(await deps.accessKeys.serviceKey('cli')) },
  }));
}

function ruleOf(fields: Record<string, unknown>): NotificationRule {
  const target = optionalString(fields, 'function');
  const name = target && functionNameOf(target);
  if (!name) throw new AdminError(400, 'expected "function" to be a function name or a Lambda ARN');
  const events = fields.events ?? ['s3:ObjectCreated:*'];
  if (!Array.isArray(events) || events.some((event) => typeof event !== 'string' || !EVENT_TYPES.includes(event))) {
    throw new AdminError(400, `expected "events" to be a list of ${EVENT_TYPES.join(', ')}`);
  }
  const prefix = optionalString(fields, 'prefix');
  const suffix = optionalString(fields, 'suffix');
  return {
    id: optionalString(fields, 'id') ?? `${name}-${randomBytes(4).toString('hex')}`,
    functionArn: target!, function: name, events: events as string[],
    ...(prefix ? { prefix } : {}), ...(suffix ? { suffix } : {}),
  };
}

/** An enabled rule expiring a prefix's objects (every object without one) `expireDays` after their creation. */
function expirationRuleOf(fields: Record<string, unknown>): LifecycleRule {
  const days = fields.expireDays;
  if (typeof days !== 'number' || !Number.isSafeInteger(days) || days < 1) throw new AdminError(400, 'expected "expireDays" to be a whole number of days, at least 1');
  const prefix = optionalString(fields, 'prefix');
  // one rule per prefix unless named: setting a prefix's days again replaces its rule
  const id = optionalString(fields, 'id') ?? (prefix ? `expire ${prefix}` : 'expire');
  if (id.length > 255) throw new AdminError(400, `a rule's id is at most 255 characters (S3's limit): give a shorter "id" for this prefix`);
  return { id, enabled: true, filterForm: 'filter', ...(prefix ? { prefix } : {}), expiration: { days } };
}

/** The rules with `rule` added, in place of the rule of the same id if there is one. */
function withRule<Rule extends { id: string }>(rules: Rule[], rule: Rule): Rule[] {
  return [...rules.filter((existing) => existing.id !== rule.id), rule];
}

async function asAdminError<T>(work: () => T | Promise<T>): Promise<{ body: T }> {
  try {
    return { body: await work() };
  } catch (error) {
    if (error instanceof S3Error) {
      // S3's InvalidArgument says what was refused in ArgumentName and why in ArgumentValue
      const { ArgumentName: name, ArgumentValue: why } = error.extra;
      throw new AdminError(error.status, `${error.code}: ${error.message}${name ? ` (${name}${why ? `: ${why}` : ''})` : ''}`);
    }
    throw error;
  }
}
