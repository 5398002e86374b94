import { randomBytes } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { lstat, opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FileChangedError, type ChangeOrigin, type ObjectStore } from '../object-store.js';
import type { ShareConfig } from './config.js';

/** The principal of the events of files written or deleted by local programs. */
const FILE_SHARE_PRINCIPAL = 'outpost:file-share';

// Paths whose key S3 refuses (too long, …) are logged once each; bounded so a hostile tree cannot grow it.
const MAX_REPORTED_PATHS = 1000;
// Objects checked for a deleted file per index page.
const INDEX_PAGE = 1000;
// Directory times are as coarse as 2 s on some file systems (FAT, some NFS servers): compare with that much slack.
const TIME_SLACK_MS = 2000;

/**
 * Keeps the object index in step with what local programs do in the share (`<shareRoot>/<bucket>/<key>`):
 * a file that is not the one the store wrote or imported for its key becomes the object once it has
 * settled (its mtime and ctime are older than `settleMs`, so no writer touched it for that long);
 * an object whose file is gone is removed. Both fire the same S3 events as the API does.
 *
 * It scans instead of watching (inotify): a scan holds one directory handle per level and one
 * index page, whatever the size of the tree, where watches and their per-file state grow with it.
 * Deleting a file changes its directory's mtime, so the index is checked for deleted files only
 * when a directory of the bucket changed since the previous scan. The first scan, at start,
 * checks everything: it catches up with what changed while the daemon was down.
 */
export class FileShare {
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private stopped = false;
  private readonly reported = new Set<string>();
  /** Per bucket: when its previous scan started. */
  private scannedAt = new Map<string, number>();

  constructor(private readonly objects: ObjectStore, private readonly config: ShareConfig, private readonly log: Logger) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.scanning;
  }

  /** One pass over every bucket: adopt settled files, forget deleted ones. */
  async scan(): Promise<void> {
    const scannedAt = new Map<string, number>();
    for (const { name } of this.objects.buckets()) {
      if (this.stopped) return;
      const started = Date.now();
      const since = (this.scannedAt.get(name) ?? -Infinity) - TIME_SLACK_MS;
      const directoriesChanged = await this.adoptFiles(name, join(this.objects.shareRoot, name), '', since);
      if (directoriesChanged) await this.forgetDeletedFiles(name);
      scannedAt.set(name, started);
    }
    this.scannedAt = scannedAt;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.scanning = this.scan()
        .catch((error) => this.log.warn({ err: error }, 'file share scan failed'))
        .finally(() => {
          this.scanning = undefined;
          if (!this.stopped) this.schedule(this.config.scanIntervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Adopts the settled files of a directory tree; resolves with whether a directory in it changed since `since` (or vanished). */
  private async adoptFiles(bucket: string, dir: string, prefix: string, since: number): Promise<boolean> {
    let entries;
    let changed: boolean;
    try {
      const directory = await stat(dir);
      changed = Math.max(directory.mtimeMs, directory.ctimeMs) >= since;
      entries = await opendir(dir);
    } catch {
      return true; // the directory went away meanwhile
    }
    for await (const entry of entries) {
      if (this.stopped) break;
      if (skipped(entry)) continue;
      const key = `${prefix}${entry.name}`;
      if (entry.isDirectory()) changed = await this.adoptFiles(bucket, join(dir, entry.name), `${key}/`, since) || changed;
      else if (entry.isFile()) await this.adoptFile(bucket, key, join(dir, entry.name));
    }
    return changed;
  }

  private async adoptFile(bucket: string, key: string, path: string): Promise<void> {
    const file = await lstat(path).catch(() => undefined);
    if (!file?.isFile() || this.objects.isStoreFile(bucket, key, file) || !this.settled(file)) return;
    try {
      const object = await this.objects.importFile(bucket, key, this.origin());
      this.log.debug({ bucket, key, size: object.size }, 'file share: file adopted as an object');
    } catch (error) {
      // Written to again while it was read: the next scan looks again once it settles.
      if (error instanceof FileChangedError || (error as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.reportOnce(path, error, 'file share: file cannot become an object');
    }
  }

  /** No writer changed the file (content: mtime; metadata, renames: ctime, which no program can set back) for `settleMs`. */
  private settled(file: Stats): boolean {
    return Date.now() - Math.max(file.mtimeMs, file.ctimeMs) >= this.config.settleMs;
  }

  /** Objects whose share file a local program deleted: walked in index order, a page at a time. */
  private async forgetDeletedFiles(bucket: string): Promise<void> {
    let startAfter = '';
    for (;;) {
      const page = this.objects.list(bucket, { prefix: '', delimiter: '', startAfter, maxKeys: INDEX_PAGE });
      for (const object of page.objects) {
        if (this.stopped) return;
        if (object.blob) continue;
        const file = await stat(this.objects.contentPath(object)).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : null));
        if (file === undefined) await this.objects.forgetFile(bucket, object.key, this.origin());
      }
      if (!page.isTruncated || page.last === undefined) return;
      startAfter = page.last;
    }
  }

  private origin(): ChangeOrigin {
    return { principalId: FILE_SHARE_PRINCIPAL, sourceIp: '127.0.0.1', requestId: randomBytes(8).toString('hex').toUpperCase() };
  }

  private reportOnce(path: string, error: unknown, message: string): void {
    if (this.reported.has(path)) return;
    if (this.reported.size >= MAX_REPORTED_PATHS) this.reported.clear();
    this.reported.add(path);
    this.log.warn({ path, err: error }, message);
  }
}

/**
 * Dot-files and dot-directories are the temporary files of editors, rsync, Samba and NFS clients
 * (`.name.XYZ`, `.~lock`, `.nfs…`); symbolic links could point anywhere on the gateway.
 */
function skipped(entry: Dirent): boolean {
  return entry.name.startsWith('.') || entry.isSymbolicLink();
}
