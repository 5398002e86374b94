import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * SIGKILL to the process group a child leads (it was spawned `detached`): the child and whatever
 * its handlers started and left running (a `subprocess.Popen`, a `child_process.spawn`), as Lambda
 * ends every process of an environment it replaces. Not one that left the group (`setsid`, a double
 * fork into a session of its own): killProcessTree ends those too. Call it once per child: the
 * group's id is free for reuse once its last process is gone.
 */
export function killProcessGroup(pid: number | undefined): void {
  // Group ids come from a handler's thread too (spawn-tracking's messages share its port): never -1
  // (every process the daemon may signal) nor the daemon's own group.
  if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing of the group is left
  }
}

/** A process as the kernel tells it apart from a later one given the same pid: its start time (clock ticks since boot). */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

/** `/proc/PID/stat`'s fields after the command name (which may hold spaces and parentheses): state, ppid, pgrp, … */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

const PPID = 1;
const PGRP = 2;
const START_TIME = 19;
/** Reads of the descendants while new ones show (each one stopped can fork no more). */
const MAX_TREE_READS = 8;

/**
 * Ends an environment's process (started `detached`, leading its group) with all its processes:
 * the tree below it while it is not reaped yet (killProcessTree), else its group — what it leaves
 * when it exits is reparented away from it.
 */
export function killEnvironmentProcess(child: Pick<ChildProcess, 'pid' | 'exitCode' | 'signalCode'>): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) killProcessTree(child.pid);
  else killProcessGroup(child.pid);
}

/**
 * SIGKILL to `root`, its process group and every process descended from it, in the group or out
 * of it (a child that called `setsid` or was started in a session of its own, and what that one
 * started), as Lambda ends every process of an environment. `root` must not be reaped yet, so that
 * its pid and its descendants are its own. Each is stopped first, parents before their children,
 * and the descendants read again until no new one shows: a stopped process forks no more, and one
 * whose parent is stopped is not reaped, so its pid cannot pass to another process before it is
 * killed. An orphan whose parent exited before is no descendant (init adopted it), unless `root`
 * adopts orphans (a child subreaper, as the Python runtime's first process).
 */
function killProcessTree(root: number): void {
  signal(root, 'SIGSTOP');
  const stopped: ProcessIdentity[] = [];
  const seen = new Set<number>([root]);
  for (let read = 0; read < MAX_TREE_READS; read++) {
    const fresh = descendants(root).filter(({ pid }) => !seen.has(pid));
    if (fresh.length === 0) break;
    for (const member of fresh) {
      seen.add(member.pid);
      if (sameProcess(member) && signal(member.pid, 'SIGSTOP')) stopped.push(member);
    }
  }
  killProcessGroup(root);
  for (const member of stopped) if (sameProcess(member)) signal(member.pid, 'SIGKILL');
}

/** Every process descended from `root` now, parents before their children, read from /proc (a kernel without CONFIG_PROC_CHILDREN has no children files). */
function descendants(root: number): ProcessIdentity[] {
  const children = new Map<number, ProcessIdentity[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (!fields) continue;
    const parent = Number(fields[PPID]);
    const siblings = children.get(parent) ?? [];
    siblings.push({ pid, startTime: fields[START_TIME] });
    children.set(parent, siblings);
  }
  const found: ProcessIdentity[] = [];
  for (let parents = [root]; parents.length > 0;) {
    const next = parents.flatMap((parent) => children.get(parent) ?? []);
    found.push(...next);
    parents = next.map(({ pid }) => pid);
  }
  return found;
}

/** Whether `member`'s pid is still its own: not given to a later process. */
function sameProcess(member: ProcessIdentity): boolean {
  return statFields(member.pid)?.[START_TIME] === member.startTime;
}

function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    // ESRCH: gone (reaped) since it was read
    return false;
  }
}

/** The processes in group `pgid` now, read from /proc (proc(5)). */
export function groupMembers(pgid: number): ProcessIdentity[] {
  const members: ProcessIdentity[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields && Number(fields[PGRP]) === pgid) members.push({ pid, startTime: fields[START_TIME] });
  }
  return members;
}

/** Whether `member` still runs (or is a zombie) in group `pgid`: its pid not given to a later process. */
export function stillInGroup(member: ProcessIdentity, pgid: number): boolean {
  const fields = statFields(member.pid);
  return fields !== undefined && fields[START_TIME] === member.startTime && Number(fields[PGRP]) === pgid;
}

const STATUS_FIELDS = { VmRSS: /^VmRSS:\s+(\d+) kB$/m, VmHWM: /^VmHWM:\s+(\d+) kB$/m };

/** A process's resident set now (VmRSS) or at its peak (VmHWM), from /proc; undefined once it is gone. */
export function residentBytes(pid: number, which: keyof typeof STATUS_FIELDS): number | undefined {
  try {
    const found = STATUS_FIELDS[which].exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return found ? Number(found[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
