import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { finished, type Readable, type Writable } from 'node:stream';
import { AfterOutputRead } from './after-output-read.js';
import { runtimeErrors, type LambdaErrorPayload } from '../errors.js';
import { outputBytes, TAIL_BYTES, TRANSFERRED_EVENT_CHARACTERS, type InvokeBatch, type InvokeMessage, type ProcessMessage, type WorkerData, type WorkerInit, type WorkerLoad, type WorkerMessage } from './protocol.js';
import { killEnvironmentProcess, residentBytes } from './process-group.js';
import { SpawnedChildren } from './spawned-children.js';

/**
 * `payload`: the handler's JSON response, as UTF-8 bytes.
 * `log`: what the invocation wrote, when the message asked for the tail (X-Amz-Log-Type: Tail).
 * `errorLogged`: the environment logged the error itself (an uncaught exception).
 */
export type InvokeOutcome = { ok: true; payload: Buffer; log?: string } | { ok: false; error: LambdaErrorPayload; log?: string; errorLogged?: true };
/** What an invocation handed to an environment gets when the environment ended before starting it: it may run elsewhere. */
export const NOT_RUN = Symbol('not run');

/** What the pool needs of an execution environment, a worker thread (Node.js) or a process (Python). */
export interface ExecutionEnvironment {
  readonly alive: boolean;
  readonly logStreamName: string;
  /**
   * Runs the invocation after those already handed over (the pool gives a Python process one at a
   * time); `onStart` runs when its turn comes, and the timeout counts from then.
   */
  invoke(message: InvokeMessage, timeoutSeconds: number, onStart?: () => void): Promise<InvokeOutcome | typeof NOT_RUN>;
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
  initLimit: InitLimit;
}

/** How long loading the handler may take, and what an invocation waiting for it gets when it takes longer. */
export interface InitLimit {
  seconds: number;
  timedOut: Ending;
}

/**
 * Thrown by `start` when the handler cannot be loaded: the Lambda error of the init phase, and when
 * the environment ended in it (an exit), that error as an invocation waiting for it gets it, naming it.
 */
export class InitError extends Error {
  /** The lines the pool logged for the failed init (the error, INIT_REPORT): the start of the log tail of the invocations that waited for it. */
  initLog = '';
  /** When the invocations that waited for it began: the init's second try, in their invoke phase (pool.ts), which their Duration counts. */
  invokeBegan?: number;

  constructor(readonly payload: LambdaErrorPayload, readonly forRequest?: Ending) {
    super(`${payload.errorType}: ${payload.errorMessage}`);
    this.name = 'InitError';
  }
}

const WORKER_MAIN = new URL('./worker-main.js', import.meta.url);
/** How long an ending thread is given to collect the exit of the children it is ended with (spawned-children.ts). */
const REAP_WAIT_MS = 200;

/** What ended a thread or process, as the error of the invocation it was running (none: in its init phase). */
export type Ending = (requestId?: string) => LambdaErrorPayload;

/** A worker thread or a child process running worker-main.js, seen the same way by the instance. */
interface NodeHost {
  post(messages: InvokeMessage[]): void;
  kill(): void;
  /** Its stdout and stderr as the daemon receives them (piped to the function's log). */
  readonly output: Readable[];
  /** `onEnd` may be called more than once (a thread's error and then its exit); the first one counts. */
  listen(onMessage: (message: WorkerMessage) => void, onEnd: (ending: Ending) => void): void;
}

/**
 * A worker thread with the runtime started and no function loaded yet: starting a thread is most of
 * a cold start (about 30 ms here), so the pool starts one ahead of need and hands it its function
 * when an invocation needs a new environment. MemorySize bounds its JS heap (buffers outside it are
 * not counted); its console goes to the function's log.
 */
export class SpareThread {
  readonly worker: Worker;
  /** Bytes of output the thread has posted and the log has not written yet, shared with it (worker-main's postOutput). */
  readonly outputInFlight = new Int32Array(new SharedArrayBuffer(4));
  private exited = false;
  private stopped = false;
  private claimed = false;

  constructor(memorySizeMb: number, log: Writable) {
    this.worker = new Worker(WORKER_MAIN, {
      // A copy of its own, filled with the function's variables by its first message.
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: memorySizeMb },
      workerData: { outputInFlight: this.outputInFlight.buffer as SharedArrayBuffer } satisfies WorkerData,
      stdout: true,
      stderr: true,
    });
    this.worker.stdout.pipe(log, { end: false });
    this.worker.stderr.pipe(log, { end: false });
    this.worker.once('exit', () => { this.exited = true; });
    // An error ends the thread: 'exit' follows, and the pool starts a fresh one instead.
    this.worker.on('error', () => undefined);
  }

  get usable(): boolean {
    return !this.exited && !this.stopped;
  }

  /** Still waiting for a function: neither an environment's thread yet nor stopped. */
  get waiting(): boolean {
    return this.usable && !this.claimed;
  }

  /** It becomes an environment's thread. */
  claim(): void {
    this.claimed = true;
  }

  terminate(): void {
    this.stopped = true;
    void this.worker.terminate();
  }
}

/**
 * The spare threads of all functions together, at most `functions.maxSpareThreads`: each holds a V8
 * heap of its own (~5 MB of RSS), and every deploy of a Node.js function starts one, so without a
 * bound a deploy of ten functions held 51 MB of a 128 MB board for the idle timeout. At the
 * bound no spare is started: the next cold start of a function without one starts its own thread
 * (about 30 ms more of Init Duration), and nothing else changes.
 */
export class SpareThreads {
  private held: SpareThread[] = [];

  /** `fits`: whether functions.maxConcurrency leaves room for one more (concurrency.ts). */
  constructor(private readonly max: number, private readonly fits: () => boolean) {}

  /** A new spare thread, or undefined when `max` are waiting already or there is no room for it. */
  start(memorySizeMb: number, log: Writable): SpareThread | undefined {
    if (this.count() >= this.max || !this.fits()) return undefined;
    const thread = new SpareThread(memorySizeMb, log);
    this.held.push(thread);
    return thread;
  }

  /** Spare threads waiting for a function. */
  count(): number {
    this.held = this.held.filter((thread) => thread.waiting);
    return this.held.length;
  }

  /** Stops a waiting spare thread to make room for an environment; false when there is none. */
  stopOne(): boolean {
    const thread = this.held.find((spare) => spare.waiting);
    thread?.terminate();
    return thread !== undefined;
  }
}

/** The default: a worker thread (a spare if one is ready), cheap to start; it loads its function from the first message. */
function threadHost(options: WorkerOptions, spare: SpareThread): NodeHost {
  spare.claim();
  const { worker } = spare;
  const load: WorkerLoad = { init: options.init, env: options.env };
  worker.postMessage(load);
  const children = new SpawnedChildren();
  // Ended with the thread however it ends; by then every message it posted has been delivered.
  worker.once('exit', () => children.endAll(false));
  return {
    post: (messages) => postBatch(worker, messages),
    kill: () => {
      // First: a thread waiting in a synchronous spawn ends only once its child has.
      children.endAll(spare.usable);
      children.afterReaped(REAP_WAIT_MS, () => void worker.terminate());
    },
    listen: (onMessage, onEnd) => {
      worker.on('message', (message: unknown) => {
        if (!isWorkerMessage(message) || children.take(message)) return;
        if (message.type === 'output') {
          // handler code shares the port: what it posts in this shape may hold anything
          if (typeof message.output !== 'string' && !(message.output instanceof Uint8Array)) return;
          const size = outputBytes(message.output);
          const written = () => Atomics.sub(spare.outputInFlight, 0, size);
          // a log ended (the function removed) takes no more: written after its end, it would fail the daemon
          if (options.log.writableEnded || options.log.destroyed) written();
          else options.log.write(message.output, written);
        }
        onMessage(message);
      });
      worker.on('error', (error: Error & { code?: string }) => onEnd((requestId) =>
        error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? runtimeErrors.outOfMemory(requestId) : { errorType: error.name, errorMessage: error.message }));
      // what it wrote before it ended arrives after its exit at times: the log tail of the invocation it ended has it
      worker.on('exit', (code) => afterOutput([worker.stdout, worker.stderr], () => onEnd((requestId) => runtimeErrors.exited(requestId, code))));
    },
    output: [worker.stdout, worker.stderr],
  };
}

/** Invocations to a thread, as an InvokeBatch. */
function postBatch(worker: Worker, messages: InvokeMessage[]): void {
  const events: Array<{ index: number; bytes: Uint8Array }> = [];
  const transfer: ArrayBuffer[] = [];
  const withoutLarge = messages.map((message, index) => {
    if (message.event.length < TRANSFERRED_EVENT_CHARACTERS) return message;
    const bytes = new TextEncoder().encode(message.event);
    events.push({ index, bytes });
    transfer.push(bytes.buffer);
    return { ...message, event: '' };
  });
  if (events.length === 0) worker.postMessage(JSON.stringify(messages) satisfies InvokeBatch);
  else worker.postMessage({ invocations: JSON.stringify(withoutLarge), events } satisfies InvokeBatch, transfer);
}

/** A result's payload as a Buffer: bytes handed over by a thread are used where they are, not copied. */
function responseBytes(payload: string | Uint8Array): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/**
 * Handler code shares the channel (a thread's parentPort, a process's process.send): what it posts
 * that is no message of worker-main's shape (`postMessage(null)` ended the daemon) is ignored.
 */
function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string';
}

/** How often a process environment's resident memory is read (a Buffer loop grows ~75 MB in this time on a PC). */
const MEMORY_WATCH_MS = 100;

/**
 * `isolation: process`: a child process of its own (about 40 MB more than a thread), so native
 * addons, process-wide state and a crash stay out of the daemon; MemorySize is its V8 heap limit
 * and the bound of its resident memory.
 */
function processHost(options: WorkerOptions): NodeHost {
  const child = fork(fileURLToPath(WORKER_MAIN), [options.init.taskRoot, options.init.handler], {
    env: options.env,
    execArgv: [`--max-old-space-size=${options.memorySizeMb}`],
    cwd: options.init.taskRoot,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // A process group of its own, so that ending the environment ends what its handlers started too.
    detached: true,
  });
  // a spawn that failed (EMFILE: descriptors a thread function used up) has no pipes; its 'error' fails the init (listen)
  child.stdout?.pipe(options.log, { end: false });
  child.stderr?.pipe(options.log, { end: false });
  const heapExhausted = child.stderr ? watchForHeapExhaustion(child.stderr) : () => false;
  const output = [child.stdout, child.stderr].filter((stream) => stream !== null);
  // what a handler detached left the group: recorded apart, ended with it
  const detached = new SpawnedChildren();
  let groupKilled = false;
  const killGroup = () => {
    if (groupKilled) return;
    groupKilled = true;
    // with what a handler moved out of the group itself (setsid), while the process has not exited
    killEnvironmentProcess(child);
    detached.endAll(false);
  };
  // The environment is over however the child ended (a crash, process.exit, its memory limit): what it left running goes too.
  child.once('exit', killGroup);
  // --max-old-space-size bounds the V8 heap only: Buffers grew a process past 2 GB. As Lambda's limit
  // is the environment's whole memory, a process whose RSS passes MemorySize is ended (Runtime.OutOfMemory).
  // (a spawn that failed has no pid, and no 'exit' to stop a watch)
  let overMemory = false;
  const { pid } = child;
  if (pid !== undefined) {
    const memoryWatch = setInterval(() => {
      const rss = residentBytes(pid, 'VmRSS');
      if (rss === undefined || rss <= options.memorySizeMb * 1024 * 1024) return;
      overMemory = true;
      clearInterval(memoryWatch);
      killGroup();
    }, MEMORY_WATCH_MS).unref();
    child.once('exit', () => clearInterval(memoryWatch));
  }
  return {
    post: (messages) => { if (child.connected) child.send(messages); },
    kill: killGroup,
    listen: (onMessage, onEnd) => {
      const inLine = new AfterOutputRead(output);
      child.on('message', (message: unknown) => {
        if (!isWorkerMessage(message) || detached.take(message)) return;
        const { written, ...sent } = message as ProcessMessage;
        inLine.after(written, () => onMessage(sent as WorkerMessage));
      });
      child.on('error', (error) => onEnd(() => ({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `cannot start the process: ${error.message}` })));
      // V8 aborts the process when the heap limit is reached (a handler's process.abort() is an
      // exit like any other); the memory watch kills it past MemorySize.
      child.on('exit', (code, signal) => {
        const aborted = signal === 'SIGABRT';
        // its last words: V8's on an abort, the handler's before process.exit (the log tail has them)
        afterOutput(output, () => {
          inLine.releaseAll();
          onEnd((requestId) => ((aborted && heapExhausted()) || overMemory
            ? runtimeErrors.outOfMemory(requestId)
            : runtimeErrors.exited(requestId, signal ?? code ?? 0)));
        });
      });
    },
    output,
  };
}

/** What V8 writes as it aborts a process whose heap reached its limit ("FATAL ERROR: … JavaScript heap out of memory"). */
const HEAP_EXHAUSTED = 'JavaScript heap out of memory';

/** Whether `stderr` has said so yet (looked for across chunk boundaries, without keeping the output). */
function watchForHeapExhaustion(stderr: Readable): () => boolean {
  let said = false;
  let tail = '';
  stderr.on('data', (chunk: Buffer) => {
    if (said) return;
    const text = tail + chunk.toString('latin1');
    said = text.includes(HEAP_EXHAUSTED);
    tail = text.slice(-HEAP_EXHAUSTED.length);
  });
  return () => said;
}

/** How long an environment's last output may follow its exit (a child it started may hold the pipe open longer). */
const OUTPUT_AFTER_EXIT_MS = 200;

/** Runs `then` once every stream of `output` has ended (or failed), or OUTPUT_AFTER_EXIT_MS after this call at the latest. */
function afterOutput(output: Readable[], then: () => void): void {
  let open = output.length;
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    then();
  };
  const timer = setTimeout(once, OUTPUT_AFTER_EXIT_MS);
  for (const stream of output) finished(stream, () => { if (--open === 0) once(); });
  if (open === 0) once();
}

/** An invocation handed to an instance, waiting for its turn or running. */
interface Handed {
  message: InvokeMessage;
  timeoutSeconds: number;
  onStart?: () => void;
  resolve: (outcome: InvokeOutcome | typeof NOT_RUN) => void;
}

/**
 * One Node.js execution environment: a worker thread (or child process) with the function loaded.
 * It is handed invocations (several at once for asynchronous events: a thread gets them in one
 * message, a process one by one) and runs them one at a time, in order. Anything that ends it
 * (timeout, exit, crash, memory limit) answers the invocation running with that error, and those not
 * started yet with NOT_RUN; it is then dead, and the pool starts a fresh one next time.
 */
export class NodeWorkerInstance {
  alive = true;
  readonly logStreamName: string;
  /** The invocation running: `settle` gives its caller the outcome and lets the next one start. */
  private current: { requestId: string; deadline: number; timedOut: () => LambdaErrorPayload; settle: (outcome: InvokeOutcome) => void } | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private starting: { ready: () => void; fail: (error: LambdaErrorPayload, forRequest?: Ending) => void } | undefined;
  private readonly host: NodeHost;
  private peakMemoryBytes: number | undefined;
  private readonly memorySizeMb: number;
  /** Handed over, not started: the first starts when the current one ends. */
  private readonly line: Handed[] = [];
  /** Handed over in this microtask, posted together. */
  private outbox: InvokeMessage[] = [];
  /**
   * A process is posted each invocation as it starts, not the batch: its output comes on pipes, not
   * with its answers, and handed several it ran the next before the daemon had the answer of the one
   * before (its lines came before its START, with the other one's END and REPORT after them).
   */
  private readonly oneAtATime: boolean;
  /**
   * The running invocation's output as the daemon received it, its last TAIL_BYTES, when its caller
   * asked for the log tail: the tail of an invocation that ended its environment (a timeout, an
   * exit, a crash), whose own copy of its output (worker-main's) went with it.
   */
  private heard: string | undefined;
  /** The uncaught error the environment reported before it exits (worker-main's crash). */
  private fatal: LambdaErrorPayload | undefined;

  private constructor(options: WorkerOptions & { isolation: 'thread' | 'process' }, spare: SpareThread | undefined) {
    this.logStreamName = options.logStreamName;
    this.memorySizeMb = options.memorySizeMb;
    this.oneAtATime = options.isolation === 'process';
    this.host = options.isolation === 'process'
      ? processHost(options)
      : threadHost(options, spare?.usable ? spare : new SpareThread(options.memorySizeMb, options.log));
    this.host.listen((message) => this.onMessage(message), (ending) => this.onEnd(ending));
    for (const stream of this.host.output) stream.on('data', (chunk: Buffer) => this.hear(chunk));
  }

  /**
   * Starts an environment (on `spare`, a thread started ahead, when given and still alive) and resolves
   * once the handler is loaded; rejects with an InitError otherwise.
   */
  static start(options: WorkerOptions & { isolation: 'thread' | 'process' }, spare?: SpareThread): Promise<NodeWorkerInstance> {
    const instance = new NodeWorkerInstance(options, spare);
    return new Promise((resolve, reject) => {
      const { seconds, timedOut } = options.initLimit;
      const timer = setTimeout(() => instance.starting?.fail(timedOut(), timedOut), seconds * 1000);
      instance.starting = {
        ready: () => {
          clearTimeout(timer);
          instance.starting = undefined;
          resolve(instance);
        },
        fail: (payload, forRequest) => {
          clearTimeout(timer);
          instance.starting = undefined;
          instance.terminate();
          reject(new InitError(payload, forRequest));
        },
      };
    });
  }

  /** Hands over one invocation; the environment is ended if it does not answer within the timeout once started. */
  invoke(message: InvokeMessage, timeoutSeconds: number, onStart?: () => void): Promise<InvokeOutcome | typeof NOT_RUN> {
    return new Promise((resolve) => {
      if (!this.alive) return resolve(NOT_RUN);
      this.line.push({ message, timeoutSeconds, onStart, resolve });
      if (!this.oneAtATime && this.outbox.push(message) === 1) queueMicrotask(() => this.flush());
      if (!this.current) this.startNext();
    });
  }

  terminate(): void {
    this.ended();
    this.host.kill();
  }

  maxMemoryBytes(): number | undefined {
    return this.peakMemoryBytes;
  }

  private flush(): void {
    const messages = this.outbox;
    this.outbox = [];
    if (this.alive) this.host.post(messages);
  }

  /** The next invocation in line is now the one running (the environment runs it as soon as the last one ended). */
  private startNext(): void {
    const next = this.line.shift();
    if (!next) return;
    const { message, timeoutSeconds, onStart, resolve } = next;
    this.heard = message.tail ? '' : undefined;
    this.current = {
      requestId: message.requestId,
      deadline: performance.now() + message.timeoutMs,
      timedOut: () => runtimeErrors.timedOut(message.requestId, timeoutSeconds),
      settle: (outcome) => {
        resolve(outcome);
        this.current = undefined;
        if (this.alive) this.startNext();
        else for (const waiting of this.line.splice(0)) waiting.resolve(NOT_RUN);
      },
    };
    if (this.oneAtATime) this.host.post([message]);
    if (!this.deadlineTimer) this.watchDeadline(message.timeoutMs);
    // after the previous invocation's END and REPORT, which its caller writes once its promise settled
    // (a microtask queued before this one): one environment's log reads START … REPORT, START …
    if (onStart) queueMicrotask(onStart);
  }

  /**
   * One timer per environment, not one per invocation: when it fires it ends the invocation running
   * (or waiting for its event loop to empty after a callback) if that one is past its deadline, else
   * waits again until that deadline (an environment's invocations share their function's timeout, so
   * a later one's deadline is never earlier). A warm environment so creates a timer at most once per
   * timeout instead of a timer and a clear per invocation.
   */
  private watchDeadline(delayMs: number): void {
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      const running = this.current;
      if (!running || !this.alive) return;
      const left = running.deadline - performance.now();
      if (left > 0) return this.watchDeadline(left);
      this.terminate();
      this.settle(running.timedOut());
    }, delayMs).unref();
  }

  private hear(output: string | Uint8Array): void {
    if (this.heard !== undefined) this.heard = (this.heard + (typeof output === 'string' ? output : Buffer.from(output).toString('utf8'))).slice(-TAIL_BYTES);
  }

  private onMessage(message: WorkerMessage): void {
    if (message.type === 'output') return this.hear(message.output);
    if (message.type === 'result' || message.type === 'error') this.peakMemoryBytes = Math.max(this.peakMemoryBytes ?? 0, message.memoryBytes);
    if (this.starting) {
      if (message.type === 'ready') this.starting.ready();
      else if (message.type === 'init-error' || message.type === 'fatal') this.starting.fail(message.error);
    } else if ((message.type === 'result' || message.type === 'error') && message.requestId === this.current?.requestId) {
      this.current.settle(message.type === 'result' ? { ok: true, payload: responseBytes(message.payload), log: message.log } : { ok: false, error: message.error, log: message.log });
    } else if (message.type === 'fatal') {
      // The environment logged it itself, as Lambda's runtime logs an uncaught exception, and exits:
      // the invocation is settled then (onEnd), once what it printed is in, which comes another way
      // than this message (a process's pipe: the log tail lost the invocation's lines now and then)
      this.ended();
      this.fatal = message.error;
    }
  }

  private onEnd(ending: Ending): void {
    this.ended();
    if (this.starting) this.starting.fail(ending(), ending);
    else if (this.current && this.fatal) this.current.settle({ ok: false, error: this.fatal, errorLogged: true, ...this.heardLog() });
    else if (this.current) this.settle(ending(this.current.requestId));
    else for (const waiting of this.line.splice(0)) waiting.resolve(NOT_RUN);
  }

  private ended(): void {
    this.alive = false;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  private settle(error: LambdaErrorPayload): void {
    // ended at its limit: Lambda's REPORT of an out-of-memory end says the whole Memory Size was used
    if (error.errorType === 'Runtime.OutOfMemory') this.peakMemoryBytes = this.memorySizeMb * 1024 * 1024;
    this.current?.settle({ ok: false, error, ...this.heardLog() });
  }

  private heardLog(): { log?: string } {
    return this.heard === undefined ? {} : { log: this.heard };
  }
}
