import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { RequestThread } from '../request-thread.js';
import { steadyNow } from '../steady-clock.js';
import type { CheckpointReply, CheckpointRequest } from './checkpoint-worker.js';

/** A checkpoint once the log holds this many frames (pages) not yet in the database: 16 MiB of 4 KiB pages. */
export const CHECKPOINT_FRAMES = 4096;
/** After a failed checkpoint the log is synced as usual for this long (SQLite's own checkpoint is the backstop). */
const PAUSE_AFTER_FAILURE_MS = 60_000;
// The wal-index header (sqlite.org/walformat.html, "The WAL-Index Header Format"), in the -shm
// file, native byte order: WalIndexHdr.mxFrame at 16, WalCkptInfo.nBackfill at 96.
const MX_FRAME_OFFSET = 16;
const N_BACKFILL_OFFSET = 96;

export interface CheckpointStats {
  checkpoints: number;
  failed: number;
}

/**
 * Checkpoints of the write-ahead log made on a thread of their own, in place of SQLite's, which run
 * at the end of a COMMIT on the event loop and stop it while they copy up to 16 MiB into the
 * database and fsync it (up to a second on an SD card). The group commit asks for one instead of
 * its sync of the log when the log has grown (`due`): no transaction is committed meanwhile, so
 * the checkpoint copies the whole log and the next write starts it again from its beginning.
 */
export class Checkpoints {
  private readonly thread = new RequestThread<CheckpointRequest, CheckpointReply>(new URL('./checkpoint-worker.js', import.meta.url),
    { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 });
  private indexFd: number | undefined;
  private readonly header = Buffer.alloc(N_BACKFILL_OFFSET + 4);
  private pausedUntil = 0;
  readonly stats: CheckpointStats = { checkpoints: 0, failed: 0 };

  constructor(private readonly file: string, private readonly onFailure: (error: Error) => void) {}

  /** Whether the log holds enough frames not yet in the database for a checkpoint. */
  due(): boolean {
    if (steadyNow() < this.pausedUntil) return false;
    return this.framesToCopy() >= CHECKPOINT_FRAMES;
  }

  /** Syncs the log (its commits are durable when this resolves), then checkpoints it; rejects if the log may not be synced. */
  async run(): Promise<void> {
    try {
      await this.thread.request({ file: this.file });
      this.stats.checkpoints++;
    } catch (error) {
      this.stats.failed++;
      this.pausedUntil = steadyNow() + PAUSE_AFTER_FAILURE_MS;
      this.onFailure(error as Error);
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.thread.stop();
    if (this.indexFd !== undefined) closeSync(this.indexFd);
    this.indexFd = undefined;
  }

  private framesToCopy(): number {
    try {
      this.indexFd ??= openSync(`${this.file}-shm`, 'r');
      if (readSync(this.indexFd, this.header, 0, this.header.length, 0) < this.header.length) return 0;
    } catch {
      return 0;
    }
    const read = endianness() === 'LE' ? 'readUInt32LE' : 'readUInt32BE';
    return this.header[read](MX_FRAME_OFFSET) - this.header[read](N_BACKFILL_OFFSET);
  }
}
