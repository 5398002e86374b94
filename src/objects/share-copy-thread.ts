import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { CopyJob, CopyResult, ShareCopyReply, ShareCopyRequest } from './share-copy-worker.js';

const WORKER_MAIN = new URL('./share-copy-worker.js', import.meta.url);

/** A thread nobody asked anything for this long ends: an idle gateway does not keep its ~3 MB. */
const IDLE_MS = 10_000;

type Pending = { resolve: (reply: ShareCopyReply) => void; reject: (error: Error) => void };

/**
 * The share copies' worker thread (share-copy-worker.ts), started on the first request and ended
 * when idle. Requests run one after another in the thread, in the order made; if the thread dies,
 * the requests in flight reject and the next request starts a new one.
 */
export class ShareCopyThread {
  private worker: Worker | undefined;
  private readonly inFlight = new Map<number, Pending>();
  private readonly syncfs = new Syncfs();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;

  /** Writes the copies, in order; one result per job. The jobs' contents are handed over: empty here afterwards. */
  async copy(jobs: CopyJob[]): Promise<CopyResult[]> {
    for (const job of jobs) job.content = ownMemory(job.content);
    return (await this.request({ id: this.nextId++, kind: 'copy', jobs }, jobs.map((job) => job.content.buffer as ArrayBuffer))).results!;
  }

  /** Makes the copies at `paths` durable: one syncfs of `root`'s filesystem, else an fdatasync each. */
  async sync(root: string, paths: string[]): Promise<void> {
    if (await this.syncfs.sync(root)) return;
    await this.request({ id: this.nextId++, kind: 'sync', paths });
  }

  async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.syncfs.stop();
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  /** `transfer`: memory handed over to the thread rather than copied (gone from here once sent). */
  private request(request: ShareCopyRequest, transfer: ArrayBuffer[] = []): Promise<ShareCopyReply> {
    clearTimeout(this.idleTimer);
    const worker = this.started();
    worker.ref();
    return new Promise<ShareCopyReply>((resolve, reject) => {
      this.inFlight.set(request.id, { resolve, reject });
      worker.postMessage(request, transfer);
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_MAIN, { env: {}, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 } });
    worker.on('message', (reply: ShareCopyReply) => {
      const pending = this.inFlight.get(reply.id);
      this.inFlight.delete(reply.id);
      if (this.inFlight.size === 0) this.idle(worker);
      if (reply.error !== undefined) pending?.reject(new Error(reply.error));
      else pending?.resolve(reply);
    });
    const failAll = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const pending of this.inFlight.values()) pending.reject(error);
      this.inFlight.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`the share copy thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private idle(worker: Worker): void {
    worker.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker !== worker || this.inFlight.size) return;
      this.worker = undefined;
      this.syncfs.stop();
      void worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}

/**
 * The content in memory of its own, which can be handed to the thread without a copy: a Buffer
 * that shares its memory with others (Node's pool of small buffers) is copied out first, as
 * handing over the shared memory would take it from them too.
 */
function ownMemory(content: Uint8Array): Uint8Array {
  return content.byteOffset === 0 && content.byteLength === content.buffer.byteLength ? content : new Uint8Array(content);
}

/**
 * syncfs(2) of a filesystem by `sync -f DIR` (coreutils ≥ 8.24, BusyBox ≥ 1.26), run by a small
 * shell that stays up: forking the daemon itself for every sync would cost ~10 ms of CPU (its page
 * tables), forking the shell costs little. Resolves false when it cannot be had (no shell, an old
 * `sync`), and from then on at once: the caller syncs file by file instead.
 */
class Syncfs {
  private shell: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private usable = true;
  private readonly waiting: Array<(status: string | undefined) => void> = [];

  async sync(dir: string): Promise<boolean> {
    if (!this.usable) return false;
    const shell = this.started();
    const status = await new Promise<string | undefined>((resolve) => {
      this.waiting.push(resolve);
      shell.stdin.write(`${dir}\n`);
    });
    if (status === '0') return true;
    this.usable = false;
    this.stop();
    return false;
  }

  stop(): void {
    this.shell?.stdin.end();
    this.shell = undefined;
  }

  private started(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.shell) return this.shell;
    const shell = spawn('sh', ['-c', 'while read -r dir; do sync -f "$dir" 2>/dev/null; echo $?; done'], { stdio: ['pipe', 'pipe', 'ignore'] });
    createInterface({ input: shell.stdout }).on('line', (status) => this.waiting.shift()?.(status));
    const failed = () => {
      if (this.shell === shell) this.shell = undefined;
      this.usable = false;
      for (const resolve of this.waiting.splice(0)) resolve(undefined);
    };
    shell.on('error', failed);
    shell.stdin.on('error', failed);
    shell.on('exit', () => {
      // an exit nobody asked for (stop() forgets the shell first)
      if (this.shell === shell) failed();
    });
    this.shell = shell;
    return shell;
  }
}
