// Runs inside a worker thread, or a child process with `isolation: process`: loads one function's
// handler and serves invocations one at a time, with the handler contract of AWS Lambda's Node.js
// runtime. Imported only by the worker or child itself.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, types } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { runtimeErrors, type LambdaErrorPayload } from '../errors.js';
import { collectAllGarbage } from '../../buffer-garbage.js';
import { nodeErrorJson } from './error-log.js';
import { trackChildProcesses } from './spawn-tracking.js';
import { MAX_RESPONSE_BYTES, outputBytes, TAIL_BYTES, TRANSFERRED_RESPONSE_BYTES, type InvokeBatch, type InvokeMessage, type ProcessMessage, type WorkerData, type WorkerInit, type WorkerLoad, type WorkerMessage } from './protocol.js';

type Handler = (event: unknown, context: unknown, callback: (error?: unknown, result?: unknown) => void) => unknown;
/**
 * How an invocation ended: the handler's value, or what it failed with; `waitsForEmptyLoop` when its
 * callback answered with context.callbackWaitsForEmptyEventLoop true.
 */
type Outcome = ({ ok: true; value: unknown } | { ok: false; error: unknown }) & { waitsForEmptyLoop?: boolean };

let currentRequestId: string | undefined;

/**
 * A child process gets its function as arguments and its variables from fork. A worker thread may be
 * a spare started before its function was known: its first message names the function and brings the
 * variables (the thread was started with an empty environment of its own).
 */
async function loadInit(): Promise<WorkerInit> {
  // Before the handler's module runs: what its top-level code starts ends with the environment too.
  if (!parentPort) {
    trackChildProcesses(post, 'process');
    return { taskRoot: process.argv[2], handler: process.argv[3] };
  }
  const { init, env } = await new Promise<WorkerLoad>((resolve) => parentPort!.once('message', resolve));
  Object.assign(process.env, env);
  trackChildProcesses(post, 'thread');
  return init;
}

/**
 * Sends a message to the daemon; `then` runs once it is handed over (a child's IPC send is
 * asynchronous). A thread hands `transfer`'s memory over with it.
 */
function post(message: WorkerMessage, then?: () => void, transfer?: ArrayBuffer): void {
  if (parentPort) {
    parentPort.postMessage(message, transfer ? [transfer] : undefined);
    then?.();
  } else {
    process.send!({ ...message, written: [...written] } satisfies ProcessMessage, undefined, {}, () => then?.());
  }
}

/** A thread gets its invocations as an InvokeBatch, a child process as objects over its IPC channel. */
function onInvoke(listener: (messages: InvokeMessage[]) => void): void {
  if (parentPort) parentPort.on('message', (batch: InvokeBatch) => listener(invocationsOf(batch)));
  else process.on('message', listener as (messages: unknown) => void);
}

function invocationsOf(batch: InvokeBatch): InvokeMessage[] {
  if (typeof batch === 'string') return JSON.parse(batch) as InvokeMessage[];
  const messages = JSON.parse(batch.invocations) as InvokeMessage[];
  const decoder = new TextDecoder();
  for (const { index, bytes } of batch.events) messages[index].event = decoder.decode(bytes);
  return messages;
}

/** Invocations handed over and not yet started: they run one after the other, in order. */
const line: InvokeMessage[] = [];
let serving = false;

/** Bytes of events taken and answers made since the last full collection (a thread's heap is part of the daemon's RSS). */
let droppedBytes = 0;
const COLLECT_AT_REST_BYTES = 1024 * 1024;

async function serveLine(handler: Handler): Promise<void> {
  serving = true;
  for (let message = line.shift(); message; message = line.shift()) await serve(handler, message);
  serving = false;
  if (droppedBytes < COLLECT_AT_REST_BYTES) return;
  droppedBytes = 0;
  // once this frame is gone too; an invocation handed over meanwhile runs first
  setImmediate(() => serving || collectAllGarbage());
}

// A child whose daemon is gone (even by kill -9) has no one to answer: it ends too.
if (!parentPort) process.on('disconnect', () => process.exit(0));

/**
 * The Node.js runtime's error shape: name, message and stack lines of an Error, or of a value that
 * looks like one (its name, message and stack strings, none empty); for anything else its typeof and
 * its toString() — `{ name, message }` without a stack answers `object` and `[object Object]`, as on
 * Lambda. What cannot be read so (an Error without a stack, an object without toString) is `handled`.
 */
function toErrorPayload(error: unknown): LambdaErrorPayload {
  try {
    if (types.isNativeError(error) || looksLikeError(error)) {
      const { name, message, stack } = error as Error;
      return { errorType: String(name), errorMessage: String(message), trace: stack!.split('\n') };
    }
    return { errorType: typeof error, errorMessage: (error as object).toString(), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack' };
  }
}

function looksLikeError(value: unknown): boolean {
  const { name, message, stack } = Object(value) as Record<string, unknown>;
  return [name, message, stack].every((field) => typeof field === 'string' && field !== '');
}

/** What the invocation being served wrote to stdout and stderr, when its caller asked for the log tail. */
let tail: string | undefined;

/**
 * Output of a worker thread posted to the daemon and not yet written to the function's log, at most:
 * a thread's output is a message, so a handler writing in a loop filled the daemon's heap with it
 * (45 MiB of it ended the daemon). What comes beyond is dropped, and the log says how much.
 * A child process's pipe makes its writer wait instead.
 */
const MAX_OUTPUT_IN_FLIGHT_BYTES = 1024 * 1024;
/** A thread's bytes of output in flight, shared with the daemon, which takes away what it has written. */
const outputInFlight = parentPort ? new Int32Array((workerData as WorkerData).outputInFlight) : undefined;
let droppedOutput = 0;
/** A child process's bytes written through process.stdout and process.stderr, sent with each of its messages (ProcessMessage). */
const written = [0, 0];

/**
 * Keeps a copy of stdout and stderr writes while `tail` is on (the end of it: Lambda returns the
 * last 4 KB). A thread posts its output on the port of its answers, so that the daemon has it in
 * the order written: on the port of its stdout, apart, an invocation's last lines came after its
 * answer (and the END and REPORT lines it brings), and the next invocation of a batch, started at
 * once, had its lines in the log before them.
 */
function captureOutput(): void {
  for (const [index, stream] of [process.stdout, process.stderr].entries()) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (tail !== undefined) tail = (tail + (typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'))).slice(-TAIL_BYTES);
      const encoding = typeof rest[0] === 'string' ? rest[0] as BufferEncoding : 'utf8';
      if (!outputInFlight) {
        // counted once taken: a write that throws (not text nor bytes) never reaches the pipe
        const taken = write(chunk, ...rest);
        written[index] += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : (chunk as Uint8Array).byteLength;
        return taken;
      }
      const callback = rest.find((arg) => typeof arg === 'function') as ((error?: Error | null) => void) | undefined;
      const output = typeof chunk === 'string' && /^utf-?8$/i.test(encoding) ? chunk
        // a copy of its own, whose memory goes with the message
        : new Uint8Array(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk as Uint8Array);
      const posted = postOutput(output);
      if (callback) process.nextTick(callback);
      return posted;
    }) as typeof stream.write;
  }
}

/** Posts a thread's output, unless it would pass MAX_OUTPUT_IN_FLIGHT_BYTES (`bounded`): then it is dropped and counted. */
function postOutput(output: string | Uint8Array, bounded = true): boolean {
  const size = outputBytes(output);
  if (size === 0) return true;
  if (bounded && Atomics.load(outputInFlight!, 0) + size > MAX_OUTPUT_IN_FLIGHT_BYTES) {
    droppedOutput += size;
    return false;
  }
  Atomics.add(outputInFlight!, 0, size);
  post({ type: 'output', output }, undefined, typeof output === 'string' ? undefined : output.buffer as ArrayBuffer);
  return true;
}

/** Says in the log how much output a thread dropped since it last said so, before the answer that follows. */
function tellDroppedOutput(): void {
  if (droppedOutput === 0) return;
  const said = `[outpost] ${droppedOutput} bytes of output dropped: written faster than the log takes them (more than ${MAX_OUTPUT_IN_FLIGHT_BYTES} bytes waiting)\n`;
  droppedOutput = 0;
  postOutput(said, false);
}

/** console.* as Lambda writes it: `timestamp<TAB>requestId<TAB>LEVEL<TAB>message`, into the function's log. */
function patchConsole(): void {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE', fatal: 'FATAL' } as const;
  for (const [method, level] of Object.entries(levels)) {
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const line = format(...args).replaceAll('\n', '\r');
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId ?? 'undefined'}\t${level}\t${line}\n`);
    };
  }
}

/**
 * An error of Lambda's Node.js runtime loader (Runtime.ImportModuleError, …): its stack, and so the
 * trace of the init error, starts with that name, as the runtime's do.
 */
function loaderError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  Error.captureStackTrace(error, loaderError);
  return error;
}

/**
 * `index.handler` → file `index.{js,mjs,cjs}` in the task root, export `handler` (dots after the
 * module name nest). Failures are the Lambda Node.js runtime's: a handler name without a dot or with
 * `..`, a missing file or a `require` of a missing module (Node's MODULE_NOT_FOUND, not an ES
 * import's ERR_MODULE_NOT_FOUND, which stays as it is), a syntax error, no such export.
 */
async function loadHandler(init: WorkerInit): Promise<Handler> {
  if (init.handler.includes('..')) {
    throw loaderError('Runtime.MalformedHandlerName', `'${init.handler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const slash = init.handler.lastIndexOf('/');
  const dot = init.handler.indexOf('.', slash + 1);
  if (dot < 0) throw loaderError('Runtime.MalformedHandlerName', 'Bad handler');
  const modulePath = init.handler.slice(0, dot);
  const file = handlerFile(init.taskRoot, modulePath);
  if (!file) throw loaderError('Runtime.ImportModuleError', `Error: Cannot find module '${modulePath}'`);
  let namespace: Record<string, unknown>;
  try {
    // import() loads ESM and CommonJS alike; a CJS module's exports are also its default export.
    namespace = await import(pathToFileURL(file).href) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof SyntaxError) throw loaderError('Runtime.UserCodeSyntaxError', `${error.name}: ${error.message}`);
    if ((error as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND') throw loaderError('Runtime.ImportModuleError', String(error));
    throw error;
  }
  const path = init.handler.slice(dot + 1).split('.');
  const found = resolvePath(namespace, path) ?? resolvePath(namespace.default, path);
  if (!found) throw loaderError('Runtime.HandlerNotFound', `${init.handler} is undefined or not exported`);
  if (typeof found !== 'function') throw loaderError('Runtime.HandlerNotFound', `${init.handler} is not a function`);
  return found as Handler;
}

/**
 * The file of a handler's module, looked for as Lambda's Node.js runtime does: the name as it is,
 * then with .js, .mjs, .cjs, then as `require` resolves it from the task root (a package of its
 * node_modules).
 */
function handlerFile(taskRoot: string, modulePath: string): string | undefined {
  const isFile = (candidate: string) => statSync(candidate, { throwIfNoEntry: false })?.isFile() === true;
  const found = ['', '.js', '.mjs', '.cjs'].map((ext) => join(taskRoot, modulePath + ext)).find(isFile);
  if (found) return found;
  try {
    const resolved = createRequire(join(taskRoot, 'index.js')).resolve(modulePath);
    // a built-in module's name (fs, http) resolves to itself: not the function's
    return isAbsolute(resolved) ? resolved : undefined;
  } catch {
    return undefined;
  }
}

function resolvePath(root: unknown, path: string[]): unknown {
  let value = root;
  for (const key of path) value = value == null ? undefined : (value as Record<string, unknown>)[key];
  return value;
}

/** The connection to the daemon: it keeps the event loop alive while the environment waits for invocations. */
const channel = parentPort ?? process.channel!;

/** What the invocations waiting for the event loop to run dry do then (an environment may serve several at once). */
const waitingForEmptyLoop = new Set<() => void>();
process.on('beforeExit', () => {
  for (const onEmpty of [...waitingForEmptyLoop]) onEmpty();
});

/**
 * Calls `onEmpty` once nothing but the connection to the daemon keeps the event loop alive: the
 * connection is unref'd while any invocation waits, so that Node emits 'beforeExit' when the loop
 * runs dry (in a worker thread as in a process). The returned function cancels the wait; the
 * connection is ref'd again once none waits (ref and unref do not count).
 */
function whenLoopEmpty(onEmpty: () => void): () => void {
  const waiter = () => {
    cancel();
    onEmpty();
  };
  const cancel = () => {
    if (waitingForEmptyLoop.delete(waiter) && waitingForEmptyLoop.size === 0) channel.ref();
  };
  if (waitingForEmptyLoop.size === 0) channel.unref();
  waitingForEmptyLoop.add(waiter);
  return cancel;
}

/**
 * Runs the handler the way Lambda does: the first of a returned promise, the callback, or
 * context.succeed/fail/done settles the invocation; later ones are ignored. Once the event loop is
 * empty before any of them, the invocation answers null, as Lambda's runtime does (its 'beforeExit'
 * listener): a handler that returned no promise and never called back (what it returned is
 * ignored), or one whose promise nothing is left to settle. Only a callback's answer (not its
 * error) honours callbackWaitsForEmptyEventLoop, read when it is called: context.succeed/fail/done
 * and a promise take the next event at once, as Lambda's do.
 */
function runHandler(handler: Handler, message: InvokeMessage, deadline: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let stopWaiting: (() => void) | undefined;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      stopWaiting?.();
      resolve(outcome);
    };
    const succeed = (value: unknown) => settle({ ok: true, value });
    // Lambda's runtime reports a failure given no reason (context.fail(), a promise rejected with nothing) as the string 'handled'.
    const fail = (error: unknown) => settle({ ok: false, error: error ?? 'handled' });
    const done = (error?: unknown, value?: unknown) => (error != null ? fail(error) : succeed(value));
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      ...message.context,
      awsRequestId: message.requestId,
      identity: undefined,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      succeed, fail, done,
    };
    // Lambda's runtime takes the next event at once after a callback's error, as after context.fail.
    const callback = (error?: unknown, value?: unknown) => (error != null
      ? fail(error)
      : settle({ ok: true, value, waitsForEmptyLoop: context.callbackWaitsForEmptyEventLoop !== false }));
    try {
      const returned = handler(JSON.parse(message.event), context, callback);
      if (returned && typeof (returned as Promise<unknown>).then === 'function') (returned as Promise<unknown>).then(succeed, fail);
      if (!settled) stopWaiting = whenLoopEmpty(() => succeed(null));
    } catch (error) {
      fail(error);
    }
  });
}

/** What the environment uses, for REPORT's Max Memory Used: a thread's own heaps, a process's resident set. */
function memoryBytes(): number {
  if (!parentPort) return process.memoryUsage.rss();
  const { total_heap_size: heap, external_memory: external } = getHeapStatistics();
  return heap + external;
}

async function serve(handler: Handler, message: InvokeMessage): Promise<void> {
  droppedBytes += message.event.length;
  currentRequestId = message.requestId;
  // As Lambda's Node.js runtime sets it for each invocation (the X-Ray SDK reads it).
  process.env._X_AMZN_TRACE_ID = message.traceId;
  tail = message.tail ? '' : undefined;
  // The daemon's timer for this invocation starts when it learns the previous one ended: a little later than this.
  const outcome = await runHandler(handler, message, Date.now() + message.timeoutMs);
  // Lambda's runtime posts a callback's answer only once the event loop is empty (and then in a
  // setImmediate); the daemon ends the environment, answering a timeout, if that is past the deadline.
  if (outcome.waitsForEmptyLoop) await new Promise<void>((resolve) => whenLoopEmpty(() => setImmediate(resolve)));
  tellDroppedOutput();
  answer(message, outcome);
}

/** Posts the invocation's answer: its result, or its error. */
function answer(message: InvokeMessage, outcome: Outcome): void {
  if (!outcome.ok) {
    post({ type: 'error', requestId: message.requestId, error: toErrorPayload(outcome.error), memoryBytes: memoryBytes(), ...takeTail() });
    return;
  }
  let payload: string;
  try {
    // Lambda answers `undefined` with null.
    payload = JSON.stringify(outcome.value) ?? 'null';
  } catch {
    // Lambda's Node.js runtime: a plain Error, with no word of the cause (a cycle, a BigInt)
    post({ type: 'error', requestId: message.requestId, error: toErrorPayload(new Error('Unable to stringify response body')), memoryBytes: memoryBytes(), ...takeTail() });
    return;
  }
  // checked here: posted, a 20 MB answer would be copied into the daemon's heap before it could be refused
  const size = Buffer.byteLength(payload);
  droppedBytes += size;
  if (size > MAX_RESPONSE_BYTES) {
    post({ type: 'error', requestId: message.requestId, error: runtimeErrors.responseTooLarge(size, MAX_RESPONSE_BYTES), memoryBytes: memoryBytes(), ...takeTail() });
    return;
  }
  if (!parentPort || size < TRANSFERRED_RESPONSE_BYTES) {
    post({ type: 'result', requestId: message.requestId, payload, memoryBytes: memoryBytes(), ...takeTail() });
    return;
  }
  // A string posted is serialized here and made a string again in the daemon's heap, which the
  // daemon then copies into bytes to send: four copies of up to 6 MB, for each environment
  // answering at once. Encoded once, the bytes themselves go, and are what the daemon sends.
  const bytes = new TextEncoder().encode(payload);
  post({ type: 'result', requestId: message.requestId, payload: bytes, memoryBytes: memoryBytes(), ...takeTail() }, undefined, bytes.buffer);
}

function takeTail(): { log?: string } {
  const log = tail;
  tail = undefined;
  return log === undefined ? {} : { log };
}

// An error nobody awaits ends the environment, as on Lambda; the parent answers the invocation with it.
process.on('uncaughtException', (error) => crash('Uncaught Exception', toErrorPayload(error), 129));
process.on('unhandledRejection', (reason) => {
  crash('Unhandled Promise Rejection', { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: rejectionMessage(reason), trace: toErrorPayload(reason).trace ?? [] }, 128);
});

/** As Lambda's runtime words an unhandled rejection: the reason's text (`Error: message`), empty for none. */
function rejectionMessage(reason: unknown): string {
  try {
    return reason == null ? '' : String(reason);
  } catch {
    return toErrorPayload(reason).errorMessage;
  }
}

/**
 * Logs the error as Lambda's runtime does (`Uncaught Exception` or `Unhandled Promise Rejection` and
 * the error, under the invocation's request id; in the init phase the daemon logs it), hands it to
 * the daemon and exits.
 */
function crash(label: string, error: LambdaErrorPayload, exitCode: number): void {
  if (currentRequestId !== undefined) process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\tERROR\t${label} \t${nodeErrorJson(error)}\n`);
  tellDroppedOutput();
  post({ type: 'fatal', error }, () => process.exit(exitCode));
}

captureOutput();
patchConsole();
try {
  const handler = await loadHandler(await loadInit());
  onInvoke((messages) => {
    line.push(...messages);
    if (!serving) void serveLine(handler);
  });
  post({ type: 'ready' });
} catch (error) {
  // What the module printed before it failed goes to the log before the daemon's INIT_REPORT.
  tellDroppedOutput();
  post({ type: 'init-error', error: toErrorPayload(error) });
}
