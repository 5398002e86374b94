import type { LambdaErrorPayload } from '../errors.js';

/**
 * The line a handler's failure adds to the function's log before END, in the form of the runtime
 * that reports it: the Python runtime writes `[ERROR] Type: message` and the traceback (no time or
 * request id), the Node.js runtime `time<TAB>requestId<TAB>ERROR<TAB>Invoke Error <TAB>{json}`.
 */
export function handlerErrorLines(requestId: string, error: LambdaErrorPayload): string {
  // Only the Python runtime's errors carry stackTrace (LambdaErrorPayload).
  if (error.stackTrace) return pythonErrorLines(error, error.stackTrace);
  return `${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${JSON.stringify(error)}\n`;
}

/** The Python runtime's: the type and message, then each frame of the stack trace on lines of its own. */
function pythonErrorLines(error: LambdaErrorPayload, stackTrace: string[]): string {
  const description = [error.errorType, error.errorMessage].filter(Boolean).join(': ');
  const frames = stackTrace.flatMap((frame) => (frame === '' ? [''] : frame.split('\n').filter((line) => line !== '')));
  return [`[ERROR] ${description}`, 'Traceback (most recent call last):', ...frames].join('\n') + '\n';
}
