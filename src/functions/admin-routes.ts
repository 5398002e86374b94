import { AdminError, optionalObjectBody, type AdminRouter } from '../admin/router.js';
import { apiErrors, FunctionApiError } from './errors.js';
import type { FunctionService } from './function-service.js';
import type { FunctionVersion } from './store.js';
import { invokeEvent, responseAnswer } from './json.js';
import { checkedFunctionName, unqualifiedFunctionName } from './function-name.js';

/** `/v1/functions` on the admin API, for `outpost deploy`, `outpost functions` and `outpost invoke`. */
export function registerFunctionAdminRoutes(router: AdminRouter, service: FunctionService): void {
  registerDeadLetterAdminRoutes(router, service);
  router.add('GET', '/v1/functions', () => ({ body: { functions: service.list().map(summary) } }));

  router.add('POST', '/v1/functions', ({ body }) => asAdminError(async () => {
    const path = (body as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string') throw apiErrors.invalidParameter('expected {"path": "/absolute/directory"}');
    return { deployed: await service.deploy(path) };
  }));

  router.add('GET', '/v1/functions/:name', ({ params }) => asAdminError(async () => {
    const name = unqualifiedFunctionName(params.name);
    const { latest, versions, instances, asyncEvents } = service.info(name);
    return {
      ...summary(latest),
      environment: latest.spec.environment,
      instances,
      asyncEvents,
      versions: versions.map(({ version, hash, createdAt }) => ({ version, hash, createdAt })),
      aliases: service.aliases(name),
    };
  }));

  // {"version": N, "additionalVersionWeights"?: {"M": 0.1}}: creates the alias or moves it (Lambda's RoutingConfig).
  router.add('PUT', '/v1/functions/:name/aliases/:alias', ({ params, body }) => asAdminError(async () => {
    const { version, additionalVersionWeights: weights } = (body ?? {}) as { version?: unknown; additionalVersionWeights?: unknown };
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw apiErrors.invalidParameter('expected {"version": N} with a version number ≥ 1');
    if (weights !== undefined && (typeof weights !== 'object' || weights === null || Array.isArray(weights))) {
      throw apiErrors.invalidParameter('additionalVersionWeights: expected {"VERSION": WEIGHT}');
    }
    return service.setAlias(unqualifiedFunctionName(params.name), params.alias, version, weights as Record<string, number> | undefined);
  }));

  router.add('DELETE', '/v1/functions/:name/aliases/:alias', ({ params }) => asAdminError(async () => {
    const name = unqualifiedFunctionName(params.name);
    await service.removeAlias(name, params.alias);
    return { removed: `${name}:${params.alias}` };
  }));

  // {"to"?: N}: without it, the version before the current $LATEST.
  router.add('POST', '/v1/functions/:name/rollback', ({ params, body }) => asAdminError(async () => {
    // a body that is no object (a list, a string) is refused, not read as "no version given"
    const { to } = optionalObjectBody(body);
    if (to !== undefined && (typeof to !== 'number' || !Number.isInteger(to) || to < 1)) throw apiErrors.invalidParameter('expected {"to": N} with a version number ≥ 1');
    return service.rollback(unqualifiedFunctionName(params.name), to);
  }));

  router.add('GET', '/v1/functions/:name/logs', ({ params, query }) => asAdminError(async () => {
    const name = unqualifiedFunctionName(params.name);
    const offset = query.get('offset');
    const lines = Number(query.get('lines') ?? 100);
    if (offset !== null && !/^\d+$/.test(offset)) throw new AdminError(400, 'expected "offset" to be a byte offset');
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) throw new AdminError(400, 'expected "lines" to be 1-10000');
    return service.logs(name, { offset: offset === null ? undefined : Number(offset), lines });
  }));

  router.add('DELETE', '/v1/functions/:name', ({ params }) => asAdminError(async () => {
    const name = unqualifiedFunctionName(params.name);
    await service.remove(name);
    return { removed: name };
  }));

  // The Invoke API's shape: status 200 (or 202 for Event), X-Amz-Function-Error as functionError.
  router.add('POST', '/v1/functions/:name/invocations', ({ params, body }) => asAdminError(async () => {
    const name = checkedFunctionName(params.name);
    const request: { payload?: unknown; payloadText?: unknown; invocationType?: unknown; qualifier?: unknown; logType?: unknown } = optionalObjectBody(body);
    const type = request.invocationType ?? 'RequestResponse';
    if (type !== 'RequestResponse' && type !== 'Event') throw new FunctionApiError(400, 'InvalidParameterValueException', 'invocationType: expected "RequestResponse" or "Event"');
    if (request.qualifier !== undefined && typeof request.qualifier !== 'string') throw apiErrors.invalidParameter('qualifier: expected an alias or version');
    if (request.logType !== undefined && request.logType !== 'None' && request.logType !== 'Tail') throw apiErrors.invalidParameter('logType: expected "None" or "Tail"');
    // NAME may carry the qualifier itself (NAME:live, NAME:3), as Lambda's FunctionName.
    const invocation = { event: invocationEvent(request), ...(request.qualifier !== undefined ? { qualifier: request.qualifier } : {}) };
    // Event: 202 only once the event is committed to the durable queue.
    if (type === 'Event') return { statusCode: 202, ...(await service.invoke(name, invocation, 'Event')) };
    const result = await service.invoke(name, { ...invocation, ...(request.logType === 'Tail' ? { tail: true } : {}) }, 'RequestResponse');
    return {
      statusCode: 200,
      executedVersion: result.executedVersion,
      requestId: result.requestId,
      ...(result.functionError ? { functionError: result.functionError } : {}),
      ...(result.logResult !== undefined ? { logResult: result.logResult } : {}),
      ...responseAnswer(result.payload),
    };
  }));
}

/** `payloadText` as it is, as Lambda's Invoke takes its payload; else `payload`, a JSON value written again (default {}). */
function invocationEvent({ payload, payloadText }: { payload?: unknown; payloadText?: unknown }): string {
  if (payloadText === undefined) return JSON.stringify(payload ?? {});
  if (payload !== undefined) throw apiErrors.invalidParameter('give payload or payloadText, not both');
  if (typeof payloadText !== 'string') throw apiErrors.invalidParameter('payloadText: expected the event as JSON text');
  return invokeEvent(payloadText);
}

/**
 * `/v1/dlq` for `outpost dlq ls|replay|purge`; `?function=NAME` narrows each to one function. The
 * listing comes in pages (`next`: pass it as `?after=`), bounded in count and in event bytes. A
 * name given is checked: `?function=` named a function "" and found nothing, rather than every one.
 */
export function registerDeadLetterAdminRoutes(router: AdminRouter, service: FunctionService): void {
  const functionOf = (query: URLSearchParams) => {
    const name = query.get('function');
    return name === null ? undefined : unqualifiedFunctionName(name);
  };

  // ?after=ID: the page after the one whose `next` was ID
  router.add('GET', '/v1/dlq', ({ query }) => asAdminError(async () => {
    const after = query.get('after') ?? '0';
    if (!/^\d{1,15}$/.test(after)) throw apiErrors.invalidParameter('after: expected a dead-letter id');
    return service.deadLetters(functionOf(query), Number(after));
  }));

  // {"id": N} or {"all": true, "function"?: NAME}.
  router.add('POST', '/v1/dlq/replay', ({ body }) => asAdminError(async () => {
    const request = (body ?? {}) as { id?: unknown; all?: unknown; function?: unknown };
    if (typeof request.id === 'number' && Number.isInteger(request.id)) return service.replay({ id: request.id });
    if (request.all === true && (request.function === undefined || typeof request.function === 'string')) {
      return service.replay({ all: true, ...(typeof request.function === 'string' ? { name: unqualifiedFunctionName(request.function) } : {}) });
    }
    throw new FunctionApiError(400, 'InvalidParameterValueException', 'expected {"id": N} or {"all": true, "function"?: "NAME"}');
  }));

  router.add('DELETE', '/v1/dlq', ({ query }) => asAdminError(async () => ({ purged: await service.purgeDeadLetters(functionOf(query)) })));
}

function summary(version: FunctionVersion): Record<string, unknown> {
  const { spec } = version;
  return {
    name: version.name, version: version.version, hash: version.hash, runtime: spec.runtime, handler: spec.handler,
    memorySize: spec.memorySize, timeout: spec.timeout, reservedConcurrency: spec.reservedConcurrency ?? null,
    topics: spec.topics, schedules: (spec.schedules ?? []).map((schedule) => schedule.expression), updatedAt: version.createdAt,
  };
}

async function asAdminError(action: () => Promise<unknown>): Promise<{ body: unknown }> {
  try {
    return { body: await action() };
  } catch (error) {
    if (error instanceof FunctionApiError) throw new AdminError(error.status, `${error.type}: ${error.message}`);
    throw error;
  }
}
