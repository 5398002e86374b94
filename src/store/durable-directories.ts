// Directories that survive a power cut: a new directory's entry is on disk only once the directory
// holding it is fsynced (POSIX; ext4's ordered journal happens to cover it, other filesystems need
// not). Only Node's built-ins, as the share copy thread loads it.
import { closeSync, constants, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** mkdir -p of `dir` whose new directories are durable when it returns. */
export async function makeDirectories(dir: string, mode: number): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  if (first) for (const changed of holdersOfMade(first, dir)) await syncPath(changed);
}

/** makeDirectories for a thread that may block. */
export function makeDirectoriesSync(dir: string, mode: number): void {
  const first = mkdirSync(dir, { recursive: true, mode });
  if (first) for (const changed of holdersOfMade(first, dir)) syncPathSync(changed);
}

/** fsync of a file or a directory (the entries made, renamed or removed in it become durable) by its path. */
export async function syncPath(path: string): Promise<void> {
  const file = await open(path, constants.O_RDONLY);
  try { await file.sync(); } finally { await file.close(); }
}

export function syncPathSync(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

/**
 * The directories whose entries a `mkdir -p` of `dir` changed, deepest first, when the first one
 * it made was `first`: the parent of each directory made (`dir`'s own entries are its user's).
 */
function holdersOfMade(first: string, dir: string): string[] {
  const top = dirname(resolve(first));
  const holders: string[] = [];
  for (let holder = dirname(resolve(dir)); ; holder = dirname(holder)) {
    holders.push(holder);
    if (holder === top || holder === dirname(holder)) return holders;
  }
}
