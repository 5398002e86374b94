import { z } from 'zod/v3';
import { bool, positiveInt } from '../../config/fields.js';

/** `s3.share.*`: the file share, each bucket a directory of plain files under `s3.shareRoot`. */
export const shareSchema = z.strictObject({
  /** Adopt files local programs write into (or delete from) the share as objects. Objects PUT over S3 are files either way. */
  watch: bool(true),
  /** A file becomes an object once nothing changed it (mtime and ctime) for this long: writers are done with it. */
  settleMs: positiveInt(2000, 'milliseconds ≥ 1'),
  /** How often the share is scanned: each scan stats every file and every object of the buckets once. */
  scanIntervalMs: positiveInt(5000, 'milliseconds ≥ 1'),
});

export type ShareConfig = z.infer<typeof shareSchema>;
