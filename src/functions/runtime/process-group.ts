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
