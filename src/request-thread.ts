import { parentPort, Worker, type ResourceLimits } from 'node:worker_threads';

/** A thread nobody asked anything for this long ends: an idle gateway does not keep its ~6 MB. */
const IDLE_MS = 10_000;

/** What every reply carries: the request's id, and the error message when it failed. */
export interface ThreadReply {
  id: number;
  error?: string;
}

type Pending<Reply> = { resolve: (reply: Reply) => void; reject: (error: Error) => void };
/** A thread started and the requests sent to it not answered yet. */
type Running<Reply> = { worker: Worker; inFlight: Map<number, Pending<Reply>> };

/**
 * A worker thread answering requests (`answerRequests` in `main`), started on the first request and
 * ended when idle. Requests run one after another in the thread, in the order made; if the thread
 * dies, the requests in flight reject and the next request starts a new one. Several users may
 * share one (each thread is a V8 heap and a Node.js environment of its own, ~6 MB while it runs):
 * each adds what it needs told when the thread ends (`whenIdle`) or kept up for (`holdWhile`).
 */
export class RequestThread<Request extends object, Reply extends ThreadReply> {
  /**
   * The running thread and its requests not answered yet. A thread's requests are its own: one
   * that ended idle may exit after the next request started its successor, whose requests it must not fail.
   */
  private current: Running<Reply> | undefined;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Counts the threads started: state kept in one is not in the next. */
  generation = 0;

  private readonly idleListeners: Array<() => void> = [];
  private readonly holders: Array<() => boolean> = [];

  constructor(private readonly main: URL, private readonly resourceLimits: ResourceLimits) {}

  /** `listener` is called as the idle thread ends (what goes with it may go too). */
  whenIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  /** The thread is not ended, however long idle, while `holding` says it keeps state between requests that is still wanted. */
  holdWhile(holding: () => boolean): void {
    this.holders.push(holding);
  }

  /** `transfer`: memory handed over to the thread rather than copied (gone from here once sent). */
  request(request: Request, transfer: ArrayBuffer[] = []): Promise<Reply> {
    clearTimeout(this.idleTimer);
    const { worker, inFlight } = this.started();
    worker.ref();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      inFlight.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  }

  /** A request nobody waits for an answer to (the thread sends none). */
  tell(request: Request): void {
    this.current?.worker.postMessage({ ...request, id: 0 });
  }

  async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    const current = this.current;
    this.current = undefined;
    await current?.worker.terminate();
  }

  private started(): Running<Reply> {
    if (this.current) return this.current;
    const current: Running<Reply> = { worker: new Worker(this.main, { env: {}, resourceLimits: this.resourceLimits }), inFlight: new Map() };
    const { worker, inFlight } = current;
    worker.on('message', (reply: Reply) => {
      const pending = inFlight.get(reply.id);
      inFlight.delete(reply.id);
      if (inFlight.size === 0) this.idle(current);
      if (reply.error !== undefined) pending?.reject(new Error(reply.error));
      else pending?.resolve(reply);
    });
    const failAll = (error: Error) => {
      if (this.current === current) this.current = undefined;
      for (const pending of inFlight.values()) pending.reject(error);
      inFlight.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`worker thread ${this.main.pathname.split('/').pop()} exited (${code})`)));
    this.current = current;
    this.generation++;
    return current;
  }

  private idle(current: Running<Reply>): void {
    current.worker.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.current !== current || current.inFlight.size) return;
      if (this.holders.some((holding) => holding())) return this.idle(current);
      this.current = undefined;
      for (const listener of this.idleListeners) listener();
      void current.worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}

/**
 * In the worker thread: answers each request with what `handle` returns (and its id; `transfer`
 * names memory handed back rather than copied), or with the error it threw. Requests with id 0
 * (RequestThread.tell) get no answer.
 */
export function answerRequests<Request extends { id: number }>(handle: (request: Request) => { reply?: object; transfer?: ArrayBuffer[] } | void): void {
  parentPort?.on('message', (request: Request) => {
    try {
      const answer = handle(request);
      if (request.id !== 0) parentPort!.postMessage({ ...answer?.reply, id: request.id }, answer?.transfer ?? []);
    } catch (error) {
      if (request.id !== 0) parentPort!.postMessage({ id: request.id, error: (error as Error).message });
    }
  });
}
