import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../../node-http.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeErrors, type LambdaErrorPayload } from '../errors.js';
import { InitError, NOT_RUN, type Ending, type InvokeOutcome, type WorkerOptions } from './node-worker.js';
import { MAX_RESPONSE_BYTES, TAIL_BYTES, type InvokeMessage } from './protocol.js';
import { killEnvironmentProcess, residentBytes } from './process-group.js';
import { AfterOutputRead, writtenFromHeader } from './after-output-read.js';
import { socketDirPrefix } from './socket-dirs.js';

/** The bundled bootstrap (copied next to this file into dist by `npm run build`). */
export const PYTHON_RUNTIME_DIR = fileURLToPath(new URL('./python/', import.meta.url));
const BOOTSTRAP = `${PYTHON_RUNTIME_DIR}bootstrap.py`;
const API = '/2018-06-01/runtime';

export interface PythonOptions extends WorkerOptions {
  pythonPath: string;
}

interface Pending {
  message: InvokeMessage;
  /** Epoch milliseconds: Lambda-Runtime-Deadline-Ms. */
  deadline: number;
  /** With `message.tail`: the process's output read while the invocation runs (its end). */
  log?: string;
  /** Handed to the runtime by invocation/next. */
  sent: boolean;
  settle: (outcome: InvokeOutcome) => void;
}

/**
 * One Python execution environment: a child process running the bundled bootstrap, which talks
 * to this instance's Lambda Runtime API on a Unix socket of its own, in a directory only the
 * daemon's user can enter (a loopback port would let any local user take or answer events);
 * `AWS_LAMBDA_RUNTIME_API` is `unix:PATH`. The process serves one
 * invocation at a time; a timeout kills it, and any exit answers the invocation in flight and
 * marks the instance dead, so the pool starts a fresh one next time.
 */
export class PythonInstance {
  alive = true;
  /** The peak resident set read as the environment was ended (maxMemoryBytes). */
  private peakAtEnd: number | undefined;
  readonly logStreamName: string;
  private current: Pending | undefined;
  /** A GET invocation/next held until there is an event. */
  private waiting: ServerResponse | undefined;
  private child: ChildProcess | undefined;
  /** The bootstrap's answers in line with its output (each says how much it wrote before it). */
  private outputRead: AfterOutputRead | undefined;
  /** The process running the handler (the bootstrap's Outpost-Runtime-Pid), below the one started. */
  private runtimePid: number | undefined;
  private starting: { ready: () => void; fail: (payload: LambdaErrorPayload, forRequest?: Ending) => void } | undefined;

  private constructor(options: PythonOptions, private readonly server: Server, private readonly socketDir: string) {
    this.logStreamName = options.logStreamName;
  }

  /** Starts the process and resolves once the handler is loaded (the first invocation/next); rejects with an InitError otherwise. */
  static async start(options: PythonOptions): Promise<PythonInstance> {
    if (!existsSync(BOOTSTRAP)) throw new InitError({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `the Python bootstrap is missing: ${BOOTSTRAP}` });
    // The bootstrap's one connection is idle while its handler runs, for up to the function's
    // Timeout: Node's default keep-alive timeout (5 s) would close it under a longer handler.
    const server = http.createServer({ keepAliveTimeout: 0 });
    // The bootstrap needs one (and a second while it replaces it); a handler that opened dozens, each
    // posting a 6 MB result, held them all in the daemon's memory (30: RSS 265 MB).
    server.maxConnections = 2;
    // mkdtemp makes the directory 0700.
    const socketDir = await mkdtemp(socketDirPrefix());
    const socket = join(socketDir, 'runtime-api.sock');
    const instance = new PythonInstance(options, server, socketDir);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => instance.serve(request, response));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => resolve());
      });
    } catch (error) {
      instance.terminate();
      throw new InitError({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `cannot serve the Runtime API: ${(error as Error).message}` });
    }
    return new Promise((resolve, reject) => {
      const { seconds, timedOut } = options.initLimit;
      const timer = setTimeout(() => fail(timedOut(), timedOut), seconds * 1000);
      const fail = (payload: LambdaErrorPayload, forRequest?: Ending) => {
        clearTimeout(timer);
        instance.starting = undefined;
        instance.terminate();
        reject(new InitError(payload, forRequest));
      };
      instance.starting = {
        ready: () => {
          clearTimeout(timer);
          instance.starting = undefined;
          resolve(instance);
        },
        fail,
      };
      const child = spawn(options.pythonPath, ['-u', BOOTSTRAP], {
        // A process group of its own, so that ending the environment ends what its handlers started too.
        detached: true,
        cwd: options.init.taskRoot,
        env: { ...options.env, AWS_LAMBDA_RUNTIME_API: `unix:${socket}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      instance.child = child;
      instance.outputRead = new AfterOutputRead([child.stdout, child.stderr].filter((stream) => stream !== null));
      // a spawn that failed (EMFILE: descriptors a thread function used up) has no pipes; its 'error' below fails the init
      child.stdout?.pipe(options.log, { end: false });
      child.stderr?.pipe(options.log, { end: false });
      // X-Amz-Log-Type: Tail: what the process wrote while the invocation ran, as far as read before its answer.
      const keepTail = (chunk: Buffer) => {
        const current = instance.current;
        if (current?.log !== undefined) current.log = (current.log + chunk.toString('utf8')).slice(-TAIL_BYTES);
      };
      child.stdout?.on('data', keepTail);
      child.stderr?.on('data', keepTail);
      child.once('error', (error) => instance.ended({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `cannot start ${options.pythonPath}: ${error.message}` }));
      child.once('exit', (code, signal) => {
        // an answer it gave before it ended counts
        instance.outputRead?.releaseAll();
        const ending: Ending = (requestId) => runtimeErrors.exited(requestId, signal ?? code ?? 0);
        instance.ended(ending(instance.current?.message.requestId), ending);
      });
    });
  }

  /** Runs one invocation (one at a time: `onStart` runs at once); the process is killed if it does not answer by its deadline. */
  invoke(message: InvokeMessage, timeoutSeconds: number, onStart?: () => void): Promise<InvokeOutcome | typeof NOT_RUN> {
    // gone since it was handed the event: another instance runs it
    if (!this.alive) return Promise.resolve(NOT_RUN);
    onStart?.();
    return new Promise((resolve) => {
      const deadline = Date.now() + message.timeoutMs;
      const timer = setTimeout(() => {
        this.current?.settle({ ok: false, error: runtimeErrors.timedOut(message.requestId, timeoutSeconds) });
        this.terminate();
      }, message.timeoutMs);
      this.current = {
        message,
        deadline,
        sent: false,
        ...(message.tail ? { log: '' } : {}),
        settle: (outcome) => {
          clearTimeout(timer);
          const { log } = this.current ?? {};
          this.current = undefined;
          resolve(log === undefined ? outcome : { ...outcome, log });
        },
      };
      this.deliver();
    });
  }

  /** The process's peak resident set (VmHWM), as Lambda measures Max Memory Used. */
  maxMemoryBytes(): number | undefined {
    const pid = this.runtimePid ?? this.child?.pid;
    if (pid === undefined || !this.alive) return this.peakAtEnd;
    return residentBytes(pid, 'VmHWM');
  }

  terminate(): void {
    // read before the kill: the REPORT of an invocation that timed out has its Max Memory Used too
    if (this.alive) this.peakAtEnd = this.maxMemoryBytes();
    this.alive = false;
    this.killGroup();
    this.waiting?.destroy();
    this.waiting = undefined;
    this.server.close();
    this.server.closeAllConnections();
    rmSync(this.socketDir, { recursive: true, force: true });
  }

  /**
   * The environment's processes, once: the bootstrap's first process and all below it (a child
   * subreaper, it adopts what is orphaned there); once it has exited, its group (what else was
   * below it, it ended itself: bootstrap.py).
   */
  private killGroup(): void {
    const child = this.child;
    this.child = undefined;
    if (child) killEnvironmentProcess(child);
  }

  /** The process is gone (or could not start): fails the init or the invocation in flight. */
  private ended(error: LambdaErrorPayload, forRequest?: Ending): void {
    this.terminate();
    if (this.starting) this.starting.fail(error, forRequest);
    else this.current?.settle({ ok: false, error });
  }

  /** Answers a held invocation/next with the current event. */
  private deliver(): void {
    const current = this.current;
    const response = this.waiting;
    if (!current || current.sent || !response) return;
    this.waiting = undefined;
    current.sent = true;
    const { message } = current;
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': message.requestId,
      'Lambda-Runtime-Deadline-Ms': String(current.deadline),
      'Lambda-Runtime-Invoked-Function-Arn': message.context.invokedFunctionArn,
      'Lambda-Runtime-Trace-Id': message.traceId,
    };
    if (message.context.clientContext !== undefined) headers['Lambda-Runtime-Client-Context'] = asciiJson(message.context.clientContext);
    response.writeHead(200, headers).end(message.event);
  }

  private serve(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '').split('?')[0];
    if (request.method === 'GET' && path === `${API}/invocation/next`) {
      if (this.waiting) return void answer(response, 400, 'InvalidStateTransition', 'invocation/next is already pending');
      this.runtimePid ??= runtimePid(request.headers['outpost-runtime-pid']);
      this.waiting = response;
      response.on('close', () => { if (this.waiting === response) this.waiting = undefined; });
      this.starting?.ready();
      this.deliver();
      return;
    }
    const invocation = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(path);
    const initError = path === `${API}/init/error`;
    if (request.method !== 'POST' || (!invocation && !initError)) return void answer(response, 404, 'NotFound', `no route ${request.method} ${path}`);
    const written = writtenFromHeader(request.headers['outpost-output-written']);
    const afterOutput = (run: () => void) => (this.outputRead ? this.outputRead.after(written, run) : run());
    readBody(request).then(({ size, body }) => {
      if (body === undefined) {
        answer(response, 413, 'RequestEntityTooLarge', `payload larger than ${MAX_RESPONSE_BYTES} bytes`);
        if (invocation && this.current?.message.requestId === invocation[1]) {
          this.current.settle({ ok: false, error: runtimeErrors.responseTooLarge(size, MAX_RESPONSE_BYTES) });
        }
        return;
      }
      if (initError) {
        if (!this.starting) return void answer(response, 403, 'InvalidStateTransition', 'the environment is already initialized');
        answer(response, 202);
        const payload = errorPayload(body, request.headers['lambda-runtime-function-error-type']);
        // what the module printed before it failed goes to the log before INIT_REPORT
        afterOutput(() => this.starting?.fail(payload));
        return;
      }
      const [, requestId, kind] = invocation!;
      if (!this.current?.sent || this.current.message.requestId !== requestId) return void answer(response, 400, 'InvalidRequestID', `unknown request id ${requestId}`);
      answer(response, 202);
      const current = this.current;
      const outcome: InvokeOutcome = kind === 'response'
        ? { ok: true, payload: body.length > 0 ? body : Buffer.from('null') }
        : { ok: false, error: errorPayload(body, request.headers['lambda-runtime-function-error-type']) };
      // What the process printed before answering comes on its pipes: into the log tail, and into
      // the log before the END line the answer brings.
      afterOutput(() => current.settle(outcome));
    }, () => response.destroy());
  }
}

function runtimePid(header: string | string[] | undefined): number | undefined {
  return typeof header === 'string' && /^\d{1,10}$/.test(header) ? Number(header) : undefined;
}

/** The runtime's error document; anything unreadable becomes Runtime.Unknown with the header's type. */
function errorPayload(body: Buffer, typeHeader: string | string[] | undefined): LambdaErrorPayload {
  const fallbackType = typeof typeHeader === 'string' && typeHeader ? typeHeader : 'Runtime.Unknown';
  try {
    const document = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (document && typeof document === 'object') {
      const payload: LambdaErrorPayload = {
        errorType: typeof document.errorType === 'string' ? document.errorType : fallbackType,
        errorMessage: typeof document.errorMessage === 'string' ? document.errorMessage : '',
      };
      if (typeof document.requestId === 'string') payload.requestId = document.requestId;
      if (Array.isArray(document.stackTrace)) payload.stackTrace = document.stackTrace.map(String);
      return payload;
    }
  } catch {
    // fall through
  }
  return { errorType: fallbackType, errorMessage: body.toString('utf8').slice(0, 1000) };
}

/**
 * JSON a header can carry: Node refuses a header value with characters past Latin-1 or controls
 * (ERR_INVALID_CHAR), and an MQTT topic in the client context (`sensors/温度`) may hold either.
 * Escaped as \uXXXX, the JSON reads back the same.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function answer(response: ServerResponse, status: number, errorType?: string, errorMessage?: string): void {
  const body = errorType ? { errorMessage, errorType } : { status: 'OK' };
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * The request body and its size; no body when it is larger than MAX_RESPONSE_BYTES: such a one is read
 * to its end, not kept, so that the error tells its size as Lambda's does.
 */
function readBody(request: IncomingMessage): Promise<{ size: number; body?: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
      else chunks.length = 0;
    });
    request.on('end', () => resolve(size > MAX_RESPONSE_BYTES ? { size } : { size, body: Buffer.concat(chunks) }));
    request.on('error', reject);
  });
}
