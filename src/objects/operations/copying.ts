import { errors } from '../errors.js';
import { fileChunks } from '../file-chunks.js';
import { checkKey } from '../names.js';
import type { ObjectRecord, ObjectStore } from '../object-store.js';
import { header, type S3Request } from './context.js';

/**
 * x-amz-copy-source: `bucket/key` (URL-encoded, an optional leading `/`; `?versionId=null` allowed,
 * buckets being unversioned). Characters left unencoded are the header's bytes, one latin1 character
 * each as Node reads them: read as the UTF-8 they are, as S3 reads them.
 */
export function copySource(request: S3Request): { bucket: string; key: string } {
  const raw = Buffer.from(header(request, 'x-amz-copy-source') ?? '', 'latin1').toString('utf8');
  const [path, query] = raw.split('?', 2);
  if (query !== undefined && query !== 'versionId=null') throw errors.invalidArgument('Invalid version id specified', 'x-amz-copy-source', raw);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.replace(/^\//, ''));
  } catch {
    throw errors.invalidArgument('Copy Source must mention the source bucket and key: sourcebucket/sourcekey', 'x-amz-copy-source', raw);
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw errors.invalidArgument('Copy Source must mention the source bucket and key: sourcebucket/sourcekey', 'x-amz-copy-source', raw);
  const key = decoded.slice(slash + 1);
  checkKey(key);
  return { bucket: decoded.slice(0, slash), key };
}

/**
 * UploadPartCopy's x-amz-copy-source-range: exactly `bytes=first-last`, inclusive, within the
 * source (InvalidArgument for any other form, InvalidRange past the end); the whole source without it.
 */
export function copySourceRange(request: S3Request, size: number): { start: number; end: number } | undefined {
  const range = header(request, 'x-amz-copy-source-range');
  if (range === undefined) return undefined;
  const match = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(range);
  if (!match) {
    throw errors.invalidArgument('The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      'x-amz-copy-source-range', range);
  }
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (start > end || end >= size) throw errors.invalidCopyRange(size, range);
  return { start, end };
}

/** A copy source's record and a way to read bytes of it; close() once the copy is done. */
export interface CopySourceContent {
  object: ObjectRecord;
  /** Bytes start..end (inclusive), each chunk valid until the next is asked for (fileChunks); an empty range has none. */
  read(start: number, end: number): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

/** Opens a copy source: content held in SQLite is copied from there, any other streams from its file. */
export async function openCopySource(objects: ObjectStore, source: { bucket: string; key: string }): Promise<CopySourceContent> {
  const { object, content, file } = objects.readSmall(source.bucket, source.key, 0) ?? await objects.open(source.bucket, source.key);
  if (content) {
    return {
      object,
      read: async function* (start, end) {
        if (end >= start) yield content.subarray(start, end + 1);
      },
      close: async () => undefined,
    };
  }
  return {
    object,
    read: (start, end) => fileChunks((buffer, offset, length, position) => file.read(buffer, offset, length, position), start, end),
    close: () => file.close(),
  };
}
