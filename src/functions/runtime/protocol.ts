import type { LambdaErrorPayload } from '../errors.js';

/** What a worker is started with (`workerData`). */
export interface WorkerInit {
  taskRoot: string;
  handler: string;
}

/** One invocation, as the parent sends it; the event travels as JSON text. */
export interface InvokeMessage {
  type: 'invoke';
  requestId: string;
  event: string;
  /** Epoch milliseconds at which the parent terminates the worker. */
  deadline: number;
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
  /** `memoryBytes`: the worker's V8 heap and external memory, or a child process's resident set, after the invocation. */
  | { type: 'result'; requestId: string; payload: string; memoryBytes: number }
  | { type: 'error'; requestId: string; error: LambdaErrorPayload; memoryBytes: number }
  /** An uncaught exception or unhandled rejection: the worker exits right after. */
  | { type: 'fatal'; error: LambdaErrorPayload };
