import type { LambdaErrorPayload } from '../errors.js';

/** What ended an invocation without its runtime answering: Lambda's platform reports these itself. */
const PLATFORM_ERRORS = new Set(['Sandbox.Timedout', 'Runtime.ExitError', 'Runtime.OutOfMemory']);

/**
 * REPORT's end for an invocation the platform ended (Lambda's platform.report status), or that failed
 * because its environment did not initialize (`initFailed`): `Status: timeout`, or `Status: error`
 * with the error type; nothing for a handler's answer or error.
 */
export function reportStatus(error: LambdaErrorPayload | undefined, initFailed = false): string {
  if (!error || (!initFailed && !PLATFORM_ERRORS.has(error.errorType))) return '';
  return error.errorType === 'Sandbox.Timedout' ? '\tStatus: timeout' : `\tStatus: error\tError Type: ${error.errorType}`;
}

/**
 * The lines a failed invocation adds to the function's log before END. One the platform ended gets
 * Lambda's platform lines: `time requestId Task timed out after N.NN seconds`, or the error message
 * and type (`RequestId: … Error: Runtime exited with error: signal: killed` / `Runtime.ExitError`).
 */
export function errorLines(requestId: string, error: LambdaErrorPayload): string {
  if (!PLATFORM_ERRORS.has(error.errorType)) return handlerErrorLines(requestId, error);
  // The invocation's timeout (runtimeErrors.timedOut); the init phase's is logged as the other platform errors.
  const timedOut = /Error: (Task timed out after [\d.]+ seconds)$/.exec(error.errorMessage);
  if (timedOut) return `${new Date().toISOString()} ${requestId} ${timedOut[1]}\n`;
  return `${error.errorMessage}\n${error.errorType}\n`;
}

/**
 * The line a handler's failure adds to the function's log before END, in the form of the runtime
 * that reports it: the Python runtime writes `[ERROR] Type: message` and the traceback (no time or
 * request id), the Node.js runtime `time<TAB>requestId<TAB>ERROR<TAB>Invoke Error <TAB>{errorType, errorMessage, stack}`.
 */
function handlerErrorLines(requestId: string, error: LambdaErrorPayload): string {
  // Only the Python runtime's errors carry stackTrace (LambdaErrorPayload).
  if (error.stackTrace) return pythonErrorLines(error, error.stackTrace);
  return `${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${nodeErrorJson(error)}\n`;
}

/**
 * An error as the Node.js runtime writes it into the log: its name, message and stack lines under
 * `stack` (the answer to the invoker carries them under `trace`).
 */
export function nodeErrorJson(error: LambdaErrorPayload): string {
  return JSON.stringify({ errorType: error.errorType, errorMessage: error.errorMessage, stack: error.trace ?? [] });
}

/**
 * The Python runtime's (awslambdaric's log_error): `[ERROR] Type: message`, `Traceback (most recent
 * call last):` and each line of the stack trace, joined by \r so that the whole error is one line,
 * one event where a log is read by lines (CloudWatch), and each line's leading spaces made no-break
 * spaces (U+00A0), which survive where leading spaces are trimmed.
 */
export function pythonErrorLines(error: LambdaErrorPayload, stackTrace: string[]): string {
  const description = [error.errorType, error.errorMessage].filter(Boolean).join(': ');
  // Each entry's lines, as Python's str.splitlines gives them: no empty line after the last break.
  const frames = stackTrace.flatMap((frame) => frame.split(/\r\n|\r|\n/).filter((line, index, all) => line !== '' || index < all.length - 1 || all.length === 1));
  const lines = [description ? `[ERROR] ${description}` : '[ERROR]', 'Traceback (most recent call last):', ...frames];
  return lines.map((line) => line.replace(/^ +/, (indent) => '\u00a0'.repeat(indent.length))).join('\r') + '\n';
}
