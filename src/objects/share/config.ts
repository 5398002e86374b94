import { z } from 'zod/v3';
import { bool, integer, milliseconds } from '../../config/fields.js';

/** `s3.share.*`: the file share, each bucket a directory of plain files under `s3.shareRoot` (docs/file-share.md). */
export const shareSchema = () => z.strictObject({
  /** Adopt files local programs write into (or delete from) the share as objects. Objects PUT over S3 are files either way. */
  watch: bool(true),
  /** A file becomes an object once nothing changed it (mtime and ctime) for this long: writers are done with it. */
  settleMs: milliseconds().default(2000),
  /**
   * How often the directories without an inotify watch (beyond `maxWatchedDirectories`, or refused by
   * the kernel) are scanned. Each such scan lstats every file under them.
   */
  scanIntervalMs: milliseconds().default(5000),
  /**
   * How often the whole share is scanned, as a safety net for changes inotify missed (its queue
   * overflowed; a network file system's server-side writes): every file is lstat-ed once.
   */
  fullScanIntervalMs: milliseconds().default(300_000),
  /**
   * inotify watches (one per directory) at most, each ~1.8 KiB of the daemon's RSS and ~1 KiB of
   * kernel memory (~7 + 4 MiB at 4096); the directories beyond are scanned every `scanIntervalMs`.
   * 0: scan only, never watch.
   */
  maxWatchedDirectories: integer('expected a directory count ≥ 0').min(0, 'expected a directory count ≥ 0').default(4096),
});

export type ShareConfig = z.infer<ReturnType<typeof shareSchema>>;
