import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Whether a tmpfs can be mounted here (root), found by mounting one and unmounting it at once: a
 * test file decides at collection whether to skip, and mounts in its beforeAll, whose afterAll
 * unmounts. (A mount made at collection stays when the tests are filtered out and no hook runs.)
 */
export function canMountTmpfs(): boolean {
  const dir = mountTmpfs(1);
  if (dir) unmountTmpfs(dir);
  return dir !== undefined;
}

/** A small tmpfs to fill up; undefined where mounting is not permitted (not root). */
export function mountTmpfs(sizeMiB: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/**
 * Unmounts `dir`, again while it is busy: a daemon using the file system holds it for moments (a
 * directory's fsync, a `sync -f` after share copies), and `umount` refuses meanwhile, as it
 * would an operator. At most 5 s.
 */
export async function unmountWhenFree(dir: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      return;
    } catch (error) {
      if (attempt === 50 || !String((error as { stderr?: Buffer }).stderr).includes('busy')) throw error;
      await sleep(100);
    }
  }
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
}

/** Writes a file that leaves `freeBytes` of the file system at `dir` free; its path, to remove to give the space back. */
export function fillLeaving(dir: string, freeBytes: number): string {
  const filler = join(dir, 'filler');
  const { bavail, bsize } = statfsSync(dir);
  writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - freeBytes)));
  return filler;
}
