import { fork } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
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
  /** The most memory the environment has used so far (REPORT's Max Memory Used), when known. */
  maxMemoryBytes(): number | undefined;
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

/** What ended a thread or process, as the error of the invocation it was running. */
type Ending = (requestId: string) => LambdaErrorPayload;

/** A worker thread or a child process running worker-main.js, seen the same way by the instance. */
interface NodeHost {
  post(message: InvokeMessage): void;
  kill(): void;
  /** `onEnd` may be called more than once (a thread's error and then its exit); the first one counts. */
  listen(onMessage: (message: WorkerMessage) => void, onEnd: (ending: Ending) => void): void;
}

/** The default: a worker thread, cheap to start; MemorySize bounds its JS heap (buffers outside it are not counted). */
function threadHost(options: WorkerOptions): NodeHost {
  const worker = new Worker(WORKER_MAIN, {
    workerData: options.init,
    env: options.env,
    resourceLimits: { maxOldGenerationSizeMb: options.memorySizeMb },
    stdout: true,
    stderr: true,
  });
  worker.stdout.pipe(options.log, { end: false });
  worker.stderr.pipe(options.log, { end: false });
  return {
    // JSON text: cloning a string costs less than cloning the object, on the daemon's thread.
    post: (message) => worker.postMessage(JSON.stringify(message)),
    kill: () => void worker.terminate(),
    listen: (onMessage, onEnd) => {
      worker.on('message', onMessage);
      worker.on('error', (error: Error & { code?: string }) => onEnd((requestId) =>
        error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? runtimeErrors.outOfMemory(requestId) : { errorType: error.name, errorMessage: error.message }));
      worker.on('exit', (code) => onEnd((requestId) => runtimeErrors.exited(requestId, code)));
    },
  };
}

/**
 * `isolation: process`: a child process of its own (about 40 MB more than a thread), so native
 * addons, process-wide state and a crash stay out of the daemon; MemorySize is its V8 heap limit.
 */
function processHost(options: WorkerOptions): NodeHost {
  const child = fork(fileURLToPath(WORKER_MAIN), [options.init.taskRoot, options.init.handler], {
    env: options.env,
    execArgv: [`--max-old-space-size=${options.memorySizeMb}`],
    cwd: options.init.taskRoot,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout!.pipe(options.log, { end: false });
  child.stderr!.pipe(options.log, { end: false });
  return {
    post: (message) => { if (child.connected) child.send(message); },
    kill: () => void child.kill('SIGKILL'),
    listen: (onMessage, onEnd) => {
      child.on('message', onMessage as (message: unknown) => void);
      child.on('error', (error) => onEnd(() => ({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `cannot start the process: ${error.message}` })));
      // V8 aborts the process when the heap limit is reached.
      child.on('exit', (code, signal) => onEnd((requestId) => (signal === 'SIGABRT'
        ? runtimeErrors.outOfMemory(requestId)
        : runtimeErrors.exited(requestId, code ?? 128 + (signal ? osConstants.signals[signal] : 0)))));
    },
  };
}

/**
 * One Node.js execution environment: a worker thread (or child process) with the function loaded,
 * serving one invocation at a time. Anything that ends it (timeout, exit, crash, memory limit)
 * answers the invocation in flight and marks the instance dead; the pool starts a fresh one next time.
 */
export class NodeWorkerInstance {
  alive = true;
  readonly logStreamName: string;
  private current: { requestId: string; settle: (outcome: InvokeOutcome) => void } | undefined;
  private starting: { ready: () => void; fail: (error: LambdaErrorPayload) => void } | undefined;
  private readonly host: NodeHost;
  private peakMemoryBytes: number | undefined;

  private constructor(options: WorkerOptions & { isolation: 'thread' | 'process' }) {
    this.logStreamName = options.logStreamName;
    this.host = options.isolation === 'process' ? processHost(options) : threadHost(options);
    this.host.listen((message) => this.onMessage(message), (ending) => this.onEnd(ending));
  }

  /** Starts an environment and resolves once the handler is loaded; rejects with an InitError otherwise. */
  static start(options: WorkerOptions & { isolation: 'thread' | 'process' }): Promise<NodeWorkerInstance> {
    const instance = new NodeWorkerInstance(options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => instance.starting?.fail(runtimeErrors.initTimedOut(INIT_TIMEOUT_SECONDS)), INIT_TIMEOUT_SECONDS * 1000);
      instance.starting = {
        ready: () => {
          clearTimeout(timer);
          instance.starting = undefined;
          resolve(instance);
        },
        fail: (payload) => {
          clearTimeout(timer);
          instance.starting = undefined;
          instance.terminate();
          reject(new InitError(payload));
        },
      };
    });
  }

  /** Runs one invocation; the environment is ended if it does not answer by `message.deadline`. */
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
      this.host.post(message);
    });
  }

  terminate(): void {
    this.alive = false;
    this.host.kill();
  }

  maxMemoryBytes(): number | undefined {
    return this.peakMemoryBytes;
  }

  private onMessage(message: WorkerMessage): void {
    if (message.type === 'result' || message.type === 'error') this.peakMemoryBytes = Math.max(this.peakMemoryBytes ?? 0, message.memoryBytes);
    if (this.starting) {
      if (message.type === 'ready') this.starting.ready();
      else if (message.type === 'init-error' || message.type === 'fatal') this.starting.fail(message.error);
    } else if (message.type === 'result' && message.requestId === this.current?.requestId) this.current.settle({ ok: true, payload: message.payload });
    else if (message.type === 'error' && message.requestId === this.current?.requestId) this.settle(message.error);
    else if (message.type === 'fatal') {
      this.alive = false;
      this.settle(message.error);
    }
  }

  private onEnd(ending: Ending): void {
    this.alive = false;
    if (this.starting) this.starting.fail(ending('(init)'));
    else if (this.current) this.settle(ending(this.current.requestId));
  }

  private settle(error: LambdaErrorPayload): void {
    this.current?.settle({ ok: false, error });
  }
}
