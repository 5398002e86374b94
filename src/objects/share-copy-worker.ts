// The file system side of ShareCopies, in the objects thread (objects-thread-worker.ts): each copy
// is a handful of calls (create, write, set times, link or rename) that cost ~60 µs when made synchronously
// in a row, where the same calls as thread-pool round trips from the event loop cost ~250 µs of CPU
// here (every call wakes a pool thread and then the loop). Creating a file can also wait for the
// filesystem's journal, which the event loop must not. Only Node's built-ins (and share-paths) are
// loaded: the thread stays small.
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, futimesSync, linkSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirectoriesSync } from '../store/durable-directories.js';
import type { ThreadReply } from '../request-thread.js';
import { BLOCKED, READ_NOT_WAITING, changedLocallySince, linkOnPath, lstatUnlessBlocked, type StoreFile } from './share-paths.js';

/** One object's share file to write from its content (a key that can be a file: names.keyCanBeFile). */
export interface CopyJob {
  target: string;
  /** A new temporary file on the share's filesystem, linked or renamed onto `target`. */
  temp: string;
  content: Uint8Array;
  /** The object's LastModified, given to the file as its mtime. */
  lastModified: number;
  /** When the S3 write began: a file a local program changed since (its ctime) is the later write, and stays. */
  writeBegan: number;
  /** The store's own files at `target`, which the copy replaces whenever they were written. */
  ours: StoreFile[];
  /**
   * At startup after a crash: the store's own copy, renamed into place but not recorded, may be at
   * `target` (perhaps torn, if the power went), told by its mtime.
   */
  afterCrash: boolean;
}

export type CopyResult =
  /** Renamed into place (not synced yet: `sync` does that for many copies at once); ctime as placing left it. */
  | { kind: 'copied'; ino: number; mtimeMs: number; ctimeMs: number }
  /** A local program wrote the path after the S3 write: its file stays, for the share to adopt. */
  | { kind: 'local' }
  /** The path cannot take a file (a directory, or a file where a directory of it should be). */
  | { kind: 'blob' }
  | { kind: 'failed'; message: string };

export type ShareCopyRequest =
  /** `root`: the share root, below which no link is followed to a target (linkOnPath). */
  | { kind: 'copy'; root: string; jobs: CopyJob[] }
  /** Makes the copies at `paths` (and their renames) durable, an fdatasync each (where syncfs is not to be had). */
  | { kind: 'sync'; paths: string[] };

export type ShareCopyReply = ThreadReply & { results?: CopyResult[] };

const PATH_TAKEN = new Set(['EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY']);

export function copyFile(job: CopyJob, root: string): CopyResult {
  try {
    const fd = openSync(job.temp, 'wx', 0o644);
    let stats;
    try {
      for (let offset = 0; offset < job.content.length;) offset += writeSync(fd, job.content, offset, job.content.length - offset, offset);
      // mtime = LastModified to the millisecond: a local rewrite within the same clock tick (file
      // times are that coarse) gets a time of its own, so the share tells it from the copy; and
      // after a crash a file with exactly this mtime is taken for the store's copy (`afterCrash`)
      futimesSync(fd, job.lastModified / 1000, job.lastModified / 1000);
      stats = fstatSync(fd);
    } finally {
      closeSync(fd);
    }
    // One look at the path, then the copy put in place. A path found taken (seldom) costs a
    // temporary file written for nothing, where a look before the write as well cost every copy one
    // or two lstats more (of its parent, for a new key's).
    const existing = lstatUnlessBlocked(job.target);
    const outcome = keptInPlace(job, root, existing);
    if (outcome) {
      unlinkSync(job.temp);
      return outcome;
    }
    // A file of the store's is replaced by a rename. A new path gets a hard link, which fails if a
    // local program made the file after the look: a rename replaced it, and that later write was lost.
    if (existing !== undefined) placeAt(job, renameSync);
    else {
      const placed = placeAt(job, linkUnlessTaken);
      unlinkSync(job.temp);
      // what the program made is the later write (or a directory another key's copy made)
      if (!placed) return keptInPlace(job, root, lstatUnlessBlocked(job.target)) ?? { kind: 'local' };
    }
    return { kind: 'copied', ino: stats.ino, mtimeMs: stats.mtimeMs, ctimeMs: placedCtime(job.target, stats.ino) };
  } catch (error) {
    try { unlinkSync(job.temp); } catch { /* not created, or renamed */ }
    // another key took the path meanwhile (`a` made a directory of `a/…`, or the reverse)
    if (PATH_TAKEN.has((error as NodeJS.ErrnoException).code ?? '')) return { kind: 'blob' };
    return { kind: 'failed', message: (error as Error).message };
  }
}

/**
 * The ctime of the copy now in place (the link, rename and the temporary name's unlink moved it).
 * A program's write since (another file there: its inode) leaves the ctime unknown, 0, which no file has.
 */
function placedCtime(target: string, ino: number): number {
  const placed = lstatUnlessBlocked(target);
  return placed && placed !== BLOCKED && placed.ino === ino ? placed.ctimeMs : 0;
}

/** Leaves the path to what is there: a directory or a link on the way (a blob), or a local program's later write. */
function keptInPlace(job: CopyJob, root: string, existing: ReturnType<typeof lstatUnlessBlocked>): CopyResult | undefined {
  if (existing === BLOCKED || (existing && !existing.isFile()) || linkOnPath(root, job.target)) return { kind: 'blob' };
  return writtenLocally(job, existing) ? { kind: 'local' } : undefined;
}

/** Puts the temporary file at the target with `move` (its result), making the target's directory if need be. */
function placeAt<T>(job: CopyJob, move: (from: string, to: string) => T): T {
  try {
    return move(job.temp, job.target);
  } catch (error) {
    // its directory is not there: not made yet (a new key's), or gone meanwhile (a delete removed it as empty)
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    makeDirectoriesSync(dirname(job.target), 0o775);
    return move(job.temp, job.target);
  }
}

/** A hard link at `to`; false when something is there (EEXIST). */
function linkUnlessTaken(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Whether a local program wrote the path after the S3 write began: the later write wins, as when the
 * file is written before the answer. Besides the store's files it knows (`ours`), after a crash a
 * copy whose mtime is the object's LastModified to the millisecond is the store's. (Only then: in
 * the same millisecond a local program's write could have that mtime too.)
 */
function writtenLocally(job: CopyJob, local: Stats | undefined): boolean {
  if (!local?.isFile() || (job.afterCrash && Math.round(local.mtimeMs) === job.lastModified)) return false;
  return changedLocallySince(local, job.writeBegan, job.ours);
}

/** fdatasync of each copy and fsync of their directories. */
export function syncCopies(paths: string[]): void {
  for (const path of paths) syncPath(path, true);
  for (const dir of new Set(paths.map((path) => dirname(path)))) syncPath(dir, false);
}

function syncPath(path: string, dataOnly: boolean): void {
  let fd;
  try {
    fd = openSync(path, READ_NOT_WAITING);
  } catch (error) {
    // replaced or deleted since: what is there now was synced by whoever put it there
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    // replaced by something else than a file (a FIFO takes no sync): not the copy
    if (dataOnly && !fstatSync(fd).isFile()) return;
    if (dataOnly) fdatasyncSync(fd);
    else fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function answerShareCopy(request: ShareCopyRequest): { reply: Omit<ShareCopyReply, 'id'> } | void {
  if (request.kind === 'copy') return { reply: { results: request.jobs.map((job) => copyFile(job, request.root)) } };
  syncCopies(request.paths);
}
