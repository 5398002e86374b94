import { readdirSync, readFileSync } from 'node:fs';

/**
 * SIGKILL to the process group a child leads (it was spawned `detached`): the child and whatever
 * its handlers started and left running (a `subprocess.Popen`, a `child_process.spawn`), as Lambda
 * ends every process of an environment it replaces. Not one that left the group (`setsid`, a double
 * fork into a session of its own). Call it once per child: the group's id is free for reuse once
 * its last process is gone.
 */
export function killProcessGroup(pid: number | undefined): void {
  if (pid === undefined) return;
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

const PGRP = 2;
const START_TIME = 19;

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
