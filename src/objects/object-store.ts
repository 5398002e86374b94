import { createHash, randomBytes } from 'node:crypto';
import { close, closeSync, constants, fdatasync, fstat, fstatSync, open as openFd, openSync, read, readSync, write, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { link, lstat, mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, sep } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { makeDirectories, syncPath } from '../store/durable-directories.js';
import { errors, S3Error } from './errors.js';
import { checkBucketName, checkKey, keyCanBeFile, MAX_KEY_BYTES, sharePath } from './names.js';
import { guessContentType } from './content-type.js';
import { KeyLocks } from './key-locks.js';
import { ShareCopies } from './share-copies.js';
import { ShareVolume } from './share-volume.js';
import { BLOCKED, READ_NOT_WAITING, cannotBeDirectory, changedLocallySince, linkOnPath, lstatUnlessBlocked, type StoreFile } from './share-paths.js';
import { collectBufferGarbage } from '../buffer-garbage.js';
import { fileChunks } from './file-chunks.js';
import { BodyTurns, type BodyTurn } from './body-turns.js';
import { BufferSets, type LentBuffers } from './buffer-sets.js';
import { ContentHashes, type BodyHash } from './content-hash.js';
import { objectsThread } from './objects-thread.js';
import { checksummed, checksumMismatch, runningChecksum, type ChecksumAlgorithm } from '../auth/checksums.js';
import type { Tags } from './tags.js';

/** What S3 keeps of an object besides its content. */
export interface ObjectRecord {
  bucket: string;
  key: string;
  size: number;
  /** MD5 hex of the content, or of the parts' MD5s with `-N` (multipart); unquoted. */
  etag: string;
  contentType: string;
  /** `x-amz-meta-*` values by lower-case name without the prefix. */
  metadata: Record<string, string>;
  /** Stored response headers: Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires. */
  headers: Record<string, string>;
  /**
   * The checksums of the content the client uploaded it with and the server verified
   * (x-amz-checksum-crc32|crc32c|crc64nvme|sha1|sha256, base64 by lower-case algorithm name), or a
   * multipart object's (UploadChecksum: a COMPOSITE one ends in `-N`): returned on GET and HEAD
   * asked with x-amz-checksum-mode: ENABLED.
   */
  checksums?: Record<string, string>;
  /** A multipart object's part sizes in order: GetObject and HeadObject read a part by its number (`partNumber`). */
  parts?: number[];
  /**
   * A multipart object's part checksums in order (base64, of the algorithm of its checksum), when it
   * has one: sent with a part read by its number, and listed by GetObjectAttributes.
   */
  partChecksums?: string[];
  /** Its tags (x-amz-tagging, PutObjectTagging); none when it has none. */
  tags?: Tags;
  /** Epoch milliseconds. */
  lastModified: number;
  /** undefined: the content is the share file `<shareRoot>/<bucket>/<key>`; else a hidden blob's name. */
  blob?: string;
  /** Inode and mtime of the share file as the store wrote or imported it (tells external writes apart). */
  fileIno?: number;
  fileMtimeMs?: number;
  /**
   * Its ctime once in place: a change that kept the inode, size and mtime (`dd conv=notrunc` then
   * `touch -r`) moves it. Unknown for a while after a large write, and for files written before it was kept.
   */
  fileCtimeMs?: number;
  /**
   * The content is in SQLite (object_bodies), committed with the metadata: a small body. Its share
   * file is a copy written after the commit (ShareCopies); a blob of it has no file at all.
   */
  inline?: true;
}

/** An object and its content: in memory when held in SQLite, else an open handle on its file. */
export type OpenedObject = ObjectInMemory | { object: ObjectRecord; file: FileHandle; content?: undefined };
export interface ObjectInMemory { object: ObjectRecord; content: Buffer; file?: undefined }

/**
 * The share copies the store puts into place, announced before the rename (or, at a new path, the
 * link): each makes one watch event (IN_MOVED_TO, IN_CREATE), which the file share need not look at.
 */
export interface ShareRenames {
  /** A file of the store's is about to be renamed onto `path`. */
  renaming(path: string): void;
  /** The rename announced did not happen, or may not have (a local program's file was there, the copy failed). */
  notRenamed(path: string): void;
}

export interface BucketRecord {
  name: string;
  createdAt: number;
}

export type CreatedEvent = 'ObjectCreated:Put' | 'ObjectCreated:Post' | 'ObjectCreated:Copy' | 'ObjectCreated:CompleteMultipartUpload';
/** A deletion by a client (or a local program, in the share), or by a lifecycle rule's expiration. */
export type RemovedEvent = 'ObjectRemoved:Delete' | 'LifecycleExpiration:Delete';
/** PutObjectTagging, DeleteObjectTagging. */
export type TaggingEvent = 'ObjectTagging:Put' | 'ObjectTagging:Delete';
export type ObjectEventName = CreatedEvent | RemovedEvent | TaggingEvent;

/** The configurations stored with a bucket, as JSON: its notification rules, lifecycle rules, CORS rules and tags. */
export type BucketConfiguration = 'notification' | 'lifecycle' | 'cors' | 'tags';

/**
 * Where changes are reported: `record` is called inside the committing transaction, so the event
 * commits with the object; it returns the event's id (undefined when nobody would receive it: no
 * matching rule, no subscriber on the bus), and the event is held back until `release`,
 * which the store calls once the change's files are in place (a reader of the share, told of a
 * new object, finds its file).
 */
export interface ChangeLog {
  record(bucket: string, eventName: ObjectEventName, object: { key: string; size?: number; etag?: string }, origin: ChangeOrigin): number | undefined;
  /** The changes' files are in place, or their transaction failed: their events may go. */
  release(ids: number[]): void;
}

/** ChangeLog.record as a write inside commitWithIntents sees it. */
type RecordChange = (...change: Parameters<ChangeLog['record']>) => void;

/** Who caused a change, for the event record's userIdentity and requestParameters. */
export interface ChangeOrigin {
  principalId: string;
  sourceIp: string;
  requestId: string;
}

/** A check of the object a write or delete replaces (undefined: none), made under the key's lock; it throws to refuse. */
export type Condition = (current: ObjectRecord | undefined) => void;

export interface WriteOptions {
  contentType: string;
  metadata?: Record<string, string>;
  headers?: Record<string, string>;
  /**
   * The checksums of the content (ObjectRecord.checksums), read when the body has ended: the
   * request's verifier fills them in as the body streams.
   */
  checksums?: Record<string, string>;
  tags?: Tags;
  /** Content-MD5 (base64) to check; BadDigest when it differs. */
  contentMd5?: string;
  /** The announced length; IncompleteBody when the body is shorter, EntityTooLarge beyond the limit. */
  expectedSize?: number;
  /** Checked against the object the write replaces (If-None-Match, If-Match), under the key's lock. */
  condition?: Condition;
  /** A POST policy's content-length-range: EntityTooSmall / EntityTooLarge outside it (inclusive). */
  sizeRange?: { min: number; max: number };
  eventName: CreatedEvent;
  origin: ChangeOrigin;
}

export interface ListOptions {
  prefix: string;
  delimiter: string;
  /** Entries (keys and common prefixes) are strictly after this. */
  startAfter: string;
  maxKeys: number;
}

export interface ListResult {
  objects: ObjectRecord[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned: where the next page starts after. */
  last?: string;
}

export interface UploadListOptions {
  prefix: string;
  delimiter: string;
  keyMarker: string;
  uploadIdMarker: string;
  maxUploads: number;
}

export interface UploadListing {
  uploads: UploadRecord[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last entry listed: an upload (key and id) or a common prefix (key only). */
  last?: { key: string; uploadId?: string };
}

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  /** x-amz-checksum-algorithm and x-amz-checksum-type of CreateMultipartUpload: the object's checksum and how it is made. */
  checksum?: UploadChecksum;
  /** x-amz-tagging of CreateMultipartUpload: the object's tags. */
  tags?: Tags;
  initiated: number;
}

/**
 * A multipart object's checksum: COMPOSITE, the checksum of the parts' checksums with `-N`;
 * FULL_OBJECT, the checksum of the whole content (CRCs only).
 */
export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  type: 'COMPOSITE' | 'FULL_OBJECT';
}

export interface PartRecord {
  partNumber: number;
  size: number;
  etag: string;
  /** The part's checksum (base64) in its upload's algorithm, when the upload has one. */
  checksum?: string;
  lastModified: number;
}

/** A part named in CompleteMultipartUpload: its number, ETag and (optional) checksum in the upload's algorithm. */
export interface RequestedPart {
  partNumber: number;
  etag: string;
  checksum?: string;
}

/** What CompleteMultipartUpload checks besides the parts: the object's checksum (x-amz-checksum-*), and If-Match / If-None-Match. */
export interface CompletionChecks {
  expectedChecksum?: string;
  condition?: Condition;
}

export interface StoreLimits {
  maxObjectBytes: number;
  minPartBytes: number;
  /** Bodies of at most this many bytes (announced) are stored in SQLite (ObjectRecord.inline). */
  smallObjectBytes: number;
  /** Size of each of a body's write buffers (FileWriter); divides BufferSets' slab (s3.writeBufferBytes). */
  writeBufferBytes: number;
}

interface ObjectRow {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  content_type: string;
  metadata: string | null;
  last_modified: number;
  blob: string | null;
  file_ino: number | null;
  file_mtime_ms: number | null;
  file_ctime_ms: number | null;
  inline?: number;
}

interface UploadRow {
  upload_id: string;
  bucket: string;
  key: string;
  content_type: string;
  metadata: string | null;
  initiated: number;
}

/**
 * A file operation made durable by the transaction that needs it and redone at startup when a
 * crash interrupted it. `remove` takes a file only (a directory in its place is some other
 * objects' and stays); `removeTree` is for the store's own folders (an upload's parts).
 */
type FileIntent = RenameIntent | RemoveIntent | { op: 'removeTree'; target: string };

/**
 * A file removed; `object` names the deleted object whose share file it is. Redone at startup, the
 * removal is skipped when that key is an object again: the file there is the later write's (an intent
 * whose record could not be forgotten, on a full disk, stays to be redone after such a write).
 */
interface RemoveIntent {
  op: 'remove';
  target: string;
  object?: { bucket: string; key: string };
}

/**
 * A rename into place; `object` names the object whose content it is when the target is its share
 * file. There, a file a local program changed after `localWritesAfter` (when the S3 write began)
 * stays, unless it is one of `replaces`, the store's files of the key (placeShareFile).
 */
interface RenameIntent {
  op: 'rename';
  source: string;
  target: string;
  object?: { bucket: string; key: string; ino: number };
  localWritesAfter?: number;
  replaces?: StoreFile[];
}

/** The object store's tables (service 'objects'); applied by the service before the store and its event log are built. */
export const objectMigrations = [
  `CREATE TABLE object_buckets (
     name TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     notification TEXT
   ) WITHOUT ROWID;
   -- (bucket, key) in binary (UTF-8) order is S3's listing order: the ordered key index.
   CREATE TABLE objects (
     bucket TEXT NOT NULL,
     key TEXT NOT NULL,
     size INTEGER NOT NULL,
     etag TEXT NOT NULL,
     content_type TEXT NOT NULL,
     metadata TEXT,
     last_modified INTEGER NOT NULL,
     blob TEXT,
     file_ino INTEGER,
     file_mtime_ms REAL,
     PRIMARY KEY (bucket, key)
   ) WITHOUT ROWID;
   CREATE TABLE object_uploads (
     upload_id TEXT PRIMARY KEY,
     bucket TEXT NOT NULL,
     key TEXT NOT NULL,
     content_type TEXT NOT NULL,
     metadata TEXT,
     initiated INTEGER NOT NULL
   );
   CREATE INDEX object_uploads_by_key ON object_uploads (bucket, key, initiated);
   CREATE TABLE object_parts (
     upload_id TEXT NOT NULL REFERENCES object_uploads (upload_id) ON DELETE CASCADE,
     part_number INTEGER NOT NULL,
     size INTEGER NOT NULL,
     etag TEXT NOT NULL,
     last_modified INTEGER NOT NULL,
     PRIMARY KEY (upload_id, part_number)
   ) WITHOUT ROWID;
   CREATE TABLE object_file_intents (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     intent TEXT NOT NULL
   );
   CREATE TABLE object_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     bucket TEXT NOT NULL,
     record TEXT NOT NULL,
     targets TEXT NOT NULL
   );`,
  // Small objects: the content commits with the metadata (one WAL fsync for a tick of PUTs); the
  // share file is a copy written after the commit, pending until file_ino records it durable.
  `ALTER TABLE objects ADD COLUMN inline INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE object_contents (
     bucket TEXT NOT NULL,
     key TEXT NOT NULL,
     content BLOB NOT NULL,
     PRIMARY KEY (bucket, key)
   ) WITHOUT ROWID;
   CREATE INDEX objects_pending_copies ON objects (bucket, key) WHERE inline = 1 AND blob IS NULL AND file_ino IS NULL;
   -- the content goes with its object: replaced by a file-backed version, or deleted
   CREATE TRIGGER object_contents_on_insert AFTER INSERT ON objects WHEN NEW.inline = 0 BEGIN
     DELETE FROM object_contents WHERE bucket = NEW.bucket AND key = NEW.key;
   END;
   CREATE TRIGGER object_contents_on_delete AFTER DELETE ON objects BEGIN
     DELETE FROM object_contents WHERE bucket = OLD.bucket AND key = OLD.key;
   END;`,
  // Small bodies in the order written (a rowid table), each object pointing at its own: a PUT appends
  // to the table's last page, which one transaction's PUTs share, instead of going in among the keys
  // (object_contents was in key order: a page of its own to find, read and write back per PUT).
  `CREATE TABLE object_bodies (id INTEGER PRIMARY KEY, content BLOB NOT NULL);
   ALTER TABLE objects ADD COLUMN body INTEGER;
   UPDATE objects SET body = numbered.id
     FROM (SELECT bucket, key, row_number() OVER (ORDER BY bucket, key) AS id FROM object_contents) AS numbered
     WHERE numbered.bucket = objects.bucket AND numbered.key = objects.key;
   INSERT INTO object_bodies (id, content)
     SELECT objects.body, object_contents.content FROM objects JOIN object_contents USING (bucket, key) WHERE objects.body IS NOT NULL;
   DROP TRIGGER object_contents_on_insert;
   DROP TRIGGER object_contents_on_delete;
   DROP TABLE object_contents;
   -- the body goes with its object: replaced (INSERT OR REPLACE deletes the old row without firing
   -- delete triggers, as recursive_triggers is off) or deleted
   CREATE TRIGGER object_bodies_on_replace BEFORE INSERT ON objects BEGIN
     DELETE FROM object_bodies WHERE id = (SELECT body FROM objects WHERE bucket = NEW.bucket AND key = NEW.key);
   END;
   CREATE TRIGGER object_bodies_on_delete AFTER DELETE ON objects WHEN OLD.body IS NOT NULL BEGIN
     DELETE FROM object_bodies WHERE id = OLD.body;
   END;`,
  // Multipart uploads with a checksum algorithm (UploadRecord.checksum, in the upload's metadata): each part's checksum.
  'ALTER TABLE object_parts ADD COLUMN checksum TEXT;',
  // A bucket's lifecycle configuration (PutBucketLifecycleConfiguration), as notification is stored.
  'ALTER TABLE object_buckets ADD COLUMN lifecycle TEXT;',
  // A bucket's CORS configuration (PutBucketCors).
  'ALTER TABLE object_buckets ADD COLUMN cors TEXT;',
  // A bucket's tags (PutBucketTagging, CreateBucket).
  'ALTER TABLE object_buckets ADD COLUMN tags TEXT;',
  // The id of the share's volume (ShareVolume), also in <shareRoot>/.outpost/volume.
  'CREATE TABLE object_share (only INTEGER PRIMARY KEY CHECK (only = 1), volume TEXT NOT NULL);',
  // The share file's ctime as the store left it (ObjectRecord.fileCtimeMs).
  'ALTER TABLE objects ADD COLUMN file_ctime_ms REAL;',
];

/** A large body's writeback starts after this many bytes rather than at its end (FileWriter). */
const FLUSH_AHEAD_BYTES = 8 * 1024 * 1024;

/** Write buffers of a body hashed in the objects thread (FileWriter). */
const HASHED_WRITE_BUFFERS = 4;

/**
 * Bodies of at least this size (or of no announced size) are large: read BODIES_AT_ONCE at a time
 * (BodyTurns), and hashed in the objects thread from the write buffers (HASH_OFF_THREAD); below
 * it the thread's round trips cost more than they spare the event loop.
 */
const LARGE_BODY_BYTES = 1024 * 1024;
const BODIES_AT_ONCE = 2;

/** Not on a board of one core, where hashing in the objects thread would only add ~15 % more CPU per MiB. */
const HASH_OFF_THREAD = availableParallelism() > 1;

/**
 * A FileWriter's buffers of `bytes`, when not lent: two (one filled while the other is written), or
 * four in memory shared with the objects thread when `hashed` (two more while those are hashed).
 */
function writeBuffers(hashed: boolean, bytes: number): Buffer[] {
  return Array.from({ length: hashed ? HASHED_WRITE_BUFFERS : 2 }, () => Buffer.from(hashed ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)));
}

/** Buckets existingBucket remembers (cleared when full: a gateway has a few). */
const KNOWN_BUCKETS = 1024;

/** The store's own folder inside the share root; bucket names cannot start with '.', so no bucket can be named so. */
export const STORE_FOLDER = '.outpost';

/**
 * Objects on disk: the content as plain files in the share (or hidden blobs when a key cannot be a
 * file), the metadata and ordered key index in SQLite.
 *
 * Crash safety: content is written to `.outpost/tmp`, fsynced, and only then does one group-committed
 * transaction record the metadata, the event and the *intent* to rename the temporary file into
 * place (and to remove what it replaces). The rename follows the commit; a crash in between is
 * repaired at startup by redoing the committed intents, and temporary files without one are
 * deleted. So after kill -9 an object is either the old one or the new one, whole.
 *
 * Keys that cannot be files are stored as blobs under `.outpost/blobs` and still listed and served
 * by S3: keys with an empty segment (`a//b`, `a/`, `/a`), a segment over 255 bytes, and a key whose
 * path is taken by the other kind (`a` when `a/b` exists as a file, `a/b` when `a` does). The first
 * one keeps the file.
 *
 * Small bodies (announced at most `smallObjectBytes`) skip the temporary file: the content commits
 * in SQLite with the metadata and the event, and ShareCopies writes the share file after the
 * commit, off the answer's path (see ObjectRecord.inline).
 */
export class ObjectStore {
  private readonly db;
  private readonly locks = new KeyLocks();
  private readonly directorySyncs = new DirectorySyncs();
  private readonly tmpDir: string;
  private readonly blobDir: string;
  private readonly uploadDir: string;
  private readonly statements;
  private readonly shareCopies: ShareCopies;
  private readonly volume: ShareVolume;
  /** Hashes large bodies and writes share copies (ContentHashes, ShareCopies). */
  private readonly thread = objectsThread();
  private readonly contentHashes = new ContentHashes(this.thread);
  readonly bodyTurns = new BodyTurns(BODIES_AT_ONCE);
  /**
   * The write buffers of bodies hashed in the thread, kept for the next ones (BufferSets): the
   * thread's references to a body's memory last until its own collector runs, which it seldom does,
   * so a new set per body held 16 MiB of them through an `aws s3 cp` of 64 MiB (10 parts at once,
   * `heaptrack`). Twice the bodies read at once: a body whose sender stalled keeps its set while
   * the next one reads; more at once get sets of their own.
   */
  private readonly hashedWriteBuffers: BufferSets;
  /** Small objects whose share file is still to be written (a full or read-only share), for the metric and `outpost status`. */
  readonly shareCopiesPending = (): number => this.shareCopies.pendingCount();
  private readonly knownBuckets = new Map<string, BucketRecord>();
  /**
   * Configurations read (null: none), by kind and bucket: a write's event reads the notification
   * rules and a read the lifecycle rules (x-amz-expiration), each a SQLite read otherwise.
   */
  private readonly knownConfigurations: Record<BucketConfiguration, Map<string, string | null>> = { notification: new Map(), lifecycle: new Map(), cors: new Map(), tags: new Map() };
  /** Told when a bucket was created or deleted (the file share watches its directory, or forgets it). */
  private bucketsChangedListener: (() => void) | undefined;
  /** Told of the share copies about to be renamed into place (the file share knows their events for the store's). */
  private shareRenamesListener: ShareRenames | undefined;
  /**
   * The id of the next small body. Share copies tell an object's version by its body's id, so no id
   * is given twice while the daemon runs: SQLite's own rowid is the largest one + 1, which a deleted
   * newest body gave to the next PUT, and the late record of the deleted version's copy landed on
   * it. (After a restart no copy of before is waiting: the ids may start again from the largest.)
   */
  private nextBodyId: number;

  constructor(private readonly store: Store, readonly shareRoot: string, private readonly changes: ChangeLog, readonly limits: StoreLimits, private readonly log: Logger) {
    this.db = store.db;
    this.hashedWriteBuffers = new BufferSets(2 * BODIES_AT_ONCE, HASHED_WRITE_BUFFERS, limits.writeBufferBytes, () => writeBuffers(true, limits.writeBufferBytes));
    this.tmpDir = join(shareRoot, STORE_FOLDER, 'tmp');
    this.blobDir = join(shareRoot, STORE_FOLDER, 'blobs');
    this.uploadDir = join(shareRoot, STORE_FOLDER, 'uploads');
    const db = store.db;
    this.nextBodyId = (db.prepare('SELECT coalesce(max(id), 0) + 1 AS id FROM object_bodies').get() as { id: number }).id;
    this.statements = {
      bucket: db.prepare('SELECT name, created_at FROM object_buckets WHERE name = ?'),
      buckets: db.prepare('SELECT name, created_at FROM object_buckets ORDER BY name'),
      insertBucket: db.prepare('INSERT INTO object_buckets (name, created_at, tags) VALUES (?, ?, ?)'),
      deleteBucket: db.prepare('DELETE FROM object_buckets WHERE name = ?'),
      configuration: {
        notification: db.prepare('SELECT notification AS configuration FROM object_buckets WHERE name = ?'),
        lifecycle: db.prepare('SELECT lifecycle AS configuration FROM object_buckets WHERE name = ?'),
        cors: db.prepare('SELECT cors AS configuration FROM object_buckets WHERE name = ?'),
        tags: db.prepare('SELECT tags AS configuration FROM object_buckets WHERE name = ?'),
      },
      setConfiguration: {
        notification: db.prepare('UPDATE object_buckets SET notification = ? WHERE name = ?'),
        lifecycle: db.prepare('UPDATE object_buckets SET lifecycle = ? WHERE name = ?'),
        cors: db.prepare('UPDATE object_buckets SET cors = ? WHERE name = ?'),
        tags: db.prepare('UPDATE object_buckets SET tags = ? WHERE name = ?'),
      },
      bucketsWithLifecycle: db.prepare('SELECT name, lifecycle FROM object_buckets WHERE lifecycle IS NOT NULL ORDER BY name'),
      // a lifecycle pass's pages of a prefix's keys (what its filter and expiry look at): one bound each, which the key index seeks to
      expiryFirstPage: db.prepare('SELECT key, size, last_modified, metadata FROM objects WHERE bucket = ? AND key >= ? ORDER BY key LIMIT ?'),
      expiryPageAfter: db.prepare('SELECT key, size, last_modified, metadata FROM objects WHERE bucket = ? AND key > ? ORDER BY key LIMIT ?'),
      anyObject: db.prepare('SELECT 1 FROM objects WHERE bucket = ? LIMIT 1'),
      anyUpload: db.prepare('SELECT 1 FROM object_uploads WHERE bucket = ? LIMIT 1'),
      object: db.prepare('SELECT * FROM objects WHERE bucket = ? AND key = ?'),
      shareFileOf: db.prepare('SELECT size, blob, file_ino, file_mtime_ms, file_ctime_ms, inline FROM objects WHERE bucket = ? AND key = ?'),
      upsertObject: db.prepare(`INSERT OR REPLACE INTO objects (bucket, key, size, etag, content_type, metadata, last_modified, blob, file_ino, file_mtime_ms, file_ctime_ms)
        VALUES (@bucket, @key, @size, @etag, @content_type, @metadata, @last_modified, @blob, @file_ino, @file_mtime_ms, @file_ctime_ms)`),
      upsertInlineObject: db.prepare(`INSERT OR REPLACE INTO objects (bucket, key, size, etag, content_type, metadata, last_modified, blob, file_ino, file_mtime_ms, file_ctime_ms, inline, body)
        VALUES (@bucket, @key, @size, @etag, @content_type, @metadata, @last_modified, @blob, @file_ino, @file_mtime_ms, @file_ctime_ms, 1, @body)`),
      recordFileCtime: db.prepare('UPDATE objects SET file_ctime_ms = ? WHERE bucket = ? AND key = ? AND blob IS NULL AND file_ino = ? AND file_mtime_ms = ?'),
      insertBody: db.prepare('INSERT INTO object_bodies (id, content) VALUES (?, ?)'),
      setMetadata: db.prepare('UPDATE objects SET metadata = ? WHERE bucket = ? AND key = ?'),
      // GetObject of a small object: the metadata and the content held in SQLite in one statement
      objectWithContent: db.prepare(`SELECT objects.*, object_bodies.content FROM objects
        LEFT JOIN object_bodies ON object_bodies.id = objects.body
        WHERE objects.bucket = ? AND objects.key = ?`),
      deleteObject: db.prepare('DELETE FROM objects WHERE bucket = ? AND key = ?'),
      keysFrom: db.prepare('SELECT * FROM objects WHERE bucket = ? AND key >= ? ORDER BY key LIMIT ?'),
      keysAfter: db.prepare('SELECT * FROM objects WHERE bucket = ? AND key > ? ORDER BY key LIMIT ?'),
      blobInUse: db.prepare('SELECT 1 FROM objects WHERE blob = ? LIMIT 1'),
      insertIntent: db.prepare('INSERT INTO object_file_intents (intent) VALUES (?)'),
      updateIntent: db.prepare('UPDATE object_file_intents SET intent = ? WHERE id = ?'),
      moveToBlob: db.prepare(`UPDATE objects SET blob = ?, file_ino = ?, file_mtime_ms = NULL, file_ctime_ms = NULL
        WHERE bucket = ? AND key = ? AND blob IS NULL AND file_ino = ?`),
      deleteIntent: db.prepare('DELETE FROM object_file_intents WHERE id = ?'),
      intents: db.prepare('SELECT id, intent FROM object_file_intents ORDER BY id'),
      upload: db.prepare('SELECT * FROM object_uploads WHERE upload_id = ?'),
      insertUpload: db.prepare(`INSERT INTO object_uploads (upload_id, bucket, key, content_type, metadata, initiated)
        VALUES (@upload_id, @bucket, @key, @content_type, @metadata, @initiated)`),
      deleteUpload: db.prepare('DELETE FROM object_uploads WHERE upload_id = ?'),
      uploadIds: db.prepare('SELECT upload_id FROM object_uploads'),
      uploadsInitiatedBefore: db.prepare('SELECT * FROM object_uploads WHERE initiated < ? ORDER BY initiated LIMIT ?'),
      prefixUploadsInitiatedBefore: db.prepare(`SELECT * FROM object_uploads WHERE bucket = @bucket AND key >= @prefix AND substr(key, 1, length(@prefix)) = @prefix
        AND initiated < @before ORDER BY initiated LIMIT @limit`),
      // S3 ListMultipartUploads: by key, a key's uploads by initiation time
      uploadsAfter: db.prepare(`SELECT * FROM object_uploads WHERE bucket = @bucket AND (key, initiated, upload_id) > (@key, @initiated, @uploadId)
        ORDER BY key, initiated, upload_id LIMIT @limit`),
      upsertPart: db.prepare(`INSERT OR REPLACE INTO object_parts (upload_id, part_number, size, etag, last_modified, checksum)
        VALUES (?, ?, ?, ?, ?, ?)`),
      parts: db.prepare('SELECT part_number, size, etag, last_modified, checksum FROM object_parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?'),
      allParts: db.prepare('SELECT part_number, size, etag, last_modified, checksum FROM object_parts WHERE upload_id = ? ORDER BY part_number'),
    };
    this.volume = new ShareVolume(shareRoot, join(shareRoot, STORE_FOLDER), store, log, () => this.recoverFiles());
    this.shareCopies = new ShareCopies({
      store, locks: this.locks, changes, tmpDir: this.tmpDir, log, thread: this.thread, shareRoot,
      renames: {
        renaming: (path) => this.shareRenamesListener?.renaming(path),
        notRenamed: (path) => this.shareRenamesListener?.notRenamed(path),
      },
    });
  }

  /**
   * At start: finds the share's volume (ShareVolume), and repairs what a crash interrupted there;
   * with the volume absent, that waits for its return.
   */
  async recover(): Promise<void> {
    if (await this.volume.open()) await this.recoverFiles();
  }

  /** Redoes committed file intents, deletes uncommitted temporary files, orphan blobs and parts, writes pending share copies. */
  private async recoverFiles(): Promise<void> {
    for (const dir of [this.tmpDir, this.blobDir, this.uploadDir]) await makeDirectories(dir, 0o750);
    const intents = this.statements.intents.all() as Array<{ id: number; intent: string }>;
    const redone: number[] = [];
    const kept = new Set<string>();
    for (const { id, intent } of intents) {
      const parsed = JSON.parse(intent) as FileIntent;
      try {
        await this.apply(id, parsed, true);
        redone.push(id);
      } catch (error) {
        if (parsed.op === 'rename') kept.add(parsed.source);
        // kept for the next start; the object answers 503 meanwhile rather than the daemon not starting
        this.log.error({ err: error, intent }, 'could not redo a file operation of an interrupted write');
      }
    }
    if (redone.length) await this.store.commit.run(() => { for (const id of redone) this.statements.deleteIntent.run(id); });
    const leftovers = (await readdir(this.tmpDir)).filter((name) => !kept.has(join(this.tmpDir, name)));
    for (const name of leftovers) await rm(join(this.tmpDir, name), { force: true, recursive: true });
    let orphans = 0;
    for (const name of await readdir(this.blobDir)) {
      if (!this.statements.blobInUse.get(name)) { await rm(join(this.blobDir, name), { force: true }); orphans++; }
    }
    const uploads = new Set((this.statements.uploadIds.all() as Array<{ upload_id: string }>).map((row) => row.upload_id));
    for (const name of await readdir(this.uploadDir)) {
      if (!uploads.has(name)) { await rm(join(this.uploadDir, name), { force: true, recursive: true }); orphans++; }
    }
    const copies = await this.shareCopies.recover();
    if (intents.length || leftovers.length || orphans || copies) {
      this.log.info({ redone: redone.length, temporaryFiles: leftovers.length, orphans, shareCopies: copies }, 'object store recovered from an interrupted run');
    }
  }

  /** Waits for the share copies under way (at stop; what is left is written at the next start). */
  async close(): Promise<void> {
    await this.volume.stop();
    await this.shareCopies.drain();
    await this.thread.stop();
  }

  /** Whether the share's volume is there for writes (ShareVolume). */
  shareAvailable(): boolean {
    return this.volume.available();
  }

  /** Whether the share's volume is there now (one look): what a missing file says is only true of a volume that is. */
  shareThere(): boolean {
    return this.volume.there();
  }

  /** A path of the share not found because its drive went (not yet noticed): ServiceUnavailable; else `error`. */
  private orShareGone(error: unknown): unknown {
    return isCode(error, 'ENOENT') && !this.volume.there() ? errors.shareUnavailable() : error;
  }

  /**
   * ServiceUnavailable while the share's volume is not there: a write would make its directories on
   * the disk beneath. `look`: one look now, for what makes a directory before anything of the drive
   * is touched (a bucket's), and is rare; else the volume as last seen (at most 5 s ago).
   */
  private requireShare(look = false): void {
    if (!(look ? this.volume.there() : this.volume.available())) throw errors.shareUnavailable();
  }

  // ── buckets ────────────────────────────────────────────────────────────────────────────────

  bucket(name: string): BucketRecord | undefined {
    const row = this.statements.bucket.get(name) as { name: string; created_at: number } | undefined;
    return row && { name: row.name, createdAt: row.created_at };
  }

  /**
   * The bucket, or NoSuchBucket. The check before a request's work (writes check again in their
   * transaction): buckets found committed are remembered, as reading the row is a SQLite read
   * transaction of its own on every PUT, and forgotten when deleted.
   */
  existingBucket(name: string): BucketRecord {
    const known = this.knownBuckets.get(name);
    if (known) return known;
    const bucket = this.bucket(name);
    if (!bucket) throw errors.noSuchBucket(name);
    // a row read inside a transaction may yet be rolled back
    if (!this.db.inTransaction) {
      if (this.knownBuckets.size >= KNOWN_BUCKETS) this.knownBuckets.clear();
      this.knownBuckets.set(name, bucket);
    }
    return bucket;
  }

  buckets(): BucketRecord[] {
    return (this.statements.buckets.all() as Array<{ name: string; created_at: number }>).map((row) => ({ name: row.name, createdAt: row.created_at }));
  }

  /** Creates the bucket (with its tags, as JSON) and its share directory; BucketAlreadyOwnedByYou when it exists. */
  async createBucket(name: string, tags?: string): Promise<BucketRecord> {
    checkBucketName(name);
    if (this.bucket(name)) throw errors.bucketAlreadyOwnedByYou(name);
    this.requireShare(true);
    // one at a time with a deletion of the same name: its removal of the directory must not follow this mkdir
    return this.locks.with(bucketLock(name), async () => {
      // The directory first: a crash leaves at most an empty directory, never a bucket without one.
      await makeDirectories(join(this.shareRoot, name), 0o775);
      const createdAt = Date.now();
      await this.store.commit.run(() => {
        if (this.bucket(name)) throw errors.bucketAlreadyOwnedByYou(name);
        this.statements.insertBucket.run(name, createdAt, tags ?? null);
      });
      this.bucketsChangedListener?.();
      return { name, createdAt };
    });
  }

  onBucketsChanged(listener: (() => void) | undefined): void {
    this.bucketsChangedListener = listener;
  }

  onShareRenames(listener: ShareRenames | undefined): void {
    this.shareRenamesListener = listener;
  }

  /**
   * BucketNotEmpty while it has objects (as S3). Its multipart uploads in progress do not keep it,
   * as on S3 (`aws s3 rb --force`, `rclone purge` count on it): they are aborted, parts removed.
   */
  async deleteBucket(name: string): Promise<void> {
    this.existingBucket(name);
    this.requireShare();
    await this.locks.with(bucketLock(name), async () => {
      if (!this.statements.anyObject.get(name)) await this.abortUploadsInitiatedBefore(Number.MAX_SAFE_INTEGER, { bucket: name, prefix: '' });
      await this.store.commit.run(() => {
        if (!this.bucket(name)) throw errors.noSuchBucket(name);
        // an upload started since the ones aborted: the bucket is not empty after all
        if (this.statements.anyObject.get(name) || this.statements.anyUpload.get(name)) throw errors.bucketNotEmpty(name);
        this.statements.deleteBucket.run(name);
      });
      // after the commit: a check meanwhile still found the bucket
      this.knownBuckets.delete(name);
      for (const known of Object.values(this.knownConfigurations)) known.delete(name);
      await removeEmptyTree(join(this.shareRoot, name));
    });
    this.bucketsChangedListener?.();
  }

  /** The bucket's configuration of that kind as stored (JSON), or undefined. */
  configuration(bucket: string, kind: BucketConfiguration): string | undefined {
    const known = this.knownConfigurations[kind];
    const cached = known.get(bucket);
    if (cached !== undefined) return cached ?? undefined;
    const row = this.statements.configuration[kind].get(bucket) as { configuration: string | null } | undefined;
    // as existingBucket: a row read inside a transaction may yet be rolled back; a bucket that does not exist is not remembered
    if (row && !this.db.inTransaction) {
      if (known.size >= KNOWN_BUCKETS) known.clear();
      known.set(bucket, row.configuration);
    }
    return row?.configuration ?? undefined;
  }

  /**
   * Replaces the bucket's configuration of that kind (JSON) by what `change` makes of the stored one,
   * read in the write's transaction: two changes at once both count (or `change` throws and none is made).
   */
  async changeConfiguration(bucket: string, kind: BucketConfiguration, change: (current: string | undefined) => string | undefined): Promise<void> {
    await this.store.commit.run(() => {
      const row = this.statements.configuration[kind].get(bucket) as { configuration: string | null } | undefined;
      if (!row) throw errors.noSuchBucket(bucket);
      this.statements.setConfiguration[kind].run(change(row.configuration ?? undefined) ?? null, bucket);
    });
    // after the commit: a read meanwhile still found the old one
    this.knownConfigurations[kind].delete(bucket);
  }

  /** The buckets that have a lifecycle configuration, with it (JSON). */
  lifecycleConfigurations(): Array<{ bucket: string; lifecycle: string }> {
    return (this.statements.bucketsWithLifecycle.all() as Array<{ name: string; lifecycle: string }>).map((row) => ({ bucket: row.name, lifecycle: row.lifecycle }));
  }

  /**
   * Up to `limit` objects of the bucket whose keys start with `prefix`, after the key `after` (''
   * for the first page), in key order: their key, size, time of creation (lastModified), and with
   * `withTags` their tags (read from the metadata, which a pass over a million keys need not parse otherwise).
   */
  keysWithPrefix(bucket: string, prefix: string, after: string, limit: number, withTags = false): Array<Pick<ObjectRecord, 'key' | 'size' | 'lastModified' | 'tags'>> {
    // `after`, a key of the prefix, is past the prefix's first key
    const rows = (after ? this.statements.expiryPageAfter.all(bucket, after, limit) : this.statements.expiryFirstPage.all(bucket, prefix, limit)) as
      Array<{ key: string; size: number; last_modified: number; metadata: string | null }>;
    const within = rows.filter((row) => row.key.startsWith(prefix));
    return within.map((row) => ({ key: row.key, size: row.size, lastModified: row.last_modified, ...(withTags ? tagsOf(parseMetadata(row.metadata)) : {}) }));
  }

  // ── objects ────────────────────────────────────────────────────────────────────────────────

  object(bucket: string, key: string): ObjectRecord | undefined {
    const row = this.statements.object.get(bucket, key) as ObjectRow | undefined;
    return row && recordOf(row);
  }

  /** The object, or NoSuchKey (NoSuchBucket when the bucket is missing too). */
  existingObject(bucket: string, key: string): ObjectRecord {
    const object = this.object(bucket, key);
    if (object) return object;
    throw this.missingObject(bucket, key);
  }

  /** NoSuchKey, or NoSuchBucket when the bucket is missing too. */
  private missingObject(bucket: string, key: string): S3Error {
    this.existingBucket(bucket);
    return errors.noSuchKey(key);
  }

  /** Where the object's content is. */
  contentPath(object: Pick<ObjectRecord, 'bucket' | 'key' | 'blob'>): string {
    return object.blob ? join(this.blobDir, object.blob) : sharePath(this.shareRoot, object.bucket, object.key);
  }

  /**
   * The object and its content, taken together under the key's lock so that a concurrent overwrite
   * cannot pair the new metadata with the old content: content held in SQLite as a buffer, any
   * other as an open handle on its file, which the caller closes.
   */
  async open(bucket: string, key: string): Promise<OpenedObject> {
    return this.locks.with(`${bucket}/${key}`, async () => {
      // a write that held the lock may have left content in SQLite, whose share file may not be written yet
      const stored = this.readStored(bucket, key);
      if (stored.content) return stored;
      const { object } = stored;
      const file = await open(this.contentPath(object), READ_NOT_WAITING).catch((error) => {
        throw this.missingContent(error, object);
      });
      if (!object.blob) {
        // a local program changed the file; until the share adopts it the metadata does not describe it
        if (!sameFile(await file.stat(), { ino: object.fileIno!, size: object.size, mtimeMs: object.fileMtimeMs! })) {
          await file.close();
          throw errors.changedInShare(key);
        }
      }
      return { object, file };
    });
  }

  /**
   * A small object (at most `maxBytes`) and its whole content, read synchronously: a few page-cached
   * KiB cost a few µs this way against ~100 µs of promise and thread-pool round trips, and the disk
   * read holds the event loop no longer than SQLite's own reads do. An object whose content is in
   * SQLite comes from there, whatever its size. undefined when the object is larger or a write of it
   * is under way (then `open` waits for the write).
   */
  readSmall(bucket: string, key: string, maxBytes: number): ObjectInMemory | undefined {
    const stored = this.readStored(bucket, key);
    if (stored.content) return stored;
    const { object } = stored;
    if (this.locks.held(`${bucket}/${key}`) || object.size > maxBytes) return undefined;
    let fd: number;
    try {
      fd = openForReading(this.contentPath(object));
    } catch (error) {
      throw this.missingContent(error, object);
    }
    try {
      // a local program changed the file; until the share adopts it the metadata does not describe it
      if (!object.blob && !sameFile(fstatSync(fd), { ino: object.fileIno!, size: object.size, mtimeMs: object.fileMtimeMs! })) throw errors.changedInShare(key);
      const content = Buffer.allocUnsafe(object.size);
      for (let offset = 0; offset < content.length;) {
        const read = readSync(fd, content, offset, content.length - offset, offset);
        if (read === 0) throw errors.changedInShare(key);
        offset += read;
      }
      return { object, content };
    } finally {
      closeSync(fd);
    }
  }

  /** What a content file that cannot be opened answers: a share file changed by a local program, or the share's volume gone. */
  private missingContent(error: unknown, object: ObjectRecord): unknown {
    const gone = this.orShareGone(error);
    return gone === error && !object.blob && isCode(error, 'ENOENT', 'ENOTDIR', 'EISDIR') ? errors.changedInShare(object.key) : gone;
  }

  /** The object, with its content when that is held in SQLite (read with the metadata: it is the object's whatever its share file holds). */
  private readStored(bucket: string, key: string): ObjectInMemory | { object: ObjectRecord; content?: undefined } {
    const row = this.statements.objectWithContent.get(bucket, key) as (ObjectRow & { content: Buffer | null }) | undefined;
    if (!row) throw this.missingObject(bucket, key);
    const object = recordOf(row);
    return object.inline ? { object, content: row.content! } : { object };
  }

  /** Streams `body` into a new object (PutObject, CopyObject). */
  async put(bucket: string, key: string, body: AsyncIterable<Buffer>, options: WriteOptions): Promise<ObjectRecord> {
    // before the body: a local program's write of the path during the upload is the later one (ShareCopies)
    const began = Date.now();
    checkKey(key);
    this.existingBucket(bucket);
    this.requireShare();
    // (beyond maxObjectBytes, receive refuses it before reading)
    if (options.expectedSize !== undefined && options.expectedSize <= Math.min(this.limits.smallObjectBytes, this.limits.maxObjectBytes)) {
      return this.installSmall(bucket, key, await this.receiveSmall(body, { ...options, expectedSize: options.expectedSize }), options, began);
    }
    const content = await this.receive(body, options);
    return this.install(bucket, key, content, options, began, () => undefined);
  }

  /**
   * Deletes the object (its file too); a missing key is not an error (S3 DeleteObject is
   * idempotent). `condition` sees the object (or undefined) under the key's lock and throws to
   * refuse (conditional deletes). Resolves with whether an object was deleted. `eventName` names
   * the deletion in its event: a client's, or a lifecycle rule's expiration.
   */
  async remove(bucket: string, key: string, origin: ChangeOrigin, condition?: Condition, eventName: RemovedEvent = 'ObjectRemoved:Delete'): Promise<boolean> {
    // its file, left on a drive not mounted, would come back as a new object
    this.requireShare();
    return this.locks.with(`${bucket}/${key}`, async () => {
      const previous = this.object(bucket, key);
      condition?.(previous);
      if (!previous) return false;
      // an inline blob has no file
      const intents: FileIntent[] = previous.inline && previous.blob ? [] : [{ op: 'remove', target: this.contentPath(previous), ...(previous.blob ? {} : { object: { bucket, key } }) }];
      await this.commitWithIntents(intents, (_, record) => {
        this.statements.deleteObject.run(bucket, key);
        record(bucket, eventName, { key }, origin);
      });
      const path = this.contentPath(previous);
      if (!previous.blob && !linkOnPath(this.shareRoot, path)) await removeEmptyParents(path, join(this.shareRoot, bucket));
      return true;
    });
  }

  /**
   * Replaces an object's tags (none: removes them), its content, ETag and Last-Modified unchanged as
   * in S3, committed with the event of the operation (PutObjectTagging's, DeleteObjectTagging's).
   * NoSuchKey without the object.
   */
  async setTags(bucket: string, key: string, tags: Tags, eventName: TaggingEvent, origin: ChangeOrigin): Promise<void> {
    await this.locks.with(`${bucket}/${key}`, async () => {
      const { tags: _replaced, ...object } = this.existingObject(bucket, key);
      const tagged: ObjectRecord = { ...object, ...tagsOf({ tags }) };
      await this.commitWithIntents([], (_, record) => {
        // a delete may have committed meanwhile
        if (this.statements.setMetadata.run(metadataColumn(tagged), bucket, key).changes === 0) throw this.missingObject(bucket, key);
        record(bucket, eventName, { key, size: tagged.size, etag: tagged.etag }, origin);
      });
    });
  }

  /**
   * Adopts a file a local program wrote into the share at `<shareRoot>/<bucket>/<key>` (for the
   * file share's watcher, once the file `judged` has settled): computes its MD5 ETag and size,
   * guesses its Content-Type from the extension and commits the metadata and an `ObjectCreated:Put`
   * event. Resolves undefined when the file is the store's own after all. Rejects with
   * FileChangedError when the file is not the one judged or changes while it is read (try again
   * later), with the S3 error of a bad key or a missing bucket.
   */
  async importFile(bucket: string, key: string, judged: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>, origin: ChangeOrigin): Promise<ObjectRecord | undefined> {
    checkKey(key);
    this.existingBucket(bucket);
    const path = sharePath(this.shareRoot, bucket, key);
    const before = await stat(path);
    // the watcher's look may be old (an lstat that waited behind fsyncs in the thread pool): the
    // file there now has not been judged settled, nor not the store's
    if (!before.isFile() || !sameFile(before, judged)) throw new FileChangedError(path);
    // the store's own file, its ctime alone moved (a chmod, a hard link): read to tell whether the
    // content changed in place, and on disk already unless it did
    const storeFile = storeFileOf(this.object(bucket, key));
    const ownFile = storeFile !== undefined && sameFile(storeFile, before);
    const hash = createHash('md5');
    const file = await open(path, READ_NOT_WAITING);
    try {
      if (!sameFile(await file.stat(), before)) throw new FileChangedError(path);
      for await (const chunk of file.createReadStream({ autoClose: false, highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
      // on disk before the object and its event are: after a power cut a file the local program
      // never synced could come back empty or not at all, under an object a function acted on
      if (!ownFile) await file.datasync();
    } finally {
      await file.close();
    }
    if (!ownFile) await this.directorySyncs.sync(dirname(path));
    const etag = hash.digest('hex');
    return this.locks.with(`${bucket}/${key}`, async () => {
      const after = await stat(path).catch(() => undefined);
      if (!after || !sameFile(before, after)) throw new FileChangedError(path);
      const previous = this.object(bucket, key);
      // an S3 write of the key came after the file: its copy replaces the file shortly
      if (previous && copyPending(previous)) throw new FileChangedError(path);
      // the copy of an S3 write recorded since the watcher's look, or the store's file with only its
      // ctime moved (a chmod, a hard link, or an in-place write that kept the size and mtime)
      const current = storeFileOf(previous);
      if (current && sameFile(current, after)) {
        if (describes(previous!, after)) return undefined;
        if (await this.sameContent(previous!, path, etag)) {
          await this.store.commit.run(() => this.statements.recordFileCtime.run(after.ctimeMs, bucket, key, after.ino, after.mtimeMs));
          return undefined;
        }
        // changed in place: on disk before its new version is (read as the store's, it was not synced)
        await syncPath(path);
      }
      const record: ObjectRecord = {
        bucket, key, size: after.size, etag, contentType: guessContentType(key), metadata: {}, headers: {},
        lastModified: Date.now(), fileIno: after.ino, fileMtimeMs: after.mtimeMs, fileCtimeMs: after.ctimeMs,
      };
      const intents: FileIntent[] = previous?.blob ? [{ op: 'remove', target: this.contentPath(previous) }] : [];
      await this.commitWithIntents(intents, (_, recordChange) => {
        // a DeleteBucket may have committed while the file was hashed
        if (!this.bucket(bucket)) throw errors.noSuchBucket(bucket);
        this.statements.upsertObject.run(rowOf(record));
        recordChange(bucket, 'ObjectCreated:Put', { key, size: record.size, etag }, origin);
      });
      return record;
    });
  }

  /**
   * Whether a share file whose MD5 is `md5` holds the object's content: its ETag, or for a multipart
   * object the MD5 of its parts' MD5s (the file read again in the object's parts).
   */
  private async sameContent(object: ObjectRecord, path: string, md5: string): Promise<boolean> {
    if (!object.parts) return object.etag === md5;
    const partMd5s: Buffer[] = [];
    const file = await open(path, READ_NOT_WAITING);
    try {
      let position = 0;
      for (const size of object.parts) {
        const hash = createHash('md5');
        if (size > 0) {
          for await (const chunk of file.createReadStream({ start: position, end: position + size - 1, autoClose: false, highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
        }
        partMd5s.push(hash.digest());
        position += size;
      }
    } finally {
      await file.close();
    }
    return object.etag === multipartEtag(partMd5s);
  }

  /**
   * For the file share's watcher: a share file was deleted by a local program. Removes the object
   * whose content that file was (not one stored as a blob) and records `ObjectRemoved:Delete`.
   * `copy pending`: a small object's copy is not recorded yet, and the file gone may be that copy
   * (placed, then deleted) or not written yet: look again once it is recorded.
   */
  async forgetFile(bucket: string, key: string, origin: ChangeOrigin): Promise<'forgotten' | 'kept' | 'copy pending'> {
    return this.locks.with(`${bucket}/${key}`, async () => {
      const previous = this.object(bucket, key);
      if (!previous || !standsForShareFile(previous)) return 'kept';
      const awaitsLocalFile = previous.blob !== undefined;
      if (copyPending(previous)) return 'copy pending';
      // a directory (or a link) of the same name is not the object's file, nor one beyond a link in a directory's place
      const path = sharePath(this.shareRoot, bucket, key);
      const stillThere = linkOnPath(this.shareRoot, path) ? undefined : await lstat(path).catch(() => undefined);
      if (stillThere?.isFile()) return 'kept';
      await this.commitWithIntents(awaitsLocalFile ? [{ op: 'remove', target: this.contentPath(previous) }] : [], (_, record) => {
        this.statements.deleteObject.run(bucket, key);
        record(bucket, 'ObjectRemoved:Delete', { key }, origin);
      });
      return 'forgotten';
    });
  }

  /**
   * Whose a share file is, for the file share's watcher: `store` — exactly what the store wrote or
   * imported for its key (same inode, size, mtime and, where recorded, ctime); `copy pending` — a small object's copy is about
   * to replace it, unless a local program wrote it after the S3 write began (ShareCopies leaves that
   * file in place): look again later; `local` — any other file, a local program's, to adopt.
   */
  shareFileOwner(bucket: string, key: string, file: Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>): 'store' | 'copy pending' | 'local' {
    // the file's columns only: the watcher asks this for every share copy the store writes
    const object = this.statements.shareFileOf.get(bucket, key) as Pick<ObjectRow, 'size' | 'blob' | 'file_ino' | 'file_mtime_ms' | 'file_ctime_ms' | 'inline'> | undefined;
    if (!object || object.blob) return 'local';
    if (object.inline && object.file_ino === null) return 'copy pending';
    return describes({ fileIno: object.file_ino ?? undefined, size: object.size, fileMtimeMs: object.file_mtime_ms ?? undefined, fileCtimeMs: object.file_ctime_ms ?? undefined }, file) ? 'store' : 'local';
  }

  /** Ordered listing from the key index (ListObjects, ListObjectsV2, ListObjectVersions). */
  list(bucket: string, options: ListOptions): ListResult {
    const { prefix, delimiter, startAfter, maxKeys } = options;
    const result: ListResult = { objects: [], commonPrefixes: [], isTruncated: false };
    if (maxKeys <= 0) return result;
    // S3 and SQLite order keys by their UTF-8 bytes, which JS's < does not follow past U+FFFF
    let cursor = utf8Compare(startAfter, prefix) >= 0 ? startAfter : prefix;
    let inclusive = cursor !== startAfter;
    const page = 256;
    for (;;) {
      const rows = (inclusive ? this.statements.keysFrom : this.statements.keysAfter).all(bucket, cursor, page) as ObjectRow[];
      let jumped = false;
      for (const row of rows) {
        if (!row.key.startsWith(prefix)) return result;
        const cut = delimiter ? row.key.indexOf(delimiter, prefix.length) : -1;
        const entry = cut >= 0 ? row.key.slice(0, cut + delimiter.length) : row.key;
        // every row sorts after startAfter: its common prefix is not after it only when startAfter is in it
        if (cut >= 0 && startAfter.startsWith(entry)) {
          // a common prefix the previous page ended with: skip all its keys at once
          cursor = pastPrefix(entry);
          inclusive = false;
          jumped = true;
          break;
        }
        if (result.objects.length + result.commonPrefixes.length === maxKeys) {
          result.isTruncated = true;
          return result;
        }
        result.last = entry;
        if (cut < 0) {
          result.objects.push(recordOf(row));
          cursor = row.key;
          inclusive = false;
          continue;
        }
        result.commonPrefixes.push(entry);
        cursor = pastPrefix(entry);
        inclusive = false;
        jumped = true;
        break;
      }
      if (!jumped && rows.length < page) return result;
    }
  }

  // ── multipart uploads ──────────────────────────────────────────────────────────────────────

  async createUpload(bucket: string, key: string, options: Pick<WriteOptions, 'contentType' | 'metadata' | 'headers' | 'tags'> & { checksum?: UploadChecksum }): Promise<UploadRecord> {
    checkKey(key);
    this.existingBucket(bucket);
    this.requireShare();
    const upload: UploadRecord = {
      // hex: an id starting with '-' would be taken for an option by the AWS CLI (--upload-id -x…)
      uploadId: randomBytes(24).toString('hex'), bucket, key, contentType: options.contentType,
      metadata: options.metadata ?? {}, headers: options.headers ?? {}, ...(options.checksum ? { checksum: options.checksum } : {}), ...tagsOf(options), initiated: Date.now(),
    };
    const partDir = join(this.uploadDir, upload.uploadId);
    // its parts' renames are synced in it, its own entry here. Not `mkdir -p`: the store's folder
    // gone with the share's drive is not to be made on the disk beneath (ShareVolume)
    await mkdir(partDir, { mode: 0o750 }).catch((error) => { throw this.orShareGone(error); });
    await syncPath(this.uploadDir);
    await this.store.commit.run(() => {
      // a DeleteBucket may have committed meanwhile
      if (!this.bucket(bucket)) throw errors.noSuchBucket(bucket);
      this.statements.insertUpload.run({
        upload_id: upload.uploadId, bucket, key, content_type: upload.contentType,
        metadata: metadataJson(upload.metadata, upload.headers, { checksum: upload.checksum, tags: upload.tags }), initiated: upload.initiated,
      });
    }).catch(async (error) => {
      await rm(partDir, { recursive: true, force: true });
      throw error;
    });
    return upload;
  }

  /** The upload of this bucket and key, or NoSuchUpload. */
  existingUpload(bucket: string, key: string, uploadId: string): UploadRecord {
    const row = this.statements.upload.get(uploadId) as UploadRow | undefined;
    if (!row || row.bucket !== bucket || row.key !== key) throw errors.noSuchUpload(uploadId);
    return uploadOf(row);
  }

  /** Stores a part; with the upload's checksum algorithm, its checksum computed on the way (whether the client sent it or not). */
  async putPart(upload: UploadRecord, partNumber: number, body: AsyncIterable<Buffer>, options: Pick<WriteOptions, 'contentMd5' | 'expectedSize'>): Promise<PartRecord> {
    this.requireShare();
    const checksum = upload.checksum && runningChecksum(upload.checksum.algorithm);
    const content = await this.receive(checksum ? checksummed(body, checksum) : body, options);
    const part: PartRecord = { partNumber, size: content.size, etag: content.etag, ...(checksum ? { checksum: checksum.digest() } : {}), lastModified: Date.now() };
    const target = join(this.uploadDir, upload.uploadId, String(partNumber));
    await this.locks.with(`upload:${upload.uploadId}`, () => this.commitWithIntents([{ op: 'rename', source: content.path, target }], () => {
      if (!this.statements.upload.get(upload.uploadId)) throw errors.noSuchUpload(upload.uploadId);
      this.statements.upsertPart.run(upload.uploadId, partNumber, part.size, part.etag, part.lastModified, part.checksum ?? null);
    })).catch(async (error) => {
      await rm(content.path, { force: true });
      throw error;
    });
    return part;
  }

  parts(uploadId: string, after: number, limit: number): PartRecord[] {
    return (this.statements.parts.all(uploadId, after, limit) as PartRow[]).map(partOf);
  }

  /**
   * S3 ListMultipartUploads: uploads in progress by key, a key's by initiation time, after
   * key-marker (and, of that key, after upload-id-marker; one gone since: after its id), with keys
   * holding the delimiter after the prefix rolled up into common prefixes, as a listing of objects.
   */
  uploads(bucket: string, options: UploadListOptions): UploadListing {
    const { prefix, delimiter, keyMarker, uploadIdMarker, maxUploads } = options;
    const listing: UploadListing = { uploads: [], commonPrefixes: [], isTruncated: false };
    if (maxUploads <= 0) return listing;
    const marker = keyMarker && uploadIdMarker ? this.statements.upload.get(uploadIdMarker) as UploadRow | undefined : undefined;
    const markerFound = marker !== undefined && marker.bucket === bucket && marker.key === keyMarker;
    // a cursor (key, initiated, upload id): every upload after it is a candidate
    let cursor = { key: prefix, initiated: -1, uploadId: '' };
    if (keyMarker && utf8Compare(keyMarker, prefix) >= 0) {
      cursor = markerFound ? { key: keyMarker, initiated: marker.initiated, uploadId: marker.upload_id }
        : { key: keyMarker, initiated: uploadIdMarker ? -1 : Number.MAX_SAFE_INTEGER, uploadId: '' };
    }
    const page = 256;
    for (;;) {
      const rows = this.statements.uploadsAfter.all({ bucket, ...cursor, limit: page }) as UploadRow[];
      let jumped = false;
      for (const row of rows) {
        if (!row.key.startsWith(prefix)) return listing;
        cursor = { key: row.key, initiated: row.initiated, uploadId: row.upload_id };
        // S3 ListMultipartUploads: an upload-id-marker of an upload gone since: that key's uploads with a greater id
        if (uploadIdMarker && !markerFound && row.key === keyMarker && row.upload_id <= uploadIdMarker) continue;
        const cut = delimiter ? row.key.indexOf(delimiter, prefix.length) : -1;
        const entry = cut >= 0 ? row.key.slice(0, cut + delimiter.length) : row.key;
        const listedBefore = cut >= 0 && keyMarker.startsWith(entry);
        if (!listedBefore && listing.uploads.length + listing.commonPrefixes.length === maxUploads) {
          listing.isTruncated = true;
          return listing;
        }
        if (cut < 0) {
          listing.uploads.push(uploadOf(row));
          listing.last = { key: row.key, uploadId: row.upload_id };
          continue;
        }
        if (!listedBefore) {
          listing.commonPrefixes.push(entry);
          listing.last = { key: entry };
        }
        // every upload under the common prefix at once
        cursor = { key: pastPrefix(entry), initiated: -1, uploadId: '' };
        jumped = true;
        break;
      }
      if (!jumped && rows.length < page) return listing;
    }
  }

  /**
   * CompleteMultipartUpload: checks the list (ascending, each part uploaded with that ETag and,
   * where given, that checksum; all but the last at least the minimum size), concatenates the
   * parts into one file and installs it, with the upload's checksum of them.
   */
  async completeUpload(upload: UploadRecord, requested: RequestedPart[], origin: ChangeOrigin, checks: CompletionChecks = {}): Promise<ObjectRecord> {
    if (requested.length === 0) throw errors.malformedXml();
    this.requireShare();
    // parts do not change under the concatenation, nor come back after it
    return this.locks.with(`upload:${upload.uploadId}`, () => this.concatenateParts(upload, requested, origin, checks));
  }

  private async concatenateParts(upload: UploadRecord, requested: RequestedPart[], origin: ChangeOrigin, { expectedChecksum, condition }: CompletionChecks): Promise<ObjectRecord> {
    if (!this.statements.upload.get(upload.uploadId)) throw errors.noSuchUpload(upload.uploadId);
    const stored = new Map((this.statements.allParts.all(upload.uploadId) as PartRow[]).map((row) => [row.part_number, partOf(row)]));
    const parts: PartRecord[] = [];
    for (const [index, wanted] of requested.entries()) {
      if (index > 0 && wanted.partNumber <= requested[index - 1].partNumber) throw errors.invalidPartOrder();
      const part = stored.get(wanted.partNumber);
      if (!part || part.etag !== wanted.etag.replace(/"/g, '')) throw errors.invalidPart(wanted.partNumber, wanted.etag);
      // S3 CompleteMultipartUpload: a part's checksum, when given, must be the one it was uploaded with
      if (wanted.checksum !== undefined && part.checksum !== undefined && wanted.checksum !== part.checksum) throw errors.invalidPart(wanted.partNumber, wanted.etag);
      parts.push(part);
    }
    for (const part of parts.slice(0, -1)) {
      if (part.size < this.limits.minPartBytes) throw errors.entityTooSmall(part.size, this.limits.minPartBytes, part);
    }
    const partDir = join(this.uploadDir, upload.uploadId);
    // parts stored before the upload's algorithm was kept have no checksum: then the object has none
    const checksum = upload.checksum && parts.every((part) => part.checksum !== undefined) ? upload.checksum : undefined;
    const whole = checksum?.type === 'FULL_OBJECT' ? runningChecksum(checksum.algorithm) : undefined;
    const contents = concatenate(parts.map((part) => ({ path: join(partDir, String(part.partNumber)), size: part.size })));
    const content = await this.receive(whole ? checksummed(contents, whole) : contents, {}, { fromParts: true });
    const checksumValue = checksum && (whole ? whole.digest() : compositeChecksum(checksum.algorithm, parts));
    if (checksum && expectedChecksum !== undefined && expectedChecksum !== checksumValue) {
      await rm(content.path, { force: true });
      throw checksumMismatch(checksum.algorithm);
    }
    const etag = multipartEtag(parts.map((part) => Buffer.from(part.etag, 'hex')));
    // the upload's write began when it was created: a local write of the path since is the later one
    return this.install(upload.bucket, upload.key, { ...content, etag }, {
      contentType: upload.contentType, metadata: upload.metadata, headers: upload.headers, tags: upload.tags, condition,
      ...(checksum ? { checksums: { [checksum.algorithm]: checksumValue! } } : {}),
      parts: parts.map((part) => part.size),
      ...(checksum ? { partChecksums: parts.map((part) => part.checksum!) } : {}),
      eventName: 'ObjectCreated:CompleteMultipartUpload', origin,
    }, upload.initiated, (intents) => {
      if (!this.statements.upload.get(upload.uploadId)) throw errors.noSuchUpload(upload.uploadId);
      this.statements.deleteUpload.run(upload.uploadId);
      intents.push({ op: 'removeTree', target: partDir });
    });
  }

  async abortUpload(upload: UploadRecord): Promise<void> {
    await this.locks.with(`upload:${upload.uploadId}`, () => this.commitWithIntents([{ op: 'removeTree', target: join(this.uploadDir, upload.uploadId) }], () => {
      if (!this.statements.deleteUpload.run(upload.uploadId).changes) throw errors.noSuchUpload(upload.uploadId);
    }));
  }

  /**
   * Aborts the multipart uploads initiated before `before` (epoch ms), as a lifecycle rule's
   * AbortIncompleteMultipartUpload does, removing their parts; resolves with how many. `within`
   * limits it to a bucket's keys starting with a prefix (a lifecycle rule's). Only reads while none
   * has expired, so an idle gateway does not write.
   */
  async abortUploadsInitiatedBefore(before: number, within?: { bucket: string; prefix: string }): Promise<number> {
    let aborted = 0;
    for (;;) {
      const rows = (within
        ? this.statements.prefixUploadsInitiatedBefore.all({ ...within, before, limit: 100 })
        : this.statements.uploadsInitiatedBefore.all(before, 100)) as UploadRow[];
      for (const row of rows) {
        // completed or aborted by its client meanwhile
        await this.abortUpload(uploadOf(row)).then(() => aborted++, (error) => { if (!(error instanceof S3Error)) throw error; });
      }
      if (rows.length < 100) return aborted;
    }
  }

  // ── steps ──────────────────────────────────────────────────────────────────────────────────

  /** Writes a body to a fsynced temporary file, hashing it on the way; checks length, size limits and Content-MD5. */
  private async receive(body: AsyncIterable<Buffer>, checks: Pick<WriteOptions, 'expectedSize' | 'contentMd5' | 'sizeRange'>): Promise<ReceivedContent>;
  /**
   * `fromParts`: the content of a multipart upload's parts, each received and checked already. Its
   * MD5 is not needed (the object's ETag is made of theirs), and maxObjectBytes, a limit on one
   * request's body, is not its limit (S3 takes objects up to 5 TiB in parts of up to 5 GiB).
   */
  private async receive(body: AsyncIterable<Buffer>, checks: Record<string, never>, options: { fromParts: true }): Promise<Omit<ReceivedContent, 'etag'>>;
  private async receive(body: AsyncIterable<Buffer>, checks: Pick<WriteOptions, 'expectedSize' | 'contentMd5' | 'sizeRange'>, { fromParts = false } = {}): Promise<Partial<ReceivedContent>> {
    const { expectedSize, sizeRange } = checks;
    const maxSize = fromParts ? Infinity : Math.min(this.limits.maxObjectBytes, sizeRange?.max ?? Infinity);
    if (expectedSize !== undefined && expectedSize > this.limits.maxObjectBytes) throw errors.entityTooLarge(expectedSize, this.limits.maxObjectBytes);
    const path = join(this.tmpDir, randomBytes(12).toString('hex'));
    // plain descriptors: a FileHandle's promises cost a third more CPU per call
    const fd = await fdOpen(path, 'wx', 0o644).catch((error) => { throw this.orShareGone(error); });
    // closed once only: a number closed twice may meanwhile name another file
    let closing: Promise<void> | undefined;
    const closeFile = () => (closing ??= fdClose(fd));
    let turn: BodyTurn | undefined;
    let offThread: BodyHash | undefined;
    let writer: FileWriter | undefined;
    let size = 0;
    try {
      // not parts concatenated from their files: they were read, checked and hashed already
      const large = !fromParts && (expectedSize === undefined || expectedSize >= LARGE_BODY_BYTES);
      if (large) turn = await this.bodyTurns.take();
      if (large && HASH_OFF_THREAD) offThread = this.contentHashes.body();
      const hash = offThread || fromParts ? undefined : createHash('md5');
      writer = new FileWriter(fd, { expectedSize, bufferBytes: this.limits.writeBufferBytes, hashedSets: this.hashedWriteBuffers }, offThread);
      for await (const chunk of body) {
        const inTurn = turn?.arrived(chunk.length);
        if (inTurn) await inTurn;
        size += chunk.length;
        checkGrowingBody(size, maxSize, expectedSize);
        hash?.update(chunk);
        const full = writer.append(chunk);
        if (full) await full;
        turn?.waiting();
      }
      turn?.leave();
      await writer.writeRest();
      const md5 = offThread ? await offThread.digest() : hash?.digest();
      checkWholeBody(size, md5, checks);
      await writer.sync();
      const stats = await fdStat(fd);
      await closeFile();
      return { path, size, ...(md5 ? { etag: md5.toString('hex') } : {}), ino: stats.ino, mtimeMs: stats.mtimeMs };
    } catch (error) {
      offThread?.discard();
      await writer?.settle();
      await closeFile().catch(() => undefined);
      await rm(path, { force: true });
      throw error;
    } finally {
      turn?.leave();
      writer?.release();
    }
  }

  /**
   * Moves received content into place under the key's lock: decides file or blob, commits the
   * metadata, the event, `extra` writes and the file intents in one transaction, then applies them.
   * `began`: when the S3 write began (epoch ms), after which a local write of the share path wins.
   */
  private async install(bucket: string, key: string, content: ReceivedContent, options: Omit<WriteOptions, 'expectedSize' | 'contentMd5'> & Pick<ObjectRecord, 'parts' | 'partChecksums'>,
    began: number, extra: (intents: FileIntent[]) => void): Promise<ObjectRecord> {
    try {
      return await this.locks.with(`${bucket}/${key}`, async () => {
        const previous = this.object(bucket, key);
        options.condition?.(previous);
        const asFile = await this.prepareSharePath(bucket, key);
        const record: ObjectRecord = {
          bucket, key, size: content.size, etag: content.etag, contentType: options.contentType,
          metadata: options.metadata ?? {}, headers: options.headers ?? {}, ...checksumsOf(options), ...tagsOf(options),
          ...(options.parts ? { parts: options.parts } : {}), ...(options.partChecksums ? { partChecksums: options.partChecksums } : {}),
          lastModified: Date.now(),
          ...(asFile ? { fileIno: content.ino, fileMtimeMs: content.mtimeMs } : { blob: randomBytes(16).toString('hex') }),
        };
        // the previous version's file, or its small copy put in place and not recorded yet. While a
        // small version's copy is still to be made, the file at the path may be any earlier version's
        // the store wrote, and is replaced whatever it is (a local write there too, as before).
        const replaces = [storeFileOf(previous), this.shareCopies.placedFile(bucket, key)].filter((file) => file !== undefined);
        const keepsLocalWrites = !(previous && copyPending(previous) && !this.shareCopies.placedFile(bucket, key));
        const intents: FileIntent[] = [{
          op: 'rename', source: content.path, target: this.contentPath(record),
          ...(record.blob ? {} : { object: { bucket, key, ino: content.ino }, ...(keepsLocalWrites ? { localWritesAfter: began, replaces } : {}) }),
        }];
        // the previous content, unless the new one replaces it in place (a file by a file)
        if (previous && (previous.blob || record.blob)) intents.push({ op: 'remove', target: this.contentPath(previous) });
        await this.commitWithIntents(intents, (_, recordChange) => {
          if (!this.bucket(bucket)) throw errors.noSuchBucket(bucket);
          extra(intents);
          this.statements.upsertObject.run(rowOf(record));
          recordChange(bucket, options.eventName, { key, size: record.size, etag: record.etag }, options.origin);
        });
        // as stored: a concurrent key may have taken the path, moving this content to a blob
        return this.existingObject(bucket, key);
      });
    } catch (error) {
      await rm(content.path, { force: true });
      throw error;
    }
  }

  /** A small body whole in memory (its announced size, at most `smallObjectBytes`), hashed; the checks of `receive`. */
  private async receiveSmall(body: AsyncIterable<Buffer>, checks: Pick<WriteOptions, 'contentMd5' | 'sizeRange'> & { expectedSize: number }): Promise<SmallContent> {
    const maxSize = Math.min(this.limits.maxObjectBytes, checks.sizeRange?.max ?? Infinity);
    const hash = createHash('md5');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      checkGrowingBody(size, maxSize, checks.expectedSize);
      hash.update(chunk);
      chunks.push(chunk);
    }
    const md5 = hash.digest();
    checkWholeBody(size, md5, checks);
    return { data: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), etag: md5.toString('hex') };
  }

  /**
   * Commits a small object, its content, its event and (when the previous content was a blob file)
   * the intent to remove that file in one transaction: the answer waits for that commit only. The
   * share file is written afterwards by ShareCopies, which releases the event once it is in place.
   */
  private async installSmall(bucket: string, key: string, content: SmallContent, options: Omit<WriteOptions, 'expectedSize' | 'contentMd5'>, began: number): Promise<ObjectRecord> {
    // bounded: a burst of small writes waits for the share copies rather than outgrowing them
    await this.shareCopies.room();
    return this.locks.with(`${bucket}/${key}`, async () => {
      // A conditional write looks at the object first, refused without waiting for a commit; any
      // other in its transaction, under the same lock: a read of its own is a read transaction of
      // its own (a lock taken and freed on the log's index, ~4 µs against ~1 µs inside).
      let previous = options.condition ? this.object(bucket, key) : undefined;
      options.condition?.(previous);
      const record: ObjectRecord = {
        bucket, key, size: content.data.length, etag: content.etag, contentType: options.contentType,
        metadata: options.metadata ?? {}, headers: options.headers ?? {}, ...checksumsOf(options), ...tagsOf(options), lastModified: Date.now(), inline: true,
        // a key that cannot be a file keeps its content in SQLite only
        ...(keyCanBeFile(key) ? {} : { blob: randomBytes(16).toString('hex') }),
      };
      await this.commitWithIntents([], (intents, recordChange) => {
        if (!this.bucket(bucket)) throw errors.noSuchBucket(bucket);
        if (!options.condition) previous = this.object(bucket, key);
        // a share file is replaced in place by the copy; a blob file is not
        if (previous?.blob && !previous.inline) intents.push({ op: 'remove', target: this.contentPath(previous) });
        const body = this.nextBodyId++;
        this.statements.insertBody.run(body, content.data);
        this.statements.upsertInlineObject.run({ ...rowOf(record), body });
        recordChange(bucket, options.eventName, { key, size: record.size, etag: record.etag }, options.origin);
      }, (events) => (record.blob ? this.changes.release(events) : this.shareCopies.schedule(bucket, key, events, storeFileOf(previous), { etag: record.etag, data: content.data }, began)));
      return record;
    });
  }

  /**
   * Whether the key can be the share file: its segments are file names, its parent directories
   * can be made (no file in the way, no symbolic link in their place) and its path is not a directory.
   */
  private async prepareSharePath(bucket: string, key: string): Promise<boolean> {
    if (!keyCanBeFile(key)) return false;
    const path = sharePath(this.shareRoot, bucket, key);
    if (linkOnPath(this.shareRoot, path)) return false;
    // lookups the kernel has cached are synchronous (µs, where a thread-pool round trip costs tens);
    // making directories writes to the disk, which the event loop must not wait for
    const parent = lstatUnlessBlocked(dirname(path));
    if (parent === BLOCKED) return false;
    if (!parent?.isDirectory()) {
      try {
        await makeDirectories(dirname(path), 0o775);
      } catch (error) {
        if (cannotBeDirectory(error)) return false;
        throw error;
      }
    }
    const existing = lstatUnlessBlocked(path);
    return existing !== BLOCKED && (!existing || existing.isFile());
  }

  /**
   * Commits `write` and the file intents (which `write` may add to) in one transaction, applies
   * them, then forgets them in a later group commit. The changes `write` records are held back
   * until the intents are applied, or once committed handed to `holdEvents` to release later.
   */
  private async commitWithIntents(intents: FileIntent[], write: (intents: FileIntent[], record: RecordChange) => void,
    holdEvents?: (events: number[]) => void): Promise<void> {
    const events: number[] = [];
    const record: RecordChange = (...change) => {
      const id = this.changes.record(...change);
      if (id !== undefined) events.push(id);
    };
    let committed = false;
    try {
      const ids = await this.store.commit.run(() => {
        write(intents, record);
        return intents.map((intent) => Number(this.statements.insertIntent.run(JSON.stringify(intent)).lastInsertRowid));
      });
      committed = true;
      const placed: Array<{ object: { bucket: string; key: string }; file: Stats }> = [];
      for (const [index, intent] of intents.entries()) {
        const file = await this.apply(ids[index], intent, false);
        if (file && intent.op === 'rename' && intent.object) placed.push({ object: intent.object, file });
      }
      if (ids.length) {
        void this.store.commit.run(() => {
          for (const id of ids) this.statements.deleteIntent.run(id);
          // the ctime the placing left (a crash before this leaves it unknown: the inode, size and mtime tell)
          for (const { object, file } of placed) this.statements.recordFileCtime.run(file.ctimeMs, object.bucket, object.key, file.ino, file.mtimeMs);
        })
          .catch((error) => this.log.warn({ err: error }, 'could not forget applied file intents; they are redone harmlessly at startup'));
      }
    } finally {
      if (committed && holdEvents) holdEvents(events);
      else this.changes.release(events);
    }
  }

  /** Carries out one intent; redone at startup, so each one is idempotent. Resolves with an object's share file once placed. */
  private async apply(id: number, intent: FileIntent, recovering: boolean): Promise<Stats | undefined> {
    if (intent.op === 'removeTree') {
      await rm(intent.target, { force: true, recursive: true });
      return;
    }
    if (intent.op === 'remove') {
      if (recovering && intent.object && this.object(intent.object.bucket, intent.object.key)) return;
      // a file beyond a link put in a directory's place is not the object's (linkOnPath)
      if (linkOnPath(this.shareRoot, intent.target)) return;
      await rm(intent.target, { force: true }).catch((error) => {
        if (!isCode(error, 'EISDIR', 'ERR_FS_EISDIR', 'ENOTDIR')) throw error;
      });
      // the intent is forgotten next, so the unlink must be on disk first (else a power cut brings
      // the file back, and the share imports it as an object again); a directory gone meanwhile
      // was emptied and removed by another key's delete
      await this.directorySyncs.sync(dirname(intent.target)).catch((error) => {
        if (!isCode(error, 'ENOENT', 'ENOTDIR')) throw error;
      });
      return;
    }
    // a link put in a directory's place since the path was judged free (prepareSharePath): not followed
    if (intent.object && linkOnPath(this.shareRoot, intent.target)) return this.moveToBlob(id, intent, intent.object);
    let placed: Stats | undefined;
    try {
      if (intent.object && intent.localWritesAfter !== undefined) {
        const outcome = await placeShareFile(intent as ShareFileIntent);
        if (!outcome) return this.moveToBlob(id, intent, intent.object, true);
        placed = outcome.file;
      } else await renameInto(intent.source, intent.target);
    } catch (error) {
      // at startup a missing source means the rename happened before the crash
      if (recovering && isCode(error, 'ENOENT')) return;
      // another key took the path meanwhile (`a` made a directory of `a/…`, or the reverse)
      if (intent.object && isCode(error, 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY', 'ENOENT')) return this.moveToBlob(id, intent, intent.object);
      throw error;
    }
    // the rename is durable only once its directory is
    await this.directorySyncs.sync(dirname(intent.target));
    return placed;
  }

  /**
   * Makes content whose share path is taken a blob: the object's row and the intent change first,
   * in one commit, then the rename follows (redone at startup like any intent). Content that is no
   * longer the object's (a later write replaced it) is dropped.
   */
  private async moveToBlob(id: number, intent: RenameIntent, object: NonNullable<RenameIntent['object']>, awaitsLocalFile = false): Promise<undefined> {
    const blob = randomBytes(16).toString('hex');
    const moved: RenameIntent = { op: 'rename', source: intent.source, target: join(this.blobDir, blob) };
    const stillOurs = await this.store.commit.run(() => {
      // file_ino 0 matches no file: the share adopts the local program's file at the path (or, if it goes, the object with it)
      const changed = this.statements.moveToBlob.run(blob, awaitsLocalFile ? 0 : null, object.bucket, object.key, object.ino).changes > 0;
      if (changed) this.statements.updateIntent.run(JSON.stringify(moved), id);
      return changed;
    });
    if (!stillOurs) {
      await rm(intent.source, { force: true });
      return;
    }
    await rename(moved.source, moved.target);
    await this.directorySyncs.sync(this.blobDir);
  }
}

/**
 * Opens a file to read, without updating its access time where the store owns it: an atime update
 * is an inode write the journal may make wait, which a synchronous open must not.
 */
function openForReading(path: string): number {
  try {
    return openSync(path, READ_NOT_WAITING | NOATIME);
  } catch (error) {
    // O_NOATIME is for the file's owner only (a local program may own a share file)
    if (NOATIME && isCode(error, 'EPERM')) return openSync(path, READ_NOT_WAITING);
    throw error;
  }
}

const NOATIME = constants.O_NOATIME ?? 0;

/**
 * Appends a body to a new file through buffers of its own: the caller's chunks are copied into one
 * while the ones before are being written, one write in flight. Writing from the same few buffers,
 * not from the chunks themselves, spares the thread pool touching each chunk's fresh memory on
 * another core: `perf` of a 64 MiB PUT (bench/objects) put the pool's writes at 1.4× the CPU of
 * the MD5 when they gathered the chunks, 0.65× from two reused buffers, and the copy costs the
 * main thread less than that. With `hash` (a large body) each buffer is also hashed in the objects
 * thread, from the same memory, while the next ones fill: four buffers, so that neither the
 * hash nor the write waits for the other's slower moments. Starts the disk's writeback early: each
 * time FLUSH_AHEAD_BYTES more were written, an fdatasync runs in the background, so the last one
 * has only the tail left to flush instead of the whole object. What it wrote counts towards the
 * next collection of dead body chunks (collectBufferGarbage).
 */
class FileWriter {
  /** Over memory shared with the objects thread when the body is hashed there. */
  private readonly buffers: Buffer[];
  private lent: LentBuffers | undefined;
  /** Per buffer: settles once its last write (and hash) is done, and it may be filled again. */
  private readonly free: Array<Promise<void>>;
  private filling = 0;
  private filled = 0;
  /** The last write started: the next follows it (they append in order). */
  private writing: Promise<void> = Promise.resolve();
  private flushing: Promise<void> | undefined;
  private written = 0;
  private flushedUpTo = 0;
  /** A failed write, hash or background flush, thrown by the next append or by writeRest. */
  private failure: { error: unknown } | undefined;

  /**
   * Buffers of `bufferBytes`, or of `expectedSize` (when the body announced one) for a body smaller
   * than that; a hashed body's full-size ones come from `hashedSets`. `hash`: each buffer is hashed
   * there as it is written, and filled again once both are done.
   */
  constructor(private readonly fd: number, { expectedSize, bufferBytes, hashedSets }: { expectedSize: number | undefined; bufferBytes: number; hashedSets: BufferSets }, private readonly hash?: BodyHash) {
    const bytes = Math.max(1, Math.min(bufferBytes, expectedSize ?? bufferBytes));
    this.lent = hash && bytes === bufferBytes ? hashedSets.lend() : undefined;
    this.buffers = this.lent?.buffers ?? writeBuffers(hash !== undefined, bytes);
    this.free = this.buffers.map(() => Promise.resolve());
  }

  /**
   * Copies `chunk` in; when that fills the buffer, returns a promise to await before the next
   * append (the buffer to fill next is free again).
   */
  append(chunk: Buffer): Promise<void> | undefined {
    const buffer = this.buffers[this.filling];
    const copied = copyInto(buffer, this.filled, chunk);
    this.filled += copied;
    if (this.filled < buffer.length) return undefined;
    const free = this.startWrite();
    // the rest of a chunk longer than what was left of the buffer goes into the next one once it is free
    return copied === chunk.length ? free : free.then(() => this.append(chunk.subarray(copied)));
  }

  /** Writes (and hashes) what is left. */
  async writeRest(): Promise<void> {
    if (this.filled > 0) void this.startWrite().catch(() => undefined);
    await this.settle();
    if (this.failure) throw this.failure.error;
  }

  /** Makes the whole file durable (once written). */
  async sync(): Promise<void> {
    await fdDatasync(this.fd);
  }

  /** Waits for the writes, hashes and flush in flight: the descriptor must not close under them, nor the hash go. */
  async settle(): Promise<void> {
    await Promise.all(this.free);
    await this.flushing;
  }

  /** Once settled: the buffers serve the next body. */
  release(): void {
    this.lent?.giveBack();
    this.lent = undefined;
  }

  /** Starts writing (and hashing) the buffer just filled; resolves once the next one to fill is free. */
  private startWrite(): Promise<void> {
    const index = this.filling;
    const bytes = this.filled;
    this.filling = (index + 1) % this.buffers.length;
    this.filled = 0;
    const write = this.writing.then(async () => {
      if (this.failure) return;
      await writeFully(this.fd, this.buffers[index], bytes);
      this.wrote(bytes);
    });
    const hashed = this.hash?.update(this.buffers[index].subarray(0, bytes));
    this.writing = write.catch(() => undefined);
    this.free[index] = (hashed ? Promise.all([write, hashed]) : write).then(() => undefined, (error: unknown) => { this.failure ??= { error }; });
    return this.free[this.filling].then(() => {
      if (this.failure) throw this.failure.error;
    });
  }

  private wrote(bytes: number): void {
    collectBufferGarbage(bytes);
    this.written += bytes;
    if (!this.flushing && this.written - this.flushedUpTo >= FLUSH_AHEAD_BYTES) {
      this.flushedUpTo = this.written;
      this.flushing = fdDatasync(this.fd)
        .catch((error: unknown) => { this.failure ??= { error }; })
        .finally(() => { this.flushing = undefined; });
    }
  }
}

/**
 * Copies as much of `source` as fits into `target` at `offset`; the bytes copied. Not
 * `source.copy(target)`: into a SharedArrayBuffer V8 copies with relaxed atomic stores, a byte at
 * a time when the two offsets differ in alignment, as they do for every chunk of a body after the
 * first (the request's head took the first one's start): 2 GB/s against 10 on this bench's machine,
 * 20 % of a 64 MiB PUT's main thread in `perf`. Buffer's fill from a buffer is a plain memcpy.
 */
function copyInto(target: Buffer, offset: number, source: Buffer): number {
  const bytes = Math.min(source.length, target.length - offset);
  if (bytes > 0) target.fill(source.subarray(0, bytes), offset, offset + bytes);
  return bytes;
}

/** write(2) may write less than asked (a signal, a full disk on the way to ENOSPC): the rest follows. */
async function writeFully(fd: number, buffer: Buffer, bytes: number): Promise<void> {
  for (let offset = 0; offset < bytes;) offset += (await fdWrite(fd, buffer, offset, bytes - offset, null)).bytesWritten;
}

const fdOpen = promisify(openFd);
const fdWrite = promisify(write);
const fdRead = promisify(read);
const fdDatasync = promisify(fdatasync);
const fdStat = promisify(fstat);
const fdClose = promisify(close);

type ShareFileIntent = RenameIntent & Required<Pick<RenameIntent, 'object' | 'localWritesAfter'>>;

/**
 * Puts an object's content at its share path, unless a local program wrote the path after the S3
 * write began: that later write stays (false), for the file share to adopt, as a small object's
 * copy leaves it (share-copy-worker.ts). The key's previous file is replaced by a rename; a new path
 * gets a hard link, which fails if a local program made the file after the look, where a rename
 * would replace it. Redone at startup: a link made before a crash leaves only the source to remove.
 * Resolves with the file as placed (its ctime moved by the link or rename; undefined when a local
 * program replaced it at once).
 */
async function placeShareFile(intent: ShareFileIntent): Promise<{ file: Stats | undefined } | false> {
  const existing = lstatUnlessBlocked(intent.target);
  if (existing && existing !== BLOCKED && existing.isFile() && existing.ino !== intent.object.ino
    && changedLocallySince(existing, intent.localWritesAfter, intent.replaces ?? [])) return false;
  // the key's previous file; or a directory, or a file in the way of one, of which the rename's error tells
  if (existing !== undefined && (existing === BLOCKED || existing.ino !== intent.object.ino)) {
    await rename(intent.source, intent.target);
    return { file: placedFile(intent) };
  }
  if (!existing) {
    try {
      await link(intent.source, intent.target);
    } catch (error) {
      // a file made since the look is a local program's, written after the S3 write began
      if (isCode(error, 'EEXIST')) return false;
      if (!isCode(error, 'ENOENT')) throw error;
      await makeDirectories(dirname(intent.target), 0o775);
      await link(intent.source, intent.target);
    }
  }
  await rm(intent.source, { force: true });
  return { file: placedFile(intent) };
}

/** The object's file at its share path, if it is still there. */
function placedFile(intent: ShareFileIntent): Stats | undefined {
  const file = lstatUnlessBlocked(intent.target);
  return file && file !== BLOCKED && file.ino === intent.object.ino ? file : undefined;
}

/** Renames, making the parent directory again when a concurrent delete removed it as empty. */
async function renameInto(source: string, target: string): Promise<void> {
  try {
    await rename(source, target);
  } catch (error) {
    if (!isCode(error, 'ENOENT')) throw error;
    await makeDirectories(dirname(target), 0o775);
    await rename(source, target);
  }
}

/**
 * fsync of a directory shared by the renames into it: a sync starts on the next turn of the event
 * loop and covers every rename finished before it started, so a burst of uploads into one
 * directory costs one directory fsync instead of one each.
 */
class DirectorySyncs {
  private readonly waiting = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    let next = this.waiting.get(dir);
    if (!next) {
      next = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.waiting.delete(dir);
        await syncPath(dir);
      });
      this.waiting.set(dir, next);
    }
    return next;
  }
}

/** Thrown by importFile when the file changes or disappears while it is read. */
export class FileChangedError extends Error {
  override name = 'FileChangedError';
  constructor(readonly path: string) {
    super(`${path} changed while it was imported`);
  }
}

interface SmallContent {
  data: Buffer;
  etag: string;
}

interface ReceivedContent {
  path: string;
  size: number;
  etag: string;
  ino: number;
  mtimeMs: number;
}

/** The files' contents one after the other (fileChunks: each chunk valid until the next is asked for). */
async function* concatenate(files: Array<{ path: string; size: number }>): AsyncIterable<Buffer> {
  for (const { path, size } of files) {
    const fd = await fdOpen(path, constants.O_RDONLY | NOATIME);
    try {
      yield* fileChunks((buffer, offset, length, position) => fdRead(fd, buffer, offset, length, position), 0, size - 1);
    } finally {
      await fdClose(fd);
    }
  }
}

/**
 * A key after every key starting with `prefix`, in UTF-8 byte order: the prefix followed by more
 * of the last code point (U+10FFFF) than any key has room for. (Adding one to the prefix's last
 * UTF-16 unit does not do: U+FFFF wraps to U+0000, a surrogate becomes U+FFFD, both sorting
 * before the prefix, and the listing would read the same keys again forever.)
 */
function pastPrefix(prefix: string): string {
  return prefix + '\u{10FFFF}'.repeat(MAX_KEY_BYTES / 4);
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A multipart object's ETag: the MD5 of its parts' MD5s, then `-` and how many there are. */
function multipartEtag(partMd5s: Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}

function sameFile(a: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>, b: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Whether `file` is the object's share file as the store left it: its ctime too, where recorded. */
function describes(object: Pick<ObjectRecord, 'fileIno' | 'size' | 'fileMtimeMs' | 'fileCtimeMs'>, file: Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>): boolean {
  return file.ino === object.fileIno && file.size === object.size && file.mtimeMs === object.fileMtimeMs
    && (object.fileCtimeMs === undefined || file.ctimeMs === object.fileCtimeMs);
}

/** The share file the store wrote or imported for the object, if it has one. */
function storeFileOf(object: ObjectRecord | undefined): StoreFile | undefined {
  if (!object || object.blob || !object.fileIno || object.fileMtimeMs === undefined) return undefined;
  return { ino: object.fileIno, size: object.size, mtimeMs: object.fileMtimeMs };
}

/** The lock of a bucket's creation and deletion: bucket names hold no `/` or `:`, so it is no object's (`bucket/key`) or upload's (`upload:id`). */
function bucketLock(name: string): string {
  return `bucket:${name}`;
}

/** An object held in SQLite whose share file is not written (or not durable) yet. */
/**
 * Whether the object is its share file, or awaits the local program's file at its path that won over
 * its write (a blob with file_ino 0, moveToBlob): the object goes if the file does. Other blobs have none.
 */
export function standsForShareFile(object: Pick<ObjectRecord, 'blob' | 'fileIno'>): boolean {
  return object.blob === undefined || object.fileIno === 0;
}

function copyPending(object: ObjectRecord): boolean {
  return !!object.inline && !object.blob && object.fileIno === undefined;
}

/** While a body arrives: EntityTooLarge past the limit, InvalidRequest past the announced length. */
function checkGrowingBody(size: number, maxSize: number, expectedSize: number | undefined): void {
  if (size > maxSize) throw errors.entityTooLarge(size, maxSize);
  if (expectedSize !== undefined && size > expectedSize) throw errors.invalidRequest('The body is longer than the Content-Length.');
}

/** Once a body ended: IncompleteBody, EntityTooSmall (a POST policy's range), BadDigest (Content-MD5). */
function checkWholeBody(size: number, md5: Buffer | undefined, checks: Pick<WriteOptions, 'expectedSize' | 'contentMd5' | 'sizeRange'>): void {
  const { expectedSize, contentMd5, sizeRange } = checks;
  if (expectedSize !== undefined && size < expectedSize) throw errors.incompleteBody();
  if (sizeRange && size < sizeRange.min) throw errors.entityTooSmall(size, sizeRange.min);
  if (contentMd5 !== undefined && md5?.toString('base64') !== contentMd5) throw errors.badDigest(contentMd5, md5?.toString('base64') ?? '');
}

/** Removes the directories left empty by a deleted file, up to (not including) the bucket directory. */
async function removeEmptyParents(file: string, bucketDir: string): Promise<void> {
  let dir = dirname(file);
  while (dir.startsWith(bucketDir + sep)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}

/** Removes a directory tree that holds no files (a deleted bucket); a tree with files is kept. */
async function removeEmptyTree(dir: string): Promise<boolean> {
  let entries;
  try { entries = await readdir(dir, { withFileTypes: true }); } catch { return true; }
  let empty = true;
  for (const entry of entries) {
    if (!entry.isDirectory() || !(await removeEmptyTree(join(dir, entry.name)))) empty = false;
  }
  if (empty) await rmdir(dir).catch(() => undefined);
  return empty;
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** What the metadata column keeps besides user metadata and stored headers: an object's checksums, parts and tags, an upload's checksum and tags. */
type MetadataExtras = Pick<ObjectRecord, 'checksums' | 'parts' | 'partChecksums' | 'tags'> & Pick<UploadRecord, 'checksum'>;

/** The metadata column: user metadata, stored headers and the extras that are set; null when all are empty. */
function metadataJson(metadata: Record<string, string>, headers: Record<string, string>, extras: MetadataExtras = {}): string | null {
  const set = Object.fromEntries(Object.entries(extras).filter(([, value]) => value !== undefined));
  if (!Object.keys(metadata).length && !Object.keys(headers).length && !Object.keys(set).length) return null;
  return JSON.stringify({ metadata, headers, ...set });
}

function parseMetadata(json: string | null): { metadata: Record<string, string>; headers: Record<string, string> } & MetadataExtras {
  return json ? JSON.parse(json) : { metadata: {}, headers: {} };
}

/** S3's COMPOSITE checksum of a multipart object: the checksum of the parts' checksums (binary, in order), then `-N`. */
function compositeChecksum(algorithm: ChecksumAlgorithm, parts: PartRecord[]): string {
  const checksum = runningChecksum(algorithm);
  for (const part of parts) checksum.update(Buffer.from(part.checksum!, 'base64'));
  return `${checksum.digest()}-${parts.length}`;
}

/** The write's checksums as a record's field: none when the client sent none. */
function checksumsOf(options: Pick<WriteOptions, 'checksums'>): { checksums?: Record<string, string> } {
  return options.checksums && Object.keys(options.checksums).length ? { checksums: { ...options.checksums } } : {};
}

function recordOf(row: ObjectRow): ObjectRecord {
  return {
    bucket: row.bucket, key: row.key, size: row.size, etag: row.etag, contentType: row.content_type,
    ...parseMetadata(row.metadata), lastModified: row.last_modified,
    ...(row.blob ? { blob: row.blob } : {}),
    ...(row.file_ino !== null ? { fileIno: row.file_ino, fileMtimeMs: row.file_mtime_ms ?? undefined } : {}),
    ...(row.file_ctime_ms !== null ? { fileCtimeMs: row.file_ctime_ms } : {}),
    ...(row.inline ? { inline: true } : {}),
  };
}

function rowOf(record: ObjectRecord): ObjectRow {
  return {
    bucket: record.bucket, key: record.key, size: record.size, etag: record.etag, content_type: record.contentType,
    metadata: metadataColumn(record), last_modified: record.lastModified, blob: record.blob ?? null,
    file_ino: record.fileIno ?? null, file_mtime_ms: record.fileMtimeMs ?? null, file_ctime_ms: record.fileCtimeMs ?? null,
  };
}

/** An object's metadata column. */
function metadataColumn(record: ObjectRecord): string | null {
  return metadataJson(record.metadata, record.headers, { checksums: record.checksums, parts: record.parts, partChecksums: record.partChecksums, tags: record.tags });
}

/** The write's tags as a record's field: none when it has none. */
function tagsOf(options: { tags?: Tags }): { tags?: Tags } {
  return options.tags?.length ? { tags: options.tags } : {};
}

function uploadOf(row: UploadRow): UploadRecord {
  return {
    uploadId: row.upload_id, bucket: row.bucket, key: row.key, contentType: row.content_type,
    ...parseMetadata(row.metadata), initiated: row.initiated,
  };
}

interface PartRow {
  part_number: number;
  size: number;
  etag: string;
  last_modified: number;
  checksum: string | null;
}

function partOf(row: PartRow): PartRecord {
  return { partNumber: row.part_number, size: row.size, etag: row.etag, ...(row.checksum !== null ? { checksum: row.checksum } : {}), lastModified: row.last_modified };
}

