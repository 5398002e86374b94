import { randomBytes } from 'node:crypto';
import { lstatSync, watch, type Dirent, type FSWatcher, type Stats, type WatchEventType } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FileChangedError, standsForShareFile, type ChangeOrigin, type ListResult, type ObjectStore } from '../object-store.js';
import { sharePath } from '../names.js';
import { linkOnPath } from '../share-paths.js';
import { MAX_TIMER_MS, steadyNow } from '../../steady-clock.js';
import { isStorageFailure } from '../../store/storage-errors.js';
import type { ShareConfig } from './config.js';

/** The principal of the events of files written or deleted by local programs. */
const FILE_SHARE_PRINCIPAL = 'outpost:file-share';

// Paths whose key S3 refuses (too long, …) are logged once each; bounded so a hostile tree cannot grow it.
const MAX_REPORTED_PATHS = 1000;
// Index entries read per page when comparing a directory with the index.
const INDEX_PAGE = 1000;
// Directory times are as coarse as 2 s on some file systems (FAT, some NFS servers): compare with that much slack.
const TIME_SLACK_MS = 2000;
// Changed paths waiting to be looked at (~250 bytes each). Past it they are dropped and the whole share is scanned, which finds them all.
const MAX_DIRTY_PATHS = 16384;
// A file whose import the disk refused (full, failing) is looked at again after settleMs, then
// twice as long each time, up to this: a disk that stays full costs a read of each such file a minute.
const STORAGE_RETRY_MAX_MS = 60_000;
// Tops of unwatched subtrees, scanned every scanIntervalMs. Past it every bucket is scanned that often, until the next full scan.
const MAX_UNWATCHED_TREES = 1024;
// Dirty paths looked at in one turn of the event loop.
const LOOKS_PER_TURN = 64;
// Names of one directory held to compare it with the index; a larger directory's indexed entries are lstat-ed instead.
const MAX_COMPARED_NAMES = 10000;
// Files imported at once: each is a few thread-pool round trips and a commit, which a burst (a
// camera's card copied in) would otherwise wait for one by one (17,000 small files: ~45 s one at a
// time, ~17 s eight at a time, in the tests here).
const PARALLEL_ADOPTIONS = 8;
// Renames of the store's share copies announced and whose watch event has not come yet. Past it
// the next ones are not announced: their events are looked at as any other (an lstat and an index lookup).
const MAX_STORE_RENAMES = 4096;
// An announced rename's event comes within this long, else the announcement is dropped: one whose
// event never came (the directory's watch replaced meanwhile) must not hide a local program's rename.
const STORE_RENAME_EVENT_MS = 2000;

/** A directory of a bucket, and the key prefix of its entries (`''` or ending in `/`). */
interface Place {
  bucket: string;
  prefix: string;
}

interface WatchedDirectory extends Place {
  watcher: FSWatcher;
  /** Another directory renamed to the same path is watched anew. */
  ino: number;
  /** The full scan that last found it: a watch the next one does not find is of a directory gone unnoticed. */
  fullScan: number;
}

interface UnwatchedTree extends Place {
  scannedAt: number;
}

interface DirtyPath {
  bucket: string;
  key: string;
  /** When to look at it (steady clock): once a file changed at the time of the event has settled. */
  due: number;
  /**
   * It was created, deleted or moved (a 'rename' event): a directory found there is another one,
   * whose watch is made anew, even with the old one's inode number (freed by a deletion and reused).
   */
  replaced?: boolean;
  /**
   * The file's ctime at the look that found it unsettled and set `due` to when it will have
   * settled: the same then, no writer touched it meanwhile, whatever the wall clock did.
   */
  seenCtimeMs?: number;
}

/**
 * Keeps the object index in step with what local programs do in the share (`<shareRoot>/<bucket>/<key>`):
 * a file that is not the one the store wrote or imported for its key becomes the object once it has
 * settled (its mtime and ctime are older than `settleMs`, so no writer touched it for that long);
 * an object whose file is gone is removed. Both fire the same S3 events as the API does.
 *
 * Its cost follows what changes, not the size of the tree. Every directory has an inotify watch
 * (`fs.watch`, one per directory: inotify is not recursive); an event marks its path dirty, and a
 * dirty path is looked at once a write at the time of the event has settled: a file is adopted (the
 * store's own files, such as large objects renamed into place, cost one lstat and one index lookup),
 * a missing path's objects are forgotten, a new directory is watched and walked. The rename events of
 * the copies of small objects, which the store announces (ObjectStore.onShareRenames), are passed over.
 *
 * Bounds: `maxWatchedDirectories` watches; the directories beyond them, or those the kernel refuses
 * a watch (ENOSPC past fs.inotify.max_user_watches, EMFILE), are scanned every `scanIntervalMs`
 * instead (logged once). MAX_DIRTY_PATHS dirty paths; past it they are dropped for a full scan.
 * inotify drops events when its queue overflows, and does not see what an NFS server's other clients
 * do, so the whole share is scanned every `fullScanIntervalMs` too, and at start, which catches up
 * with what changed while the daemon was down. A scan lstats every file; it finds deleted files by
 * comparing the entries of each directory that changed since the previous scan (its mtime or ctime)
 * with the index's entries for that directory, not by stat-ing every object.
 */
export class FileShare {
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private working: Promise<void> | undefined;
  private stopped = false;
  private readonly reported = new Set<string>();
  /** Files whose import the disk refused, with how many times in a row (bounded as the dirty paths are). */
  private readonly storageRefusals = new Map<string, number>();
  private readonly watched = new Map<string, WatchedDirectory>();
  private readonly unwatchedTrees = new Map<string, UnwatchedTree>();
  /** Past MAX_UNWATCHED_TREES: the periodic scan walks every bucket until the next full scan. */
  private scanEveryBucket = false;
  /** By path; in about the order they are due (a path looked at too early goes to the end). */
  private readonly dirty = new Map<string, DirtyPath>();
  /** Per bucket: when its previous full scan started. */
  private fullyScannedAt = new Map<string, number>();
  private fullScanAt = 0;
  private fullScans = 0;
  private periodicScanAt = 0;
  private readonly loggedOnce = new Set<string>();
  /** Imports under way, by path: `work` waits for them before it ends. */
  private readonly adoptions = new Map<string, Promise<void>>();
  /** By path: the store's share copies about to be renamed there (ObjectStore.onShareRenames), and when the last was announced. */
  private readonly storeRenames = new Map<string, { count: number; at: number }>();

  constructor(private readonly objects: ObjectStore, private readonly config: ShareConfig, private readonly log: Logger) {}

  start(): void {
    this.stopped = false;
    this.fullScanAt = steadyNow();
    this.wake(this.fullScanAt);
    this.objects.onBucketsChanged(() => this.lookForBuckets());
    this.objects.onShareRenames({ renaming: (path) => this.storeRenaming(path), notRenamed: (path) => this.storeNotRenamed(path) });
  }

  async stop(): Promise<void> {
    this.objects.onBucketsChanged(undefined);
    this.objects.onShareRenames(undefined);
    this.storeRenames.clear();
    this.stopped = true;
    clearTimeout(this.timer);
    await this.working;
    for (const directory of this.watched.values()) directory.watcher.close();
    this.watched.clear();
  }

  /** A bucket was created or deleted: the periodic scan, which watches new buckets and forgets deleted ones, runs now. */
  private lookForBuckets(): void {
    this.periodicScanAt = Math.min(this.periodicScanAt, steadyNow());
    this.wake(this.periodicScanAt);
  }

  /** Runs the next due work (one at a time: the scans and the looks at dirty paths never overlap), then sleeps until the next. */
  private wake(at: number): void {
    if (this.stopped || this.working || (this.timer && this.timerAt <= at)) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.working = this.work()
        .catch((error) => this.log.warn({ err: error }, 'file share scan failed'))
        .finally(() => {
          this.working = undefined;
          this.wake(this.nextDue());
        });
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - steadyNow())));
    this.timer.unref();
  }

  private nextDue(): number {
    const first = this.dirty.values().next();
    return Math.min(this.fullScanAt, this.periodicScanAt, first.done ? Infinity : first.value.due);
  }

  private async work(): Promise<void> {
    // a share whose drive is not mounted is not an empty one: nothing is looked at until it is back,
    // and then the whole of it (its watches died with the mount)
    if (!this.objects.shareThere()) {
      this.dirty.clear();
      this.unwatchTree(this.objects.shareRoot);
      this.fullScanAt = steadyNow() + this.config.scanIntervalMs;
      this.periodicScanAt = Infinity;
      return;
    }
    // the next scans are set before this one runs, which may bring them forward (markDirty, addUnwatchedTree)
    if (steadyNow() >= this.fullScanAt) {
      this.fullScanAt = steadyNow() + this.config.fullScanIntervalMs;
      this.periodicScanAt = steadyNow() + this.config.scanIntervalMs;
      await this.fullScan();
    } else if (steadyNow() >= this.periodicScanAt) {
      this.periodicScanAt = steadyNow() + this.config.scanIntervalMs;
      await this.periodicScan();
    }
    await this.lookAtDuePaths();
    while (this.adoptions.size) await Promise.race(this.adoptions.values());
  }

  /** Every bucket's tree: watches it, adopts settled files, forgets the objects of deleted ones. */
  private async fullScan(): Promise<void> {
    this.unwatchedTrees.clear();
    this.scanEveryBucket = false;
    this.fullScans++;
    const scannedAt = new Map<string, number>();
    for (const { name } of this.objects.buckets()) {
      if (this.stopped) return;
      const started = Date.now();
      await this.scanTree(name, join(this.objects.shareRoot, name), '', (this.fullyScannedAt.get(name) ?? -Infinity) - TIME_SLACK_MS, true, started);
      scannedAt.set(name, started);
    }
    this.forgetDeletedBuckets(scannedAt);
    this.fullyScannedAt = scannedAt;
    for (const [dir, directory] of this.watched) if (directory.fullScan < this.fullScans) this.unwatchTree(dir);
  }

  /** The trees without a watch, and new buckets (a bucket created over S3 or the CLI). */
  private async periodicScan(): Promise<void> {
    const buckets = this.objects.buckets();
    const scannedAt = new Map<string, number>();
    for (const { name } of buckets) {
      if (this.stopped) return;
      const dir = join(this.objects.shareRoot, name);
      const previous = this.fullyScannedAt.get(name);
      const started = Date.now();
      // a bucket whose directory lost its watch (deleted or moved away by a local program) is looked for: one stat while it is missing
      const scanned = previous === undefined || this.scanEveryBucket || (!this.watched.has(dir) && !this.unwatchedTrees.has(dir));
      if (scanned) await this.scanTree(name, dir, '', (previous ?? -Infinity) - TIME_SLACK_MS, true, started);
      scannedAt.set(name, scanned ? started : previous);
    }
    this.forgetDeletedBuckets(scannedAt);
    this.fullyScannedAt = scannedAt;
    if (this.scanEveryBucket) return;
    // a tree whose top gets a watch now leaves the list; its subdirectories without one join it
    for (const [dir, tree] of [...this.unwatchedTrees]) {
      if (this.stopped) return;
      this.unwatchedTrees.delete(dir);
      const started = Date.now();
      await this.scanTree(tree.bucket, dir, tree.prefix, tree.scannedAt - TIME_SLACK_MS, true, started);
    }
  }

  private forgetDeletedBuckets(buckets: Map<string, number>): void {
    for (const name of this.fullyScannedAt.keys()) if (!buckets.has(name)) this.unwatchTree(join(this.objects.shareRoot, name));
  }

  /**
   * Walks a directory tree: watches each directory (within the bound), adopts the settled files and
   * marks the others dirty, and for each directory that changed since `since` forgets the objects
   * whose file is gone. Only a watched directory's subdirectories are watched (a deleted directory
   * that was not watched has none that are); one not watched under a watched one (`parentWatched`)
   * is the top of a tree for the periodic scan.
   */
  private async scanTree(bucket: string, dir: string, prefix: string, since: number, parentWatched: boolean, started: number): Promise<void> {
    let directory: Stats | undefined;
    try {
      // lstat: a link in a directory's place (the bucket's) is not followed, as no other link is
      directory = await lstat(dir);
    } catch {
      // the directory went away meanwhile
    }
    if (!directory?.isDirectory()) {
      // gone, or a file now in its place
      if (prefix) await this.forgetTree(bucket, prefix);
      return;
    }
    // watched before its entries are read: a file created meanwhile has its event
    const watched = parentWatched && this.watchDirectory({ bucket, prefix }, dir, directory.ino);
    if (!watched && parentWatched) this.addUnwatchedTree(dir, { bucket, prefix, scannedAt: started });
    let entries;
    try {
      entries = await opendir(dir);
    } catch {
      return;
    }
    const changed = Math.max(directory.mtimeMs, directory.ctimeMs) >= since;
    let names: Map<string, EntryKind> | undefined = changed ? new Map() : undefined;
    for await (const entry of entries) {
      if (this.stopped) break;
      if (names) names.set(entry.name, kindOf(entry));
      if (names && names.size > MAX_COMPARED_NAMES) names = undefined;
      if (skipped(entry)) continue;
      const key = `${prefix}${entry.name}`;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await this.scanTree(bucket, path, `${key}/`, since, watched, started);
      else if (entry.isFile()) {
        // gone meanwhile: its event (or the next scan) says so
        const file = await lstat(path).catch(() => undefined);
        if (file) await this.lookAt(path, bucket, key, file);
      }
    }
    if (changed && !this.stopped) await this.forgetMissing(bucket, dir, prefix, names);
  }

  /**
   * Forgets the objects of a directory (and of its subdirectories) that are no longer in it: the
   * index's entries for the directory's prefix against `names`, its entries as read; without them
   * (a directory too large to hold its names) each indexed entry is lstat-ed. A key's file is
   * missing where anything but a file took its name (a directory, a link, a FIFO), and a prefix's
   * directory where anything but a directory did.
   */
  private async forgetMissing(bucket: string, dir: string, prefix: string, names: Map<string, EntryKind> | undefined): Promise<void> {
    const missing = async (name: string, wanted: EntryKind) => {
      if (names) return names.get(name) !== wanted;
      const found = await lstat(join(dir, name)).catch(() => undefined);
      return !found || kindOf(found) !== wanted;
    };
    for (const page of this.indexPages(bucket, prefix, '/')) {
      for (const object of page.objects) {
        if (this.stopped) return;
        if (standsForShareFile(object) && await missing(object.key.slice(prefix.length), 'file')) await this.forget(bucket, object.key);
      }
      for (const commonPrefix of page.commonPrefixes) {
        if (this.stopped) return;
        if (await missing(commonPrefix.slice(prefix.length, -1), 'directory')) await this.forgetTree(bucket, commonPrefix);
      }
    }
  }

  /** The objects under a prefix whose directory is gone (forgetFile checks each file is). */
  private async forgetTree(bucket: string, prefix: string): Promise<void> {
    for (const page of this.indexPages(bucket, prefix, '')) {
      for (const object of page.objects) {
        if (this.stopped) return;
        if (standsForShareFile(object)) await this.forget(bucket, object.key);
      }
    }
  }

  /** The index's entries under `prefix`, INDEX_PAGE at a time, each page read when the one before is done with. */
  private *indexPages(bucket: string, prefix: string, delimiter: string): Generator<ListResult> {
    let startAfter = '';
    for (;;) {
      const page = this.objects.list(bucket, { prefix, delimiter, startAfter, maxKeys: INDEX_PAGE });
      yield page;
      if (!page.isTruncated || page.last === undefined) return;
      startAfter = page.last;
    }
  }

  private watchDirectory(place: Place, dir: string, ino: number): boolean {
    const current = this.watched.get(dir);
    if (current?.ino === ino) {
      current.fullScan = this.fullScans;
      return true;
    }
    if (current) this.unwatchTree(dir); // another directory was renamed to its path
    // 0 is "scan only", as configured: nothing to warn of
    if (this.config.maxWatchedDirectories === 0) return false;
    if (this.watched.size >= this.config.maxWatchedDirectories) {
      this.logOnce('limit', { maxWatchedDirectories: this.config.maxWatchedDirectories },
        'file share: s3.share.maxWatchedDirectories reached; the directories beyond are scanned every s3.share.scanIntervalMs');
      return false;
    }
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (eventType, name) => this.changed(dir, name, eventType));
    } catch (error) {
      this.logOnce('refused', { err: error, dir },
        'file share: a directory cannot be watched (ENOSPC: raise fs.inotify.max_user_watches); the directories without a watch are scanned every s3.share.scanIntervalMs');
      return false;
    }
    watcher.on('error', (error) => {
      this.log.warn({ err: error, dir }, 'file share: a directory watch failed; the directory is scanned instead');
      this.unwatchTree(dir);
      this.addUnwatchedTree(dir, { ...place, scannedAt: -Infinity });
    });
    this.watched.set(dir, { ...place, watcher, ino, fullScan: this.fullScans });
    return true;
  }

  /** A watch event: the entry `name` of `dir` was created, written, renamed or deleted. */
  private changed(dir: string, name: string | null, eventType: WatchEventType): void {
    const place = this.watched.get(dir);
    if (!place) return;
    // no name: inotify could not say which entry; the periodic scan walks the directory once
    if (name === null) {
      this.addUnwatchedTree(dir, { ...place, scannedAt: -Infinity });
      return;
    }
    // A bucket's directory deleted or moved away (IN_DELETE_SELF, IN_MOVE_SELF) comes as a 'rename' of
    // its own name, as an entry of that name in it would: its watch is dead (even if a new directory
    // took its path and inode number at once), and the share root has none to see it come back. Its
    // tree is dropped, and the periodic scan watches and walks it anew once it is there.
    if (eventType === 'rename' && place.prefix === '' && name === basename(dir)) {
      this.unwatchTree(dir);
      this.lookForBuckets();
      return;
    }
    if (name.startsWith('.')) return;
    const path = join(dir, name);
    // the store's own copy of an S3 write put into place (IN_MOVED_TO, IN_CREATE of its link): nothing to adopt
    if (eventType === 'rename' && this.isStoreRename(path)) return;
    this.markDirty(path, place.bucket, `${place.prefix}${name}`, steadyNow() + this.config.settleMs, { replaced: eventType === 'rename' });
  }

  /** The store is about to rename a share copy onto `path`: its event is to be expected, where a watch will see it. */
  private storeRenaming(path: string): void {
    if (!this.watched.has(dirname(path))) return;
    const announced = this.storeRenames.get(path);
    if (announced) {
      announced.count++;
      announced.at = steadyNow();
      return;
    }
    if (this.storeRenames.size >= MAX_STORE_RENAMES) this.dropStaleStoreRenames();
    if (this.storeRenames.size < MAX_STORE_RENAMES) this.storeRenames.set(path, { count: 1, at: steadyNow() });
  }

  /**
   * An announced rename did not happen (a local program's file is there), or may not have: the path
   * is looked at as after any change, in case the event taken for the store's was a local program's.
   */
  private storeNotRenamed(path: string): void {
    const announced = this.storeRenames.get(path);
    if (announced && --announced.count === 0) this.storeRenames.delete(path);
    this.changed(dirname(path), basename(path), 'change');
  }

  /** Whether a rename event at `path` is one the store announced (and not long ago); takes it. */
  private isStoreRename(path: string): boolean {
    const announced = this.storeRenames.get(path);
    if (!announced) return false;
    if (--announced.count === 0) this.storeRenames.delete(path);
    return steadyNow() - announced.at <= STORE_RENAME_EVENT_MS;
  }

  private dropStaleStoreRenames(): void {
    const now = steadyNow();
    for (const [path, announced] of this.storeRenames) if (now - announced.at > STORE_RENAME_EVENT_MS) this.storeRenames.delete(path);
  }

  /** A path to look at when `due`; one already waiting keeps its turn (it is looked at again if it has not settled then). */
  private markDirty(path: string, bucket: string, key: string, due: number, look: Pick<DirtyPath, 'replaced' | 'seenCtimeMs'> = {}): void {
    const waiting = this.dirty.get(path);
    if (waiting) {
      if (look.replaced) waiting.replaced = true;
      return;
    }
    if (this.dirty.size >= MAX_DIRTY_PATHS) {
      this.logOnce('dirty', { maxDirtyPaths: MAX_DIRTY_PATHS }, 'file share: too many changed paths waiting; the whole share is scanned instead');
      this.dirty.clear();
      // once the paths just changed have settled
      this.fullScanAt = Math.min(this.fullScanAt, steadyNow() + this.config.settleMs);
      this.wake(this.fullScanAt);
      return;
    }
    this.dirty.set(path, { bucket, key, due, ...look });
    this.wake(due);
  }

  private async lookAtDuePaths(): Promise<void> {
    let looked = 0;
    for (const [path, waiting] of this.dirty) {
      if (this.stopped || waiting.due > steadyNow()) return;
      this.dirty.delete(path);
      // what is beyond a link put in a directory's place is not in the share (linkOnPath): gone from it
      const found = linkOnPath(this.objects.shareRoot, path) ? undefined : lstatOfChangedPath(path);
      if (found !== null) await this.lookAt(path, waiting.bucket, waiting.key, found, waiting);
      // most looks end without I/O (the store's own files): let requests run between batches of them
      if (++looked % LOOKS_PER_TURN === 0) await setImmediate();
    }
  }

  /** A file is adopted once settled; a new directory is watched and walked; a missing path's objects are forgotten. */
  private async lookAt(path: string, bucket: string, key: string, found: Stats | undefined, look: Pick<DirtyPath, 'replaced' | 'seenCtimeMs'> = {}): Promise<void> {
    // a directory gone, or a file in its place: its objects go
    if (!found?.isDirectory() && (this.watched.has(path) || this.unwatchedTrees.has(path))) {
      this.unwatchTree(path);
      await this.forgetTree(bucket, `${key}/`);
    }
    if (!found) {
      this.refusalOver(path);
      await this.forget(bucket, key);
    } else if (found.isDirectory()) {
      if (look.replaced) {
        // made anew: the object of a file whose name it took goes, and its watch is made again
        await this.forget(bucket, key);
        this.unwatchTree(path);
      }
      if (this.watched.get(path)?.ino !== found.ino) await this.scanTree(bucket, path, `${key}/`, -Infinity, true, Date.now());
    } else if (found.isFile()) {
      await this.adoptFile(bucket, key, path, found, look.seenCtimeMs);
    } else {
      // a link, a FIFO, a socket in the file's place: never an object, so the file is gone
      await this.forget(bucket, key);
    }
  }

  /**
   * Forgets the object of a file that is gone. One whose share copy is not recorded yet is looked at
   * again later, like a file that has not settled: the copy may have been placed and deleted since,
   * and once recorded it would otherwise stand for a file nobody will tell the share about.
   */
  private async forget(bucket: string, key: string): Promise<void> {
    // a file missing from a drive unmounted meanwhile is not deleted
    if (!this.objects.shareThere()) return;
    if (await this.objects.forgetFile(bucket, key, this.origin()) === 'copy pending') {
      this.markDirty(sharePath(this.objects.shareRoot, bucket, key), bucket, key, steadyNow() + this.config.settleMs);
    }
  }

  private async adoptFile(bucket: string, key: string, path: string, file: Stats, seenCtimeMs: number | undefined): Promise<void> {
    // being imported: looked at again once settled, in case it changed after the import's look (its
    // event's look may have come, and been passed over here, while the import's commit was slow)
    if (this.adoptions.has(path)) return this.markDirty(path, bucket, key, steadyNow() + this.config.settleMs);
    const owner = this.objects.shareFileOwner(bucket, key, file);
    if (owner === 'store') return;
    if (owner === 'copy pending') return this.markDirty(path, bucket, key, steadyNow() + this.config.settleMs);
    // no writer changed the file for settleMs: its ctime (every write, rename or change of its times
    // moves it, and no program can set it), not its mtime, which `cp -p` or `rsync -t` from a
    // computer whose clock is ahead sets in the future. A ctime later than now (the clock stepped
    // back since the write) cannot say how long ago: the file has settled once a look settleMs
    // later finds the same ctime. (File times are the wall clock's; looks are due on the steady clock.)
    const now = Date.now();
    const unsettledFor = Math.min(file.ctimeMs, now) + this.config.settleMs - now;
    if (unsettledFor > 0 && file.ctimeMs !== seenCtimeMs) {
      return this.markDirty(path, bucket, key, steadyNow() + unsettledFor, { seenCtimeMs: file.ctimeMs });
    }
    while (this.adoptions.size >= PARALLEL_ADOPTIONS) await Promise.race(this.adoptions.values());
    const adoption = this.importFile(bucket, key, path, file).finally(() => this.adoptions.delete(path));
    this.adoptions.set(path, adoption);
  }

  /** Never rejects: a file that changed while it was read is looked at again once settled; other failures are logged. */
  private async importFile(bucket: string, key: string, path: string, file: Stats): Promise<void> {
    try {
      const object = await this.objects.importFile(bucket, key, file, this.origin());
      if (object) this.log.debug({ bucket, key, size: object.size }, 'file share: file adopted as an object');
      this.refusalOver(path);
    } catch (error) {
      // written to again while it was read: looked at again once it settles
      if (error instanceof FileChangedError) this.markDirty(path, bucket, key, steadyNow() + this.config.settleMs);
      else if (isStorageFailure(error)) this.refusedByStorage(path, bucket, key, error);
      else if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.reportOnce(path, error, 'file share: file cannot become an object');
    }
  }

  /**
   * The disk refused an import (a full disk: the file was written, its object could not be): the
   * file is looked at again later, as no event will come for it once space returns. Said once per
   * spell of refusals, not per file.
   */
  private refusedByStorage(path: string, bucket: string, key: string, error: unknown): void {
    if (this.storageRefusals.size === 0) {
      this.log.error({ path, err: error }, 'file share: files cannot become objects while the disk refuses writes; they are tried again, waits growing to a minute');
    }
    const refusals = (this.storageRefusals.get(path) ?? 0) + 1;
    if (this.storageRefusals.size >= MAX_DIRTY_PATHS) this.storageRefusals.clear();
    this.storageRefusals.set(path, refusals);
    this.markDirty(path, bucket, key, steadyNow() + Math.min(STORAGE_RETRY_MAX_MS, this.config.settleMs * 2 ** (refusals - 1)));
  }

  /** A file the disk refused has become an object, or is gone. */
  private refusalOver(path: string): void {
    if (!this.storageRefusals.delete(path)) return;
    if (this.storageRefusals.size === 0) this.log.info('file share: the files the disk refused have become objects (or are gone)');
  }

  private addUnwatchedTree(dir: string, tree: UnwatchedTree): void {
    if (this.scanEveryBucket || this.unwatchedTrees.has(dir)) return;
    if (this.unwatchedTrees.size >= MAX_UNWATCHED_TREES) {
      this.unwatchedTrees.clear();
      this.scanEveryBucket = true;
    } else {
      this.unwatchedTrees.set(dir, tree);
    }
    this.periodicScanAt = Math.min(this.periodicScanAt, steadyNow() + this.config.scanIntervalMs);
    this.wake(this.periodicScanAt);
  }

  /** Closes the watches of a directory that is gone (or replaced) and of its subdirectories. */
  private unwatchTree(dir: string): void {
    for (const [path, directory] of this.watched) {
      if (path !== dir && !path.startsWith(dir + sep)) continue;
      directory.watcher.close();
      this.watched.delete(path);
    }
    for (const path of this.unwatchedTrees.keys()) if (path === dir || path.startsWith(dir + sep)) this.unwatchedTrees.delete(path);
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

  private logOnce(what: string, details: object, message: string): void {
    if (this.loggedOnce.has(what)) return;
    this.loggedOnce.add(what);
    this.log.warn(details, message);
  }
}

type EntryKind = 'file' | 'directory' | 'other';

/** What a directory entry is to the share: only regular files are objects and only directories hold them. */
function kindOf(entry: Pick<Dirent, 'isFile' | 'isDirectory'>): EntryKind {
  return entry.isFile() ? 'file' : entry.isDirectory() ? 'directory' : 'other';
}

/**
 * Dot-files and dot-directories are the temporary files of editors, rsync, Samba and NFS clients
 * (`.name.XYZ`, `.~lock`, `.nfs…`); symbolic links could point anywhere on the gateway.
 */
function skipped(entry: Dirent): boolean {
  return entry.name.startsWith('.') || entry.isSymbolicLink();
}

/**
 * A path that just changed is in the kernel's dentry and inode caches: a synchronous lstat costs a
 * few µs of the event loop, where a thread-pool round trip costs tens and queues behind the WAL's
 * fdatasync. undefined: it is gone; null: it cannot be looked at (EACCES, …), which says nothing.
 */
function lstatOfChangedPath(path: string): Stats | undefined | null {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOTDIR' ? undefined : null;
  }
}
