import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
