import { join } from 'node:path';
import { errors } from './errors.js';

/** S3: "Object key names … up to 1,024 bytes long" (UTF-8). */
export const MAX_KEY_BYTES = 1024;
/** Linux NAME_MAX: longer path segments cannot be file names. */
const MAX_SEGMENT_BYTES = 255;

/**
 * S3 general purpose bucket naming rules: 3-63 characters of a-z 0-9 . -, beginning and ending
 * with a letter or digit, no two adjacent periods, not shaped like an IP address, none of the
 * reserved prefixes and suffixes. A valid name is also a valid directory name (no '/', never '.' or '..').
 */
export function checkBucketName(name: string): void {
  if (!isBucketName(name)) throw errors.invalidBucketName(name);
}

export function isBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)
    && !name.includes('..')
    && !/^\d+\.\d+\.\d+\.\d+$/.test(name)
    && !/^(xn--|sthree-|amzn-s3-demo-)/.test(name)
    && !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name);
}

/**
 * Keys S3 would store but this gateway refuses, because no file system or local program can be
 * trusted with them: longer than 1,024 bytes (KeyTooLongError, as S3), empty, with a NUL, or with
 * a `.` or `..` segment (a path-traversal shape in the share; S3 itself would accept it).
 */
export function checkKey(key: string): void {
  if (key.length === 0) throw errors.invalidKey('must not be empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw errors.keyTooLong();
  if (key.includes('\0')) throw errors.invalidKey('must not contain the NUL character');
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) throw errors.invalidKey('must not contain "." or ".." path segments');
}

/**
 * Whether `key` can be the relative path of a plain file: no empty segment (a leading, trailing or
 * doubled '/'), each segment a valid file name, and none a dot-file's: the share leaves those to
 * local programs (editors' and Samba's temporary files), so a local change to such a file would
 * never reach its object. Whether the path is free (a file where a directory is needed or the
 * reverse, `a` and `a/b`) is found out when writing.
 */
export function keyCanBeFile(key: string): boolean {
  for (const segment of key.split('/')) {
    if (segment === '' || segment.startsWith('.') || Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return false;
  }
  return true;
}

/** The share path of a key that can be a file. */
export function sharePath(shareRoot: string, bucket: string, key: string): string {
  return join(shareRoot, bucket, key);
}
