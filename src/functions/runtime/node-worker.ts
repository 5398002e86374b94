import { Worker } from 'node:worker_threads';
import type { Writable } from 'node:stream';
import { runtimeErrors, type LambdaErrorPayload } from '../errors.js';
import type { InvokeMessage, WorkerInit, WorkerMessage } from './protocol.js';

export type InvokeOutcome = { ok: true; payload: string } | { ok: false; error: LambdaErrorPayload };

/** What the pool needs of an execution environment, a worker thread (Node.js) or a process (Python). */
export interface ExecutionEnvironment {
  readonly alive: boolean;
  readonly logStreamName: string;
  invoke(message: InvokeMessage, timeoutSeconds: number): Promise<InvokeOutcome>;
  terminate(): void;
}

export interface WorkerOptions {
  init: WorkerInit;
  env: Record<string, string>;
  memorySizeMb: number;
  /** The instance's Lambda log stream name (context.logStreamName and AWS_LAMBDA_LOG_STREAM_NAME). */
  logStreamName: string;
  /** Where the worker's stdout and stderr (the function's console) go. */
  log: Writable;
}

/** Thrown by `start` when the handler cannot be loaded: the Lambda error of the init phase. */
export class InitError extends Error {
  constructor(readonly payload: LambdaErrorPayload) {
    super(`${payload.errorType}: ${payload.errorMessage}`);
    this.name = 'InitError';
  }
}

const WORKER_MAIN = new URL('./worker-main.js', import.meta.url);
// Lambda's limit on the init phase: a handler module that never finishes loading cannot hold a deploy forever.
const INIT_TIMEOUT_SECONDS = 10;

/**
 * One execution environment: a worker thread with the function loaded, serving one invocation
 * at a time. Anything that ends the thread (timeout, exit, crash, memory limit) answers the
 * invocation in flight and marks the instance dead; the pool starts a fresh one next time.
 */
export class NodeWorkerInstance {
  alive = true;
  readonly logStreamName: string;
  private current: { requestId: string; settle: (outcome: InvokeOutcome) => void } | undefined;
  private readonly worker: Worker;

  private constructor(options: WorkerOptions) {
    this.logStreamName = options.logStreamName;
    this.worker = new Worker(WORKER_MAIN, {
      workerData: options.init,
      env: options.env,
      // MemorySize bounds the JS heap; buffers outside it are not counted (see docs/architecture.md).
      resourceLimits: { maxOldGenerationSizeMb: options.memorySizeMb },
      stdout: true,
      stderr: true,
    });
    this.worker.stdout.pipe(options.log, { end: false });
    this.worker.stderr.pipe(options.log, { end: false });
  }

  /** Starts a worker and resolves once the handler is loaded; rejects with an InitError otherwise. */
  static start(options: WorkerOptions): Promise<NodeWorkerInstance> {
    const instance = new NodeWorkerInstance(options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => failInit(runtimeErrors.initTimedOut(INIT_TIMEOUT_SECONDS)), INIT_TIMEOUT_SECONDS * 1000);
      const failInit = (payload: LambdaErrorPayload) => {
        clearTimeout(timer);
        instance.terminate();
        reject(new InitError(payload));
      };
      instance.worker.once('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          instance.listen();
          resolve(instance);
        } else if (message.type === 'init-error' || message.type === 'fatal') failInit(message.error);
      });
      instance.worker.once('error', (error) => failInit({ errorType: error.name, errorMessage: error.message }));
      instance.worker.once('exit', (code) => { if (instance.alive) failInit(runtimeErrors.exited('(init)', code)); });
    });
  }

  /** Runs one invocation; the worker is terminated if it does not answer by `message.deadline`. */
  invoke(message: InvokeMessage, timeoutSeconds: number): Promise<InvokeOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle(runtimeErrors.timedOut(message.requestId, timeoutSeconds));
        this.terminate();
      }, Math.max(0, message.deadline - Date.now()));
      this.current = {
        requestId: message.requestId,
        settle: (outcome) => {
          clearTimeout(timer);
          this.current = undefined;
          resolve(outcome);
        },
      };
      this.worker.postMessage(message);
    });
  }

  terminate(): void {
    this.alive = false;
    void this.worker.terminate();
  }

  private listen(): void {
    this.worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'result' && message.requestId === this.current?.requestId) this.current.settle({ ok: true, payload: message.payload });
      else if (message.type === 'error' && message.requestId === this.current?.requestId) this.settle(message.error);
      else if (message.type === 'fatal') {
        this.alive = false;
        this.settle(message.error);
      }
    });
    this.worker.on('error', (error: Error & { code?: string }) => {
      this.alive = false;
      const requestId = this.current?.requestId ?? '';
      this.settle(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? runtimeErrors.outOfMemory(requestId) : { errorType: error.name, errorMessage: error.message });
    });
    this.worker.on('exit', (code) => {
      this.alive = false;
      this.settle(runtimeErrors.exited(this.current?.requestId ?? '', code));
    });
  }

  private settle(error: LambdaErrorPayload): void {
    this.current?.settle({ ok: false, error });
  }
}
