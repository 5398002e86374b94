// Looking at a key's path in the share: shared by the store (on the event loop) and the share copy
// thread, which loads only Node's built-ins and this.
import { lstatSync, type Stats } from 'node:fs';

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
