import { readFileSync } from 'node:fs';
import { killProcessGroup, stillInGroup, type ProcessIdentity } from './process-group.js';
import type { WorkerMessage } from './protocol.js';

/** Groups whose leader is gone kept before those whose processes are all gone too are dropped. */
const LEADERLESS_BEFORE_PRUNING = 64;

/**
 * The daemon's record of the processes a handler started outside its environment's process group
 * (spawn-tracking.ts posts them; each leads a group of its own): every child of a worker thread's
 * handlers, a process environment's detached ones. They end with the environment, however it ends:
 * timeout, crash, memory limit, idle, redeploy, daemon stop. A group is killed only while its id
 * cannot be another's: its leader not reaped yet (the pid stays taken until then), or a process
 * seen in it when its leader was reaped still there.
 */
export class SpawnedChildren {
  /** The thread's /proc task directory: its `children` lists the thread's children not reaped yet. */
  private task: string | undefined;
  private readonly running = new Set<number>();
  private readonly leaderless = new Map<number, ProcessIdentity[]>();
  /** Killed by `endAll` and not reaped yet, and what to do once none is left (`afterReaped`). */
  private readonly killed = new Set<number>();
  private onReaped: (() => void) | undefined;

  /** Takes the messages of the tracking; false for the others. */
  take(message: WorkerMessage): boolean {
    switch (message.type) {
      case 'task':
        this.task = message.path;
        return true;
      case 'spawned':
        this.running.add(message.pid);
        return true;
      case 'reaped':
        if (this.killed.delete(message.pid) && this.killed.size === 0) this.onReaped?.();
        if (!this.running.delete(message.pid) || message.left.length === 0) return true;
        this.leaderless.set(message.pid, message.left);
        if (this.leaderless.size > LEADERLESS_BEFORE_PRUNING) this.pruneLeaderless();
        return true;
      default:
        return false;
    }
  }

  /**
   * Kills every group. `threadRuns`: the thread is still there, so its children file is its own —
   * the one place a child of a synchronous spawn shows (the thread blocks until it exits, and
   * terminating it waits for that).
   */
  endAll(threadRuns: boolean): void {
    if (threadRuns && this.task) for (const pid of this.unreapedChildren()) this.running.add(pid);
    for (const pid of this.running) {
      killProcessGroup(pid);
      this.killed.add(pid);
    }
    for (const [pgid, members] of this.leaderless) if (members.some((member) => stillInGroup(member, pgid))) killProcessGroup(pgid);
    this.running.clear();
    this.leaderless.clear();
  }

  /**
   * Calls `then` once the thread has reaped the children `endAll` killed, or after `waitMs`: only the
   * thread's event loop can collect their exit status, and one it does not collect stays in the
   * process table as a zombie until the daemon exits. A thread stuck in a loop collects nothing.
   */
  afterReaped(waitMs: number, then: () => void): void {
    if (this.killed.size === 0) return then();
    const timer = setTimeout(() => this.onReaped?.(), waitMs);
    this.onReaped = () => {
      clearTimeout(timer);
      this.onReaped = undefined;
      this.killed.clear();
      then();
    };
  }

  private unreapedChildren(): number[] {
    try {
      return readFileSync(`${this.task}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      // a kernel without CONFIG_PROC_CHILDREN: a synchronous spawn's child is not found
      return [];
    }
  }

  private pruneLeaderless(): void {
    for (const [pgid, members] of this.leaderless) if (!members.some((member) => stillInGroup(member, pgid))) this.leaderless.delete(pgid);
  }
}
