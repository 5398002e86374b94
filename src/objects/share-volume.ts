import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, lstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { makeDirectories, syncPath } from '../store/durable-directories.js';

/** The file in the store's folder of the share that names the volume: `<shareRoot>/.outpost/volume`. */
const VOLUME_FILE = 'volume';
/** How often the volume is looked for (it may be unmounted, or mounted again, at any time). */
const LOOK_INTERVAL_MS = 5_000;
/** A request that finds the share absent looks again, at most this often. */
const ASKED_LOOK_MS = 1_000;

/** What the share root holds: the store's volume, no store folder, a folder without a volume file, or another store's. */
type Found = 'ours' | 'missing' | 'unmarked' | 'foreign';

/**
 * Whether the share's volume is there. A share on its own disk (a USB drive, a NAS mount) that is
 * not mounted leaves an empty directory, or none, at the share root: taken for the share, it would
 * make every bucket's objects look deleted, and writes would fill the board's own card. The store's
 * folder (`.outpost`) holds a file naming the volume with an id the database keeps too; the share is
 * present only while that file is there with that id. Until it is, writes that need the share are
 * refused (503) and nothing is made in the share root, and the share's scans forget nothing.
 *
 * The store's folder is made (with a new id) only on a share that holds nothing yet: no bucket. A
 * folder without the file is taken as the store's (a new id written): at the first start of a
 * store that had none (an upgrade), or when an operator makes it to give the store a new, empty
 * volume (a replaced disk: `mkdir -p <shareRoot>/.outpost && : > <shareRoot>/.outpost/volume`, docs/file-share.md).
 * A new id each time, so that a folder left beneath a mount point is never taken for the volume.
 */
export class ShareVolume {
  private id: string | undefined;
  private present = false;
  private lookedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private returning: Promise<void> | undefined;
  private readonly statements;

  /**
   * `onReturn`: the volume is back (or there at last); runs before writes are accepted again
   * (the store redoes what waited for the share).
   */
  constructor(private readonly shareRoot: string, private readonly folder: string, private readonly store: Store,
    private readonly log: Logger, private readonly onReturn: () => Promise<void>) {
    this.statements = {
      id: store.db.prepare('SELECT volume FROM object_share'),
      setId: store.db.prepare('INSERT OR REPLACE INTO object_share (only, volume) VALUES (1, ?)'),
      anyBucket: store.db.prepare('SELECT 1 FROM object_buckets LIMIT 1'),
    };
    this.id = (this.statements.id.get() as { volume: string } | undefined)?.volume;
  }

  /** At start: makes a new share's folder, and tells whether the share is there (looked for every LOOK_INTERVAL_MS after). */
  async open(): Promise<boolean> {
    const found = this.find();
    this.lookedAt = Date.now();
    if (found === 'ours') this.present = true;
    else if (this.takes(found)) {
      await this.mark();
      this.present = true;
    } else this.reportAbsent(found);
    this.timer = setInterval(() => this.look(), LOOK_INTERVAL_MS).unref();
    return this.present;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.returning;
  }

  /** Whether the share is there and ready for writes; when not, it is looked for (at most every ASKED_LOOK_MS). */
  available(): boolean {
    if (!this.present && Date.now() - this.lookedAt >= ASKED_LOOK_MS) this.look();
    return this.present;
  }

  /** Whether the share is there now: one look, for what must not act on an absent one (forgetting an object whose file is missing). */
  there(): boolean {
    this.look();
    return this.present;
  }

  /** A folder without the volume file, or none on a share that holds nothing yet, becomes the store's. */
  private takes(found: Found): boolean {
    return found === 'unmarked' || (found === 'missing' && !this.statements.anyBucket.get());
  }

  private look(): void {
    if (this.returning) return;
    this.lookedAt = Date.now();
    const found = this.find();
    if (found === 'ours' || this.takes(found)) {
      if (!this.present || found !== 'ours') this.catchUp(found !== 'ours');
    } else if (this.present) {
      this.present = false;
      this.reportAbsent(found);
    }
  }

  /** The volume is back (marked first when new): the store catches up with it before writes are let in. */
  private catchUp(mark: boolean): void {
    this.present = false;
    this.returning = (async () => {
      if (mark) await this.mark();
      await this.onReturn();
      this.present = true;
      this.log.info({ shareRoot: this.shareRoot }, 'file share: the volume is there; writes that need it are accepted again');
    })().catch((error) => this.log.error({ err: error, shareRoot: this.shareRoot }, 'file share: the volume is there but the store could not catch up with it; trying again shortly'))
      .finally(() => { this.returning = undefined; });
  }

  private find(): Found {
    let folder;
    try {
      folder = lstatSync(this.folder, { throwIfNoEntry: false });
    } catch {
      // EIO of a drive pulled out, EACCES: not there for the store either
      return 'missing';
    }
    if (!folder?.isDirectory()) return 'missing';
    let named: string;
    try {
      named = readFileSync(join(this.folder, VOLUME_FILE), 'utf8').trim();
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'unmarked' : 'missing';
    }
    if (named === '') return 'unmarked';
    return named === this.id ? 'ours' : 'foreign';
  }

  /** Names the volume with a new id: the database's first (a crash between leaves the folder unmarked, taken again). */
  private async mark(): Promise<void> {
    await makeDirectories(this.folder, 0o750);
    const id = randomBytes(16).toString('hex');
    await this.store.commit.run(() => this.statements.setId.run(id), { singleStatement: true });
    this.id = id;
    const fd = openSync(join(this.folder, VOLUME_FILE), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o640);
    try {
      writeSync(fd, `${id}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await syncPath(this.folder);
  }

  private reportAbsent(found: Found): void {
    this.log.error({ shareRoot: this.shareRoot, found: found === 'foreign' ? `${VOLUME_FILE} of another store` : `no ${this.folder}` },
      'file share: the share\'s volume is not there (not mounted?): objects stored in it answer 503, writes are refused and the share is not scanned until it is back');
  }
}
