import type { LambdaErrorPayload } from '../errors.js';
import type { ProcessIdentity } from './process-group.js';

/** Which function a Node.js environment loads. */
export interface WorkerInit {
  taskRoot: string;
  handler: string;
}

/**
 * A worker thread's first message: it may have been started before its function was known (a spare,
 * see pool.ts), so it learns its function and its environment variables here.
 */
export interface WorkerLoad {
  init: WorkerInit;
  env: Record<string, string>;
}

/**
 * A worker thread's workerData: `outputInFlight`, an Int32 of the bytes of output the thread has
 * posted and the function's log has not written yet (the thread adds, the daemon subtracts).
 */
export interface WorkerData {
  outputInFlight: SharedArrayBuffer;
}

/** The bytes of an `output` message's output, as the thread counts them in flight and the daemon takes them off. */
export function outputBytes(output: string | Uint8Array): number {
  return typeof output === 'string' ? Buffer.byteLength(output) : output.byteLength;
}

/**
 * How many asynchronous events a Node.js environment is handed at once: they travel in one message
 * and run one after the other, so the environment does not wait a round trip between two events.
 */
export const NODE_EVENTS_IN_FLIGHT = 16;

/** Lambda's LogResult: the last 4 KB of the invocation's log. */
export const TAIL_BYTES = 4096;
/**
 * Lambda's limit of a synchronous response, 6291556 bytes: 100 more than a request's (its
 * Function.ResponseSizeTooLarge names it). A Node handler's larger answer never leaves its environment.
 */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100;
/** A thread's answer from this size on is posted as bytes handed over, not as a string copied (WorkerMessage). */
export const TRANSFERRED_RESPONSE_BYTES = 64 * 1024;
/** An event from this many characters on goes to a thread as bytes handed over, apart from its batch's text (InvokeBatch). */
export const TRANSFERRED_EVENT_CHARACTERS = 64 * 1024;

/**
 * A batch of invocations as a worker thread gets it: their JSON text (a string clones cheaper than
 * the objects), or that text with the large events apart, as UTF-8 bytes whose memory is handed over
 * (`event` empty in the text). In the text a 6 MB event would be copied once escaped, and twice more
 * by the clone, in the daemon's memory.
 */
export type InvokeBatch = string | { invocations: string; events: Array<{ index: number; bytes: Uint8Array }> };

/** One invocation, as the parent sends it (Node.js environments get them in arrays); the event travels as JSON text. */
export interface InvokeMessage {
  type: 'invoke';
  requestId: string;
  event: string;
  /** The function's timeout: the environment's deadline is this long after the invocation starts. */
  timeoutMs: number;
  /** The invocation's X-Ray trace header, as Lambda's runtimes get it (Lambda-Runtime-Trace-Id) and set it (`_X_AMZN_TRACE_ID`). */
  traceId: string;
  /** X-Amz-Log-Type: Tail: the environment returns what the invocation wrote (`log` of its answer). */
  tail?: boolean;
  context: {
    functionName: string;
    functionVersion: string;
    invokedFunctionArn: string;
    memoryLimitInMB: string;
    logGroupName: string;
    logStreamName: string;
    clientContext?: unknown;
  };
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'init-error'; error: LambdaErrorPayload }
  /**
   * `memoryBytes`: the worker's V8 heap and external memory, or a child process's resident set, after
   * the invocation.
   */
  /**
   * `payload`: the handler's JSON; a thread's answer of TRANSFERRED_RESPONSE_BYTES or more comes as its
   * UTF-8 bytes, their memory handed over with the message rather than copied.
   */
  | { type: 'result'; requestId: string; payload: string | Uint8Array; memoryBytes: number; log?: string }
  | { type: 'error'; requestId: string; error: LambdaErrorPayload; memoryBytes: number; log?: string }
  /** An uncaught exception or unhandled rejection: the worker exits right after. */
  | { type: 'fatal'; error: LambdaErrorPayload }
  /** What a thread's handler wrote to stdout or stderr, posted in line with its answers (worker-main's captureOutput). */
  | { type: 'output'; output: string | Uint8Array }
  /** A worker thread's processes (spawn-tracking.ts): its /proc task directory, a child it started, a child it reaped and what was left in its group. */
  | { type: 'task'; path: string }
  | { type: 'spawned'; pid: number }
  | { type: 'reaped'; pid: number; left: ProcessIdentity[] };

/**
 * A child process's message, with `written`: the bytes it had written to stdout and stderr through
 * process.stdout and process.stderr when it sent it (worker-main's count). Its output comes on pipes
 * read apart from its messages, so the daemon acts on a message once it has read that far
 * (AfterOutputRead).
 */
export type ProcessMessage = WorkerMessage & { written?: number[] };
