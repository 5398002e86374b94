// Runs inside a worker thread (the default isolation), or a process environment. A thread's handlers
// start processes as the daemon's children, in the daemon's process group: nothing would end them
// with the environment, as Lambda ends every process of an environment it replaces. Built-in modules
// are per realm, so what is changed here reaches every spawn this thread's code makes, and no other
// thread's. A process environment's group ends with it, but a child started detached leaves it.
import { ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { groupMembers } from './process-group.js';
import type { WorkerMessage } from './protocol.js';

type SpawnOptions = { detached?: boolean } | null | undefined;

/**
 * Each child leads a process group of its own (spawn's `detached`: on Linux a new session, which
 * changes nothing the handler sees but the terminal a child could open, and a daemon has none), so
 * that the daemon can end it with all it started. The daemon keeps the record (spawned-children.ts):
 * the thread may be stuck in a loop, or gone, when its environment ends.
 */
function leadOwnGroup(options: SpawnOptions): void {
  if (typeof options === 'object' && options !== null) options.detached = true;
}

/**
 * `thread`: every child is put in a group of its own and recorded. `process` (an environment that is
 * a process leading its own group, which ends with it): only the children a handler detached, which
 * leave that group, are recorded.
 */
export function trackChildProcesses(post: (message: WorkerMessage) => void, environment: 'thread' | 'process'): void {
  // proc(5): this thread's children file lists a child that a synchronous spawn waits for, whose pid the thread cannot post
  if (environment === 'thread') post({ type: 'task', path: `/proc/${readlinkSync('/proc/thread-self')}` });

  // spawn, exec, execFile and fork all start their child here
  const spawn = ChildProcess.prototype as unknown as { spawn(this: ChildProcess, options: SpawnOptions): unknown };
  const spawnChild = spawn.spawn;
  spawn.spawn = function spawnInOwnGroup(options) {
    const leavesGroup = typeof options === 'object' && options !== null && options.detached === true;
    if (environment === 'process' && !leavesGroup) return spawnChild.call(this, options);
    leadOwnGroup(options);
    const outcome = spawnChild.call(this, options);
    const { pid } = this;
    if (pid !== undefined) {
      post({ type: 'spawned', pid });
      // First: a handler's listener may never return. Reaped by now, its pid is free again; what it left in its group is not.
      this.prependOnceListener('exit', () => post({ type: 'reaped', pid, left: groupExists(pid) ? groupMembers(pid) : [] }));
    }
    return outcome;
  };

  if (environment === 'process') return;
  // spawnSync, execSync and execFileSync hand their normalized options to this binding (process.binding is this realm's internal one)
  const spawnSync = (process as unknown as { binding(name: 'spawn_sync'): { spawn(options: SpawnOptions): unknown } }).binding('spawn_sync');
  const spawnChildSync = spawnSync.spawn;
  spawnSync.spawn = (options) => {
    leadOwnGroup(options);
    return spawnChildSync.call(spawnSync, options);
  };
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
