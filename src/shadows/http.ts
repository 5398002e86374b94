import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Router } from '../http/router.js';
import type { HttpHandler } from '../http/server.js';
import { clientTokenOf, decodePayload } from './document.js';
import { asShadowError, errorDocument, errors, ShadowError } from './errors.js';
import { requestTopic } from './mqtt.js';
import { CLASSIC } from './store.js';
import type { OperationContext, ShadowAddress } from './operations/context.js';
import { getShadow } from './operations/get.js';
import { updateShadow } from './operations/update.js';
import { deleteShadow } from './operations/delete.js';
import { listNamedShadows } from './operations/list-named.js';
import { BodyMemoryFullError } from '../http/body-memory.js';
import { BodyTooLargeError, DataPlaneAuthError, type DataPlaneAuth } from '../http/data-plane-auth.js';

/**
 * The AWS IoT data plane's shadow routes (GetThingShadow, UpdateThingShadow, DeleteThingShadow,
 * ListNamedShadowsForThing), so the AWS SDK's IoT Data Plane client works against the gateway.
 * Errors are HTTP statuses with AWS's error response document as the body (`code`, `message`,
 * `timestamp`, the update's `clientToken`) and no MQTT `/rejected` (AWS: REST callers get the error
 * in the response only). Callers are held to the broker policy as if they had published the request
 * on its MQTT topic (see DataPlaneAuth).
 */
export function registerShadowHttpRoutes(router: Router<HttpHandler>, context: OperationContext, auth: DataPlaneAuth, log: Logger): void {
  const address = (params: Record<string, string>, url: URL): ShadowAddress => {
    const name = url.searchParams.get('name');
    // AWS: a shadow name is 1-64 characters; `?name=` names no shadow, not the classic one
    if (name === '') throw errors.invalidShadowName();
    return { thing: params.thing, name: name ?? CLASSIC };
  };
  /** The verified body of a caller allowed to publish on the operation's MQTT topic. */
  const authorized = async (req: IncomingMessage, target: ShadowAddress, operation: 'get' | 'update' | 'delete'): Promise<Buffer> => {
    const { caller, body } = await auth.authenticate(req, context.limits.maxPayloadBytes);
    auth.requirePublish(caller, requestTopic({ ...target, operation }));
    return body;
  };

  const reply = (res: ServerResponse, operation: Operation) => answer(res, log, context.now, operation);

  router.add('GET', '/things/:thing/shadow', (req, res, params, url) => reply(res, async () => {
    const target = address(params, url);
    await authorized(req, target, 'get');
    return getShadow(target, {}, context);
  }));

  router.add('POST', '/things/:thing/shadow', (req, res, params, url) => reply(res, async (request) => {
    const target = address(params, url);
    const body = decodePayload(await authorized(req, target, 'update'), context.limits);
    request.clientToken = clientTokenOf(body, context.limits);
    return (await updateShadow(target, body, context)).result.accepted;
  }));

  router.add('DELETE', '/things/:thing/shadow', (req, res, params, url) => reply(res, async () => {
    const target = address(params, url);
    await authorized(req, target, 'delete');
    return (await deleteShadow(target, {}, context)).document;
  }));

  router.add('GET', '/api/things/shadow/ListNamedShadowsForThing/:thing', (req, res, params, url) => reply(res, async () => {
    // Listing a thing's shadow names is allowed to whoever may get its classic shadow.
    await authorized(req, { thing: params.thing, name: CLASSIC }, 'get');
    return listNamedShadows(params.thing, { nextToken: url.searchParams.get('nextToken'), pageSize: url.searchParams.get('pageSize') }, context);
  }));
}


/** The exception names the AWS SDK maps statuses to (its `x-amzn-ErrorType` header). */
const ERROR_TYPES: Record<number, string> = {
  400: 'InvalidRequestException',
  401: 'UnauthorizedException',
  403: 'ForbiddenException',
  404: 'ResourceNotFoundException',
  409: 'ConflictException',
  413: 'RequestEntityTooLargeException',
  415: 'UnsupportedDocumentEncodingException',
  429: 'ThrottlingException',
  500: 'InternalFailureException',
};

/** What an operation learnt of its request that a refusal echoes: the clientToken of a parsed body. */
interface RequestEcho { clientToken?: string }
type Operation = (request: RequestEcho) => Promise<unknown>;

async function answer(res: ServerResponse, log: Logger, now: () => number, operation: Operation): Promise<void> {
  const request: RequestEcho = {};
  let body: unknown;
  try {
    body = await operation(request);
  } catch (error) {
    const shadowError = error instanceof DataPlaneAuthError ? new ShadowError(error.status, error.message)
      : error instanceof BodyTooLargeError ? errors.payloadTooLarge()
        : error instanceof BodyMemoryFullError ? errors.tooManyInFlight() : asShadowError(error);
    if (shadowError.code === 500) log.error({ err: error }, 'shadow request failed');
    return sendError(res, shadowError, now(), request.clientToken ?? shadowError.clientToken);
  }
  send(res, 200, body, {});
}

/** AWS: "an HTTP error response code and an Error response document as its response message body". */
function sendError(res: ServerResponse, error: ShadowError, timestamp: number, clientToken: string | undefined): void {
  send(res, error.code, errorDocument(error, timestamp, clientToken), { 'x-amzn-ErrorType': ERROR_TYPES[error.code] });
}

/** `body` as JSON; a string is JSON text already (an update's accepted document). */
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
