import { errors, S3Error } from '../errors.js';
import type { Condition, ObjectRecord } from '../object-store.js';
import { asHeaderValue, header, objectHeaders, quoted, type S3Request } from './context.js';
import { checksumHeaders } from './writing.js';
import { partNumberOf } from './UploadPart.js';

/** Buckets are unversioned: an object's one version is `null`; any other version id is InvalidArgument (S3). */
export function checkVersionId(versionId: string | null | undefined): void {
  if (versionId === null || versionId === undefined || versionId === 'null') return;
  throw errors.invalidArgument(versionId === '' ? 'Version id cannot be the empty string' : 'Invalid version id specified', 'versionId', versionId);
}

/**
 * GetObject and HeadObject: the version asked for (checkVersionId), `response-*` overrides only on
 * a signed request, and no SSE-C key, which S3 refuses for an object not stored with one (as none
 * is here).
 */
export function checkReadRequest(request: S3Request): void {
  if (request.query.size) {
    checkVersionId(request.query.get('versionId'));
    // S3 GetObject: the overrides "cannot be used with an unsigned (anonymous) request", or anyone
    // could make a public object's answer say what they like
    if (request.accessKeyId === undefined && Object.keys(OVERRIDES).some((parameter) => request.query.has(parameter))) {
      throw errors.invalidRequest('Request specific response headers cannot be used for anonymous GET requests.');
    }
  }
  if (request.headers['x-amz-server-side-encryption-customer-algorithm'] !== undefined) {
    throw errors.invalidRequest('The encryption parameters are not applicable to this object.');
  }
}

/** Whether an If-Match / If-None-Match list names the object's ETag (`*` names any). */
function etagListed(list: string, etag: string): boolean {
  return list.split(',').map((item) => item.trim().replace(/^W\//, '')).some((item) => item === '*' || item === quoted(etag) || item === etag);
}

/** Last-Modified has second resolution; comparisons use it as sent. */
const seconds = (epochMs: number) => Math.floor(epochMs / 1000);

/**
 * GetObject / HeadObject conditions (RFC 7232 order, as S3): a failed If-Match or (without it)
 * If-Unmodified-Since is 412 PreconditionFailed; a matching If-None-Match or (without it) an
 * unchanged If-Modified-Since is 304 Not Modified. An If-Modified-Since later than the server's
 * clock is not a date the object could have been modified since: S3 ignores it and answers 200,
 * as RFC 2616 §14.25 has it, where a cache with a clock ahead would otherwise never see a change.
 */
export function checkConditions(request: S3Request, object: ObjectRecord): void {
  const failed = failedCondition(request, object, '', Date.now());
  if (failed === 'If-Match' || failed === 'If-Unmodified-Since') throw errors.preconditionFailed(failed);
  if (failed) throw notModified(request, object);
}

/**
 * CopyObject / UploadPartCopy: the same four conditions on the source, as x-amz-copy-source-if-*,
 * a future If-Modified-Since ignored as well; every failure is 412 PreconditionFailed (a copy has
 * nothing to answer 304 with).
 */
export function checkCopySourceConditions(request: S3Request, source: ObjectRecord): void {
  const failed = failedCondition(request, source, 'x-amz-copy-source-', Date.now());
  if (failed) throw errors.preconditionFailed(`x-amz-copy-source-${failed}`);
}

/**
 * The first condition that does not hold. If-Match decides without If-Unmodified-Since, and
 * If-None-Match without If-Modified-Since, when both of a pair are sent (S3 and RFC 7232).
 * If-Modified-Since after `now` is ignored.
 */
function failedCondition(request: S3Request, object: ObjectRecord, prefix: string, now: number): string | undefined {
  const ifMatch = header(request, `${prefix}if-match`);
  const ifNoneMatch = header(request, `${prefix}if-none-match`);
  const modifiedSinceSent = Date.parse(header(request, `${prefix}if-modified-since`) ?? '');
  const ifModifiedSince = seconds(modifiedSinceSent) > seconds(now) ? NaN : modifiedSinceSent;
  const ifUnmodifiedSince = Date.parse(header(request, `${prefix}if-unmodified-since`) ?? '');
  const modified = seconds(object.lastModified);
  if (ifMatch !== undefined) {
    if (!etagListed(ifMatch, object.etag)) return 'If-Match';
  } else if (!Number.isNaN(ifUnmodifiedSince) && modified > seconds(ifUnmodifiedSince)) {
    return 'If-Unmodified-Since';
  }
  if (ifNoneMatch !== undefined) {
    if (etagListed(ifNoneMatch, object.etag)) return 'If-None-Match';
  } else if (!Number.isNaN(ifModifiedSince) && modified <= seconds(ifModifiedSince)) {
    return 'If-Modified-Since';
  }
  return undefined;
}

/**
 * S3 conditional deletes and writes (If-Match of DeleteObject, PutObject and
 * CompleteMultipartUpload; DeleteObjects' ETag element): the ETag the object must have (`*`: any,
 * it must exist); 412 PreconditionFailed when it has another, 404 NoSuchKey when there is none.
 * undefined without one: an unconditional request.
 */
export function ifMatchCondition(ifMatch: string | undefined, key: string): Condition | undefined {
  if (ifMatch === undefined) return undefined;
  return (object) => {
    if (!object) throw errors.noSuchKey(key);
    if (!etagListed(ifMatch, object.etag)) throw errors.preconditionFailed('If-Match');
  };
}

/**
 * S3 conditional writes (PutObject, CompleteMultipartUpload, CopyObject): `If-None-Match: *`, only
 * where no object is (412 PreconditionFailed otherwise; another value is NotImplemented, as in S3),
 * or If-Match (ifMatchCondition). Both at once is NotImplemented too, as S3 answers them: they
 * cannot both hold of one object, so neither a 412 nor a 404 would say what was wrong.
 */
export function writeCondition(request: S3Request): Condition | undefined {
  const ifNoneMatch = header(request, 'if-none-match');
  if (ifNoneMatch !== undefined && ifNoneMatch !== '*') throw errors.notImplemented('If-None-Match');
  const ifMatch = header(request, 'if-match');
  if (ifNoneMatch === undefined) return ifMatchCondition(ifMatch, request.key);
  if (ifMatch !== undefined) throw errors.notImplemented('If-Match');
  return (object) => {
    if (object) throw errors.preconditionFailed('If-None-Match');
  };
}

/** What a 304 carries of a 200's headers: its validators and, for caches to refresh theirs, Cache-Control and Expires (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS = ['ETag', 'Last-Modified', 'cache-control', 'expires'];

/** 304 carries no body; the S3Error path sends only the status and these headers, with any response-* override a 200 would have. */
function notModified(request: S3Request, object: ObjectRecord): S3Error {
  const headers = responseHeaders(request, object, undefined);
  const kept = NOT_MODIFIED_HEADERS.filter((name) => headers[name] !== undefined).map((name) => [name, String(headers[name])]);
  return new S3Error('NotModified', 304, 'Not Modified', {}, Object.fromEntries(kept));
}

/**
 * The byte range of a `Range: bytes=…` header (one range; S3 serves no multipart ranges), or
 * undefined for the whole object. A syntactically invalid header is ignored (RFC 7233), an
 * unsatisfiable one is 416 InvalidRange; a suffix range of an empty object is the whole of it, as S3 answers.
 */
export function byteRange(request: S3Request, size: number): { start: number; end: number } | undefined {
  const range = header(request, 'range');
  if (range === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw errors.invalidRange(size, range);
    // S3 GetObject: the last N bytes of an empty object are all of it, 200 (any other range of it is 416)
    if (size === 0) return undefined;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (match[2] !== '' && Number(match[2]) < start) return undefined;
  if (start >= size) throw errors.invalidRange(size, range);
  return { start, end };
}

/** What GetObject and HeadObject answer: the status and headers, and the bytes of the object to send. */
export interface ReadAnswer {
  status: 200 | 206;
  headers: Record<string, string | number>;
  start: number;
  length: number;
}

/**
 * The answer to a GET or HEAD: all of the object, or the bytes it asks for, by `partNumber` (S3:
 * that part of a multipart object, with x-amz-mp-parts-count; part 1 of any other object is all of
 * it, as a range; a part it does not have is 416 InvalidPartNumber) or else by `Range` (byteRange); both at once is
 * InvalidRequest. Checksums go with the whole object, or a part with its own (responseHeaders).
 */
export function readAnswer(request: S3Request, object: ObjectRecord): ReadAnswer {
  const { range, part } = requestedExtent(request, object);
  const headers = responseHeaders(request, object, part ? part.number : range ? undefined : 'whole');
  if (part) headers['x-amz-mp-parts-count'] = part.count;
  // a part of no bytes (a multipart object's empty last part) has no range
  const length = range ? range.end - range.start + 1 : part ? 0 : object.size;
  headers['Content-Length'] = length;
  if (!range) return { status: 200, headers, start: 0, length };
  headers['Content-Range'] = `bytes ${range.start}-${range.end}/${object.size}`;
  return { status: 206, headers, start: range.start, length };
}

/** The bytes a GET or HEAD asks for (undefined: all), and the part of a multipart object they are, by number and of how many. */
function requestedExtent(request: S3Request, object: ObjectRecord): { range?: { start: number; end: number }; part?: { number: number; count: number } } {
  if (!request.query.has('partNumber')) return { range: byteRange(request, object.size) };
  if (header(request, 'range') !== undefined) throw errors.invalidRequest('Cannot specify both Range header and partNumber query parameter');
  const partNumber = partNumberOf(request);
  const parts = object.parts;
  if (!parts) {
    // a multipart object completed before part sizes were kept: its parts cannot be told apart
    if (object.etag.includes('-')) throw errors.notImplemented('partNumber');
    if (partNumber !== 1) throw errors.invalidPartNumber(partNumber, 1);
    // as S3 answers it: a range of all of it (206 with Content-Range), but none of an empty one
    return object.size === 0 ? {} : { range: { start: 0, end: object.size - 1 } };
  }
  if (partNumber > parts.length) throw errors.invalidPartNumber(partNumber, parts.length);
  const start = parts.slice(0, partNumber - 1).reduce((sum, size) => sum + size, 0);
  const size = parts[partNumber - 1];
  const part = { number: partNumber, count: parts.length };
  return size === 0 ? { part } : { range: { start, end: start + size - 1 }, part };
}

// GetObject: response-* query parameters override these response headers.
const OVERRIDES: Record<string, string> = {
  'response-content-type': 'Content-Type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

/**
 * The object's response headers with the request's `response-*` overrides applied, and, asked for
 * with x-amz-checksum-mode: ENABLED, the checksums of what is sent: the object's when it is sent
 * whole, a multipart object's part's own when that part is (`sent`: its number); none with a range
 * (S3: they would not match).
 */
function responseHeaders(request: S3Request, object: ObjectRecord, sent: 'whole' | number | undefined): Record<string, string | number> {
  const headers = objectHeaders(object);
  if (sent !== undefined && header(request, 'x-amz-checksum-mode') === 'ENABLED') Object.assign(headers, sentChecksumHeaders(object, sent));
  if (request.query.size === 0) return headers;
  for (const [parameter, name] of Object.entries(OVERRIDES)) {
    const value = request.query.get(parameter);
    if (value !== null) headers[name] = asHeaderValue(parameter, value);
  }
  return headers;
}

function sentChecksumHeaders(object: ObjectRecord, sent: 'whole' | number): Record<string, string> {
  return sent === 'whole' ? checksumHeaders(object.checksums, 'object') : checksumHeaders(partChecksum(object, sent), 'part');
}

/** A multipart object's part's checksum (by number), keyed by the algorithm of the object's one checksum; undefined where it kept none. */
export function partChecksum(object: ObjectRecord, partNumber: number): Record<string, string> | undefined {
  const value = object.partChecksums?.[partNumber - 1];
  return value === undefined ? undefined : { [Object.keys(object.checksums!)[0]]: value };
}
