import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOCKET_DIR_PREFIX = 'outpost-py-';
/** A socket directory's name, and the pid of the daemon that made it. */
const SOCKET_DIR_NAME = new RegExp(`^${SOCKET_DIR_PREFIX}(\\d{1,10})-[^/]+$`);

/** A Python environment's Runtime API socket is in `<tmp>/outpost-py-<daemon's pid>-XXXXXX` (mkdtemp's). */
export function socketDirPrefix(): string {
  return join(tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-`);
}

/**
 * Removes (and names by path) the Runtime API socket directories of daemons no longer running (ended by kill -9 or a power
 * cut: a daemon removes its own as each environment ends). systemd's PrivateTmp clears them with the
 * service; a daemon started by hand, or a test's, left them in /tmp. Another daemon's, running, stay.
 */
export async function removeStaleSocketDirs(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(tmpdir()).catch(() => [])) {
    const pid = SOCKET_DIR_NAME.exec(name)?.[1];
    // one named by this daemon's pid is an earlier daemon's too: this one has started none yet
    if (pid === undefined || (Number(pid) !== process.pid && isRunning(Number(pid)))) continue;
    const path = join(tmpdir(), name);
    // another user's is not ours to remove (EACCES)
    if (await rm(path, { recursive: true }).then(() => true, () => false)) removed.push(path);
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
