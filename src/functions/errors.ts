import { functionArn } from './arn.js';

/**
 * Errors of the Lambda Invoke API that refuse a request (the function never ran), with the
 * HTTP status and exception name AWS uses, so `outpost` and the admin API read like `aws lambda`.
 */
export class FunctionApiError extends Error {
  /** `fields`: the exception's members beyond Type and message, in its body (TooManyRequestsException's Reason). */
  constructor(readonly status: number, readonly type: string, message: string, readonly fields: Record<string, string> = {}) {
    super(message);
    this.name = 'FunctionApiError';
  }
}

export const apiErrors = {
  /** `name`: NAME, NAME:QUALIFIER or an ARN, named by its ARN as Lambda names it (`Function not found: arn:aws:lambda:…:function:NAME:3`). */
  notFound: (name: string) => new FunctionApiError(404, 'ResourceNotFoundException', `Function not found: ${name.startsWith('arn:') ? name : functionArn(name)}`),
  // AWS answers a throttled synchronous invoke with this exception and message, and says which limit in Reason.
  tooManyRequests: (reason?: ThrottleReason) => new FunctionApiError(429, 'TooManyRequestsException', 'Rate Exceeded.', reason ? { Reason: reason } : {}),
  // The exception Lambda sends for an oversized Invoke (its API model calls it RequestTooLargeException), and its messages.
  requestTooLarge: (limit: number) => new FunctionApiError(413, 'RequestEntityTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation`),
  eventTooLarge: (size: number, limit: number) => new FunctionApiError(413, 'RequestEntityTooLargeException', `${size} byte payload is too large for the Event invocation type (limit ${limit} bytes)`),
  invalidPayload: () => new FunctionApiError(400, 'InvalidRequestContentException', 'Could not parse request body into json'),
  invalidParameter: (message: string) => new FunctionApiError(400, 'InvalidParameterValueException', message),
  /** A request member outside the API model's constraint, refused by the API's validation before Lambda sees it. */
  validation: (member: string, value: string, constraint: string) => new FunctionApiError(400, 'ValidationException',
    `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: ${constraint}`),
  deadLetterNotFound: (id: number) => new FunctionApiError(404, 'ResourceNotFoundException', `Dead letter not found: ${id}`),
  stopping: () => new FunctionApiError(503, 'ServiceException', 'Outpost is stopping'),
};

/**
 * TooManyRequestsException's Reason for a function out of environments: its ReservedConcurrentExecutions,
 * or (without one) the concurrency every function may use (functions.maxInstances) or all of them together
 * (functions.maxConcurrency), Lambda's account limit.
 */
export type ThrottleReason = 'ReservedFunctionConcurrentInvocationLimitExceeded' | 'ConcurrentInvocationLimitExceeded';

/**
 * What a failed invocation returns as its payload: the Node.js runtime's `{errorType, errorMessage, trace}`,
 * or the Python runtime's `{errorMessage, errorType, requestId, stackTrace}`.
 */
export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace?: string[];
  requestId?: string;
  stackTrace?: string[];
}

/** Failures the runtime reports itself (the handler did not get to answer), worded as AWS words them. */
export const runtimeErrors = {
  /** `requestId`: none for an init retried in the invoke phase (pool.ts), logged before the invocations that waited for it. */
  timedOut: (requestId: string | undefined, timeoutSeconds: number): LambdaErrorPayload => ({
    errorType: 'Sandbox.Timedout',
    errorMessage: `${requestIdPrefix(requestId)}Error: Task timed out after ${timeoutSeconds.toFixed(2)} seconds`,
  }),
  initTimedOut: (seconds: number): LambdaErrorPayload => ({
    errorType: 'Sandbox.Timedout',
    errorMessage: `Error: Init phase timed out after ${seconds.toFixed(2)} seconds`,
  }),
  /**
   * `how`: the exit code, or the signal that ended the process. `requestId`: the invocation it ended,
   * or the one that waited for an environment that ended in its init phase; none for the init phase alone.
   */
  exited: (requestId: string | undefined, how: number | NodeJS.Signals): LambdaErrorPayload => ({
    errorType: 'Runtime.ExitError',
    errorMessage: how === 0
      ? `${requestIdPrefix(requestId)}Error: Runtime exited without providing a reason`
      : `${requestIdPrefix(requestId)}Error: Runtime exited with error: ${typeof how === 'number' ? `exit status ${how}` : `signal: ${signalText(how)}`}`,
  }),
  outOfMemory: (requestId: string | undefined): LambdaErrorPayload => ({
    errorType: 'Runtime.OutOfMemory',
    errorMessage: `${requestIdPrefix(requestId)}Error: Runtime exited with error: signal: killed`,
  }),
  responseTooLarge: (size: number, limit: number): LambdaErrorPayload => ({
    errorType: 'Function.ResponseSizeTooLarge',
    errorMessage: `Response payload size (${size} bytes) exceeded maximum allowed payload size (${limit} bytes).`,
  }),
};

function requestIdPrefix(requestId: string | undefined): string {
  return requestId === undefined ? '' : `RequestId: ${requestId} `;
}

/**
 * A signal as Lambda's runtime (written in Go) words it, `signal: killed`: Go's descriptions of the
 * signals a function's process may die of; others by name.
 */
function signalText(signal: NodeJS.Signals): string {
  const words: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: 'killed', SIGTERM: 'terminated', SIGSEGV: 'segmentation fault', SIGABRT: 'aborted', SIGBUS: 'bus error',
    SIGILL: 'illegal instruction', SIGFPE: 'floating point exception', SIGINT: 'interrupt', SIGHUP: 'hangup', SIGQUIT: 'quit',
    SIGPIPE: 'broken pipe', SIGALRM: 'alarm clock', SIGUSR1: 'user defined signal 1', SIGUSR2: 'user defined signal 2',
  };
  return words[signal] ?? signal;
}
