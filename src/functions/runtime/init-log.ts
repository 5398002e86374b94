import type { LambdaErrorPayload } from '../errors.js';
import { nodeErrorJson, pythonErrorLines } from './error-log.js';

/**
 * The line Lambda writes as an environment starts: `INIT_START Runtime Version: python:3.12`
 * (nodejs20.x → `nodejs:20`). Lambda's also names a version of its runtime build and its ARN, which
 * Outpost has none of: the line ends after the runtime.
 */
export function initStartLine(runtime: string): string {
  const version = runtime.replace(/^nodejs(\d+)\.x$/, 'nodejs:$1').replace(/^python(\d.*)$/, 'python:$1');
  return `INIT_START Runtime Version: ${version}\n`;
}

/**
 * Which try of an environment's init: in the init phase, or again in the invoke phase of the
 * invocations that waited for it (Lambda's suppressed init, see pool.ts).
 */
export type InitPhase = 'init' | 'invoke';

/**
 * Lambda's lines for an environment that failed to initialize: the error as its runtime logs it, then
 * `INIT_REPORT Init Duration: N ms<TAB>Phase: init<TAB>Status: error<TAB>Error Type: TYPE`
 * (`Status: timeout` for the init's timeout; `Phase: invoke` for its second try). The Node.js
 * runtime logs an error its loader or the module threw as `time<TAB>undefined<TAB>ERROR<TAB>Uncaught Exception <TAB>{errorType, errorMessage, stack}`
 * (no request id yet), the Python runtime as `[ERROR] TYPE: message` and the traceback; an
 * environment the platform ended (timeout, exit) gets only INIT_REPORT.
 */
export function initFailureLines(error: LambdaErrorPayload, initMs: number, python: boolean, phase: InitPhase): string {
  const timedOut = error.errorType === 'Sandbox.Timedout';
  const platform = timedOut || error.errorType === 'Runtime.ExitError' || error.errorType === 'Runtime.OutOfMemory';
  const errorLog = platform ? '' : python
    ? pythonErrorLines(error, error.stackTrace ?? [])
    : `${new Date().toISOString()}\tundefined\tERROR\tUncaught Exception \t${nodeErrorJson(error)}\n`;
  const status = timedOut ? 'Status: timeout' : `Status: error\tError Type: ${error.errorType}`;
  return `${errorLog}INIT_REPORT Init Duration: ${initMs.toFixed(2)} ms\tPhase: ${phase}\t${status}\n`;
}
