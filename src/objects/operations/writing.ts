import { DEFAULT_CONTENT_TYPE } from '../content-type.js';
import { errors } from '../errors.js';
import { header, type OperationContext, type S3Request } from './context.js';

/** The Content-MD5 to check, after checking it is an MD5 at all (InvalidDigest). */
export function contentMd5(request: S3Request): string | undefined {
  const digest = header(request, 'content-md5');
  if (digest === undefined) return undefined;
  if (Buffer.from(digest, 'base64').length !== 16 || Buffer.from(digest, 'base64').toString('base64') !== digest) throw errors.invalidDigest(digest);
  return digest;
}

export function contentType(request: S3Request): string {
  return header(request, 'content-type') || DEFAULT_CONTENT_TYPE;
}

/** The body's length must be known (S3 refuses chunked transfer without a decoded length: 411). */
export function announcedLength(request: S3Request): number {
  if (request.contentLength === undefined) throw errors.missingContentLength();
  return request.contentLength;
}

/** Writes wait while the event queue is at its bound, so an event is never lost to a full queue. */
export function checkEventQueue(context: OperationContext): void {
  if (context.events.full) throw errors.slowDown();
}

/** The checksums the client sent and the verifier checked, echoed as S3 does (x-amz-checksum-*). */
export function checksumHeaders(request: S3Request): Record<string, string> {
  return Object.fromEntries(Object.entries(request.checksums).map(([algorithm, value]) => [`x-amz-checksum-${algorithm}`, value]));
}
