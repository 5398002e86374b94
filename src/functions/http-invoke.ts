import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Router } from '../http/router.js';
import type { HttpHandler } from '../http/server.js';
import { BodyMemoryFullError, type BodyMemory } from '../http/body-memory.js';
import { BodyTooLargeError, DataPlaneAuthError, type DataPlaneAuth } from '../http/data-plane-auth.js';
import { apiErrors, FunctionApiError } from './errors.js';
import { MAX_SYNC_PAYLOAD, type FunctionService } from './function-service.js';
import { MAX_ASYNC_PAYLOAD } from './async-queue.js';
import { invokeEvent, isJson } from './json.js';
import { checkedFunctionName } from './function-name.js';
import { isDiskFull } from '../store/storage-errors.js';

/**
 * Lambda's Invoke operation on the HTTP port, so `@aws-sdk/client-lambda` and `aws lambda invoke`
 * pointed at the gateway work: `POST /2015-03-31/functions/{FunctionName}/invocations?Qualifier=`.
 * Authenticated as the other data plane routes (`http.auth`): SigV4 for service `lambda` with a
 * thing's key or the functions' own, unsigned only with `http.auth: none`. Any such caller may
 * invoke any function: a thing's broker policy names topics, and an invocation has none.
 */
export function registerLambdaInvokeRoute(router: Router<HttpHandler>, service: FunctionService, auth: DataPlaneAuth, memory: BodyMemory, log: Logger): void {
  const route = (path: string, operation: (req: IncomingMessage, res: ServerResponse, name: string, url: URL) => Promise<void>, tooLarge: (req: IncomingMessage) => FunctionApiError) => {
    router.add('POST', path, (req, res, params, url) => operation(req, res, params.name, url)
      .catch((error: unknown) => {
        const apiError = error instanceof FunctionApiError ? error
          : error instanceof DataPlaneAuthError ? authError(error)
            : error instanceof BodyTooLargeError ? tooLarge(req)
              : error instanceof BodyMemoryFullError ? new FunctionApiError(429, 'TooManyRequestsException', error.message)
                : new FunctionApiError(500, 'ServiceException', isDiskFull(error) ? `Internal error: the gateway's disk is full (${(error as Error).message})` : 'Internal error');
        if (apiError.status >= 500) log.error({ err: error, function: params.name }, 'Lambda Invoke failed');
        sendError(res, apiError);
      }));
  };
  route('/2015-03-31/functions/:name/invocations', (req, res, name, url) => invokeOperation(req, res, name, url, service, auth, memory), bodyTooLarge);
  route('/2014-11-13/functions/:name/invoke-async', (req, res, name) => invokeAsyncOperation(req, res, name, service, auth),
    () => new FunctionApiError(413, 'RequestEntityTooLargeException', `Request must be smaller than ${MAX_INVOKE_ASYNC_PAYLOAD} bytes for the InvokeAsync operation`));
}

/** InvokeAsync's limit, below Invoke's Event one (the AWS CLI's `invoke-async`: "The payload limit is 256KB"). */
const MAX_INVOKE_ASYNC_PAYLOAD = 256 * 1024;

/**
 * Lambda InvokeAsync (deprecated, still in the AWS CLI and SDKs): the body is the event of an
 * asynchronous invocation of the function's $LATEST, answered 202 once the event is queued durably.
 */
async function invokeAsyncOperation(req: IncomingMessage, res: ServerResponse, functionName: string, service: FunctionService, auth: DataPlaneAuth): Promise<void> {
  const { body } = await auth.authenticate(req, MAX_INVOKE_ASYNC_PAYLOAD, 'lambda');
  const name = checkedFunctionName(functionName);
  if (!isUtf8(body)) throw apiErrors.invalidPayload();
  const { requestId } = await service.invoke(name, { event: invokeEvent(body.toString('utf8')) }, 'Event');
  // InvokeAsync's Status is the HTTP status; the body repeats it, as the 2014 API's JSON did
  const text = JSON.stringify({ Status: 202 });
  res.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': requestId });
  res.end(text);
}

async function invokeOperation(req: IncomingMessage, res: ServerResponse, functionName: string, url: URL, service: FunctionService, auth: DataPlaneAuth, memory: BodyMemory): Promise<void> {
  // Lambda Invoke: X-Amz-Invocation-Type RequestResponse (default) | Event | DryRun, checked once the caller is known.
  const type = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
  // An Event announcing more than its own limit is refused as a larger request is: before its body is
  // sent when it waits for 100 Continue (one of unknown length is measured against it once read).
  const announced = Number(header(req, 'content-length'));
  const limit = type === 'Event' && Number.isSafeInteger(announced) ? MAX_ASYNC_PAYLOAD : MAX_SYNC_PAYLOAD;
  // Lambda proves who calls before it looks at the request; the signature covers the body, read here.
  const { body } = await auth.authenticate(req, limit, 'lambda');
  const name = checkedFunctionName(functionName);
  if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') {
    throw apiErrors.validation('invocationType', type, 'Member must satisfy enum value set: [Event, RequestResponse, DryRun]');
  }
  // X-Amz-Log-Type: None (default) | Tail, which returns the end of the log of a synchronous invocation.
  const logType = header(req, 'x-amz-log-type') ?? 'None';
  if (logType !== 'None' && logType !== 'Tail') {
    throw apiErrors.validation('logType', logType, 'Member must satisfy enum value set: [Tail, None]');
  }
  const qualifier = checkedQualifier(url.searchParams.get('Qualifier') ?? undefined);
  // Lambda: bytes that are not UTF-8 are no JSON ("Invalid UTF-8 start byte"), not text to mend with U+FFFD
  if (!isUtf8(body)) throw apiErrors.invalidPayload();
  const event = invokeEvent(body.toString('utf8'));
  const clientContext = decodeClientContext(header(req, 'x-amz-client-context'));
  const invocation = { event, ...(qualifier !== undefined ? { qualifier } : {}) };
  if (type === 'DryRun') {
    service.resolveVersion(name, qualifier);
    res.writeHead(204, { 'x-amzn-RequestId': randomUUID() }).end();
    return;
  }
  if (type === 'Event') {
    // 202 only once the event is committed to the durable queue. Lambda passes ClientContext to synchronous invocations only.
    const { requestId } = await service.invoke(name, invocation, 'Event');
    // The request id each attempt of the event runs with (context.awsRequestId), as Lambda's answer carries it.
    res.writeHead(202, { 'Content-Length': 0, 'x-amzn-RequestId': requestId }).end();
    return;
  }
  const result = await service.invoke(name, { ...invocation, ...(clientContext !== undefined ? { clientContext } : {}), ...(logType === 'Tail' ? { tail: true } : {}) }, 'RequestResponse');
  // Bytes, outside V8's heap: a socket keeps what is written to it until its client reads it (as
  // strings, a dozen clients not reading 5 MB results filled a 48 MB heap). Held until then, it counts
  // among the bodies in memory, so that Invokes after it are refused (429) while results wait unread.
  const payload = result.payload;
  memory.takeAnyway(res, payload.length);
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': payload.length,
    'X-Amz-Executed-Version': result.executedVersion,
    'x-amzn-RequestId': result.requestId,
    ...(result.functionError ? { 'X-Amz-Function-Error': result.functionError } : {}),
    ...(result.logResult !== undefined ? { 'X-Amz-Log-Result': result.logResult } : {}),
  });
  res.end(payload);
}

/**
 * A body over its limit, refused before the invocation type was checked: an Event gets the Event
 * invocation type's message, with the size its Content-Length gives (one sent without a length was
 * not read to its end, and gets the synchronous message).
 */
function bodyTooLarge(req: IncomingMessage): FunctionApiError {
  const size = Number(header(req, 'content-length'));
  if (header(req, 'x-amz-invocation-type') === 'Event' && Number.isSafeInteger(size) && size > MAX_ASYNC_PAYLOAD) {
    return apiErrors.eventTooLarge(size, MAX_ASYNC_PAYLOAD);
  }
  return apiErrors.requestTooLarge(MAX_SYNC_PAYLOAD);
}

/** Invoke's Qualifier: 1 to 128 characters of Lambda's pattern, else its ValidationException (a version or alias that does not exist is a 404). */
function checkedQualifier(qualifier: string | undefined): string | undefined {
  if (qualifier === undefined || /^[a-zA-Z0-9$_-]{1,128}$/.test(qualifier)) return qualifier;
  const constraint = qualifier.length === 0 ? 'Member must have length greater than or equal to 1'
    : qualifier.length > 128 ? 'Member must have length less than or equal to 128'
      : 'Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)';
  throw apiErrors.validation('qualifier', qualifier, constraint);
}

/** X-Amz-Client-Context: base64 of a JSON object, handed to the handler as context.clientContext. */
function decodeClientContext(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  const text = Buffer.from(value, 'base64').toString('utf8');
  if (!isJson(text)) throw new FunctionApiError(400, 'InvalidRequestContentException', 'Client context must be a valid Base64-encoded JSON object.');
  return JSON.parse(text) as unknown;
}

/** A caller not proven or not allowed, with the statuses and exception names Lambda's clients know. */
function authError(error: DataPlaneAuthError): FunctionApiError {
  // Lambda answers it 403, as AWS's other JSON services do (the shadow routes' 401 is AWS IoT's)
  if (error.status === 401) return new FunctionApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (error.fromBrowser) return new FunctionApiError(403, 'AccessDeniedException', 'Unsigned requests from a web browser are refused.');
  return new FunctionApiError(403, 'AccessDeniedException', 'The access key is not allowed to invoke functions.');
}

/**
 * Lambda's REST error: the exception name in x-amzn-ErrorType and the body's Type, and the message;
 * like every Lambda answer, it has a request id of its own (the SDKs' $metadata.requestId).
 */
function sendError(res: ServerResponse, error: FunctionApiError): void {
  if (res.headersSent) return void res.destroy();
  // a ValidationException is the API's, before Lambda's own exceptions: it has no Type
  const type = error.type === 'ValidationException' ? {} : { Type: error.status >= 500 ? 'Service' : 'User' };
  const text = JSON.stringify({ ...error.fields, ...type, message: error.message });
  res.writeHead(error.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'x-amzn-ErrorType': error.type, 'x-amzn-RequestId': randomUUID() });
  res.end(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}


