import { z } from 'zod/v3';
import { bool, host, integer, list, path, port, positiveInt, range, seconds, text } from '../config/fields.js';
import { shareSchema } from './share/config.js';

const WRITE_BUFFER_EXPECTED = 'expected 65536, 131072, 262144, 524288 or 1048576 (bytes)';

/** `s3.*`: the S3-compatible object store and its file share. */
export const s3Schema = () => z.strictObject({
  host: host('0.0.0.0'),
  /** Port of the S3 API (MinIO's default). */
  port: port(9000),
  /** The region the API claims (GetBucketLocation, event records, SigV4 scope). */
  region: text('expected a region name (e.g. "us-east-1")').default('us-east-1'),
  /** Where each bucket is a directory of plain files; default `<dataDir>/share`. Must be one filesystem with its `.outpost` folder (renames). */
  shareRoot: path().optional(),
  /** Host names for virtual-host-style addressing: `BUCKET.<domain>` names BUCKET. */
  domains: list('expected a list of host names', 'expected a host name').default(['localhost']),
  /** Buckets anyone may read without signing (GetObject, HeadObject, ListObjects). */
  publicReadBuckets: list('expected a list of bucket names', 'expected a bucket name').default([]),
  /**
   * PutObject and CopyObject bodies of at most this many bytes are stored in SQLite with the
   * metadata (one WAL fsync covers a tick's writes) and served from there; the share file is a copy
   * written after the answer. Each is held in memory while it arrives. 0 stores every body as a file.
   */
  smallObjectBytes: integer('expected a size in bytes from 0 to 1048576').min(0, 'expected a size in bytes from 0 to 1048576')
    .max(1024 * 1024, 'expected a size in bytes from 0 to 1048576').default(64 * 1024),
  /**
   * A large body (PutObject, UploadPart of 1 MiB or more) streams to its file through four buffers
   * of this size, each written while the next ones fill and hashed (MD5) in the objects thread:
   * larger buffers cost less CPU per MiB (each is a write and a round trip to the thread; 1 MiB
   * against 256 KiB: 6-19 % less CPU for a 64 MiB PUT, 8-22 % less of the event loop's),
   * smaller ones less memory (four per body read at once, two at once, sets for up to four kept
   * for the next bodies until 10 s idle). A power of two from 64 KiB to 1 MiB.
   */
  writeBufferBytes: range(WRITE_BUFFER_EXPECTED, 64 * 1024, 1024 * 1024).refine((bytes) => (bytes & (bytes - 1)) === 0, { message: WRITE_BUFFER_EXPECTED })
    .default(256 * 1024),
  /** Largest single PutObject / UploadPart body; AWS's limit is 5 GiB. */
  maxObjectBytes: positiveInt(5 * 1024 ** 3, 'bytes ≥ 1'),
  /** AWS's minimum size of every part but the last; lower it only for tests. */
  minPartBytes: positiveInt(5 * 1024 * 1024, 'bytes ≥ 1'),
  /**
   * Multipart uploads neither completed nor aborted this long after they were initiated are aborted
   * and their parts removed, as an S3 lifecycle AbortIncompleteMultipartUpload rule does (default 7 days).
   */
  abortIncompleteUploadsAfterSeconds: positiveInt(7 * 24 * 3600, 'seconds ≥ 1'),
  /**
   * How often the buckets' lifecycle rules are carried out (objects expired, uploads aborted); also
   * once at start. S3 rounds expiry to midnight UTC, so an hour late at most is on the day.
   */
  lifecycleIntervalSeconds: seconds().default(3600),
  /**
   * A request body that stops coming for this long is answered 400 RequestTimeout and its
   * connection closed, as S3 does after about 20 s, rather than holding the connection, the key and
   * a temporary file until the socket's own timeout (2 minutes). A body the gateway is slow to take
   * (a slow disk) does not count.
   */
  bodyIdleTimeoutSeconds: seconds().default(20),
  /** Connections open at once; one beyond it is closed as it is accepted (each holds up to 16 KiB of headers while they arrive). */
  maxConnections: positiveInt(128, 'connection count ≥ 1'),
  /** Events waiting for delivery to functions and the bus; beyond it writes are refused (503 SlowDown) until they drain. */
  maxPendingEvents: positiveInt(100000, 'event count ≥ 1'),
  /** The file share over `shareRoot` (docs/file-share.md). */
  share: shareSchema().default({}),
  tls: z.strictObject({
    enabled: bool(false),
    cert: path().optional(),
    key: path().optional(),
  }).refine((tls) => !tls.enabled || (tls.cert && tls.key), { message: 'expected "cert" and "key" when TLS is enabled' }).default({}),
});

export type S3Config = z.infer<ReturnType<typeof s3Schema>>;
