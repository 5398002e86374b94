// Looking at a key's path in the share: shared by the store (on the event loop) and the share copy
// thread, which loads only Node's built-ins and this.
import { constants, lstatSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * How a share file is opened to read: a FIFO a local program put at an object's path would hold an
 * open for reading until a writer came (the event loop, or a thread, for good: one GET froze the
 * daemon); O_NONBLOCK returns at once, and the fstat after tells it is not the object's file.
 * Regular files ignore it.
 */
export const READ_NOT_WAITING = constants.O_RDONLY | constants.O_NONBLOCK;

export const BLOCKED = Symbol('a file stands where a directory of the path should be');

/** lstat that answers undefined for a missing path and BLOCKED when a file is in the way of it (a key under a key's file). */
export function lstatUnlessBlocked(path: string): Stats | undefined | typeof BLOCKED {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ENAMETOOLONG') return BLOCKED;
    throw error;
  }
}

/** Whether making a path's parent directories failed because they cannot be made: a file in the way, or a name too long. */
export function cannotBeDirectory(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EEXIST' || code === 'ENOTDIR' || code === 'ENAMETOOLONG';
}

/** A share file the store wrote (inode, size, mtime), which a newer version of its object replaces. */
export interface StoreFile {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** File times come from a clock that lags the wall clock by up to a tick (10 ms at HZ=100). */
const FILE_CLOCK_SLACK_MS = 10;

/**
 * Whether a local program changed the file at a key's path after `since`, when an S3 write of the
 * key began (its ctime, which no program can set back; a tick of slack for the file clock): the
 * later write, which the S3 write's content does not replace. The store's own files (`ours`) are
 * replaced whenever they were written.
 */
export function changedLocallySince(file: Stats, since: number, ours: readonly StoreFile[]): boolean {
  if (ours.some((own) => own.ino === file.ino && own.size === file.size && own.mtimeMs === file.mtimeMs)) return false;
  return file.ctimeMs >= since - FILE_CLOCK_SLACK_MS;
}

/**
 * Whether a symbolic link stands where a directory of `path` should be, below `root` (the share
 * root): the bucket's directory or one of the key's. A local program, or a user of the exported
 * share, may put one there; a key written, renamed or deleted through it would reach a file
 * outside the share or in another bucket, so the store follows none (the share's scan does not
 * either). A directory not made yet is no link. One lstat per directory: cached lookups cost µs.
 * (Between this look and the write a link may still be put in place: Node has no openat.)
 */
export function linkOnPath(root: string, path: string): boolean {
  let directory = root;
  for (const segment of relative(root, path).split('/').slice(0, -1)) {
    directory = join(directory, segment);
    const stats = lstatUnlessBlocked(directory);
    // missing, or a file in the way: no link here, and nothing beyond
    if (stats === undefined || stats === BLOCKED) return false;
    if (!stats.isDirectory()) return stats.isSymbolicLink();
  }
  return false;
}
