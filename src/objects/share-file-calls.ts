import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { ObjectsThread } from './objects-thread.js';
import type { CopyJob, CopyResult } from './share-copy-worker.js';

/**
 * The share copies' file system calls, made in the objects thread (share-copy-worker.ts), and the
 * shell that syncs the share's filesystem (which goes when the thread does).
 */
export class ShareFileCalls {
  private readonly syncfs = new Syncfs();

  constructor(private readonly thread: ObjectsThread) {
    thread.whenIdle(() => this.syncfs.stop());
  }

  /**
   * Writes the copies, in order, following no link below `root` (the share root); one result per
   * job. The jobs' contents are handed over: empty here afterwards.
   */
  async copy(root: string, jobs: CopyJob[]): Promise<CopyResult[]> {
    for (const job of jobs) job.content = ownMemory(job.content);
    return (await this.thread.request({ kind: 'copy', root, jobs }, jobs.map((job) => job.content.buffer as ArrayBuffer))).results!;
  }

  /** Makes the copies at `paths` durable: one syncfs of `root`'s filesystem, else an fdatasync each. */
  async sync(root: string, paths: string[]): Promise<void> {
    if (await this.syncfs.sync(root)) return;
    await this.thread.request({ kind: 'sync', paths });
  }

  /** Ends the shell (the thread is the object store's to end). */
  stop(): void {
    this.syncfs.stop();
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
