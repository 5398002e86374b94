import type { ServerResponse } from 'node:http';
import { DEFAULT_CONTENT_TYPE } from '../content-type.js';
import { errors, S3Error } from '../errors.js';
import { el } from '../xml.js';
import { createHash } from 'node:crypto';
import { CHECKSUM_ALGORITHMS, checksumHeaderAlgorithm, checksummed, checksumMismatch, runningChecksum, type ChecksumAlgorithm } from '../../auth/checksums.js';
import { header, smallBody, type OperationContext, type S3Request } from './context.js';

/** The Content-MD5 to check, after checking it is an MD5 at all (InvalidDigest). */
export function contentMd5(request: S3Request): string | undefined {
  const digest = header(request, 'content-md5');
  if (digest === undefined) return undefined;
  if (Buffer.from(digest, 'base64').length !== 16 || Buffer.from(digest, 'base64').toString('base64') !== digest) throw errors.invalidDigest(digest);
  return digest;
}

/**
 * The small body of an operation S3 takes only with a digest of it (DeleteObjects,
 * PutBucketLifecycleConfiguration): Content-MD5 or an x-amz-checksum-* (a header, or a trailer
 * x-amz-trailer announces); without one S3 changes nothing and answers InvalidRequest. Content-MD5
 * is checked here once the body is read, a checksum as the body streams.
 */
export async function digestedBody(request: S3Request, res: ServerResponse): Promise<string> {
  const announced = [...Object.keys(request.headers), header(request, 'x-amz-trailer') ?? ''];
  if (request.headers['content-md5'] === undefined && !announced.some((name) => checksumHeaderAlgorithm(name) !== undefined)) {
    throw errors.invalidRequest('Missing required header for this request: Content-MD5');
  }
  const digest = contentMd5(request);
  const text = await smallBody(request, res);
  const calculated = digest !== undefined ? createHash('md5').update(text).digest('base64') : undefined;
  if (calculated !== digest) throw errors.badDigest(digest!, calculated!);
  return text;
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

/**
 * Checksums as S3 answers them (x-amz-checksum-*): a part's alone; an object's (PutObject's answer,
 * GetObject and HeadObject in checksum mode) with x-amz-checksum-type.
 */
export function checksumHeaders(checksums: Record<string, string> | undefined, of: 'part' | 'object'): Record<string, string> {
  if (!checksums || Object.keys(checksums).length === 0) return {};
  const headers: Record<string, string> = Object.fromEntries(Object.entries(checksums).map(([algorithm, value]) => [`x-amz-checksum-${algorithm}`, value]));
  if (of === 'object') headers['x-amz-checksum-type'] = checksumType(checksums);
  return headers;
}

/**
 * The body as it goes by; once it has ended, its checksum of `algorithm` in `into` (which put reads
 * then), or BadDigest where it is not `expected` (the store then writes nothing).
 */
export async function* checksumInto(body: AsyncIterable<Buffer>, algorithm: ChecksumAlgorithm, into: Record<string, string>, expected?: string): AsyncIterable<Buffer> {
  const running = runningChecksum(algorithm);
  yield* checksummed(body, running);
  const computed = running.digest();
  if (expected !== undefined && computed !== expected) throw checksumMismatch(algorithm);
  into[algorithm] = computed;
}

/** Checksums of the whole content, which hold for a copy of it: not a multipart object's COMPOSITE one. */
export function wholeContentChecksums(checksums: Record<string, string> | undefined): Record<string, string> | undefined {
  return checksums && checksumType(checksums) === 'FULL_OBJECT' ? checksums : undefined;
}

/** A multipart object's COMPOSITE checksum ends in `-N` (base64 has no '-'); any other is of the whole content. */
export function checksumType(checksums: Record<string, string>): 'COMPOSITE' | 'FULL_OBJECT' {
  return Object.values(checksums).some((value) => value.includes('-')) ? 'COMPOSITE' : 'FULL_OBJECT';
}

/**
 * Checksums as XML elements (ChecksumCRC32 and the like): a part's alone (ListParts, CopyPartResult);
 * an object's (CopyObjectResult, CompleteMultipartUploadResult) after its ChecksumType.
 */
export function checksumElements(checksums: Record<string, string> | undefined, of: 'part' | 'object'): string[] {
  if (!checksums || Object.keys(checksums).length === 0) return [];
  const values = Object.entries(checksums).map(([algorithm, value]) => el(`Checksum${algorithm.toUpperCase()}`, value));
  return of === 'object' ? [el('ChecksumType', checksumType(checksums)), ...values] : values;
}

/** A checksum's algorithm(s) and type without its value, as listings, ListParts and ListMultipartUploads name it. */
export function checksumKindElements(algorithms: string[], type: 'COMPOSITE' | 'FULL_OBJECT'): string[] {
  return [...algorithms.map((algorithm) => el('ChecksumAlgorithm', algorithm.toUpperCase())), el('ChecksumType', type)];
}

/** Headers of server-side encryption, which the gateway does not do (SSE-S3, SSE-KMS, SSE-C; of a copy's source too). */
const ENCRYPTION_HEADERS = ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-copy-source-server-side-encryption-customer-algorithm'];
const OBJECT_LOCK_HEADERS = ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'];
/** S3's storage classes: any is taken (the gateway has one, listed as STANDARD), another name is InvalidStorageClass. */
const STORAGE_CLASSES = ['STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE', 'OUTPOSTS',
  'GLACIER_IR', 'SNOW', 'EXPRESS_ONEZONE', 'FSX_OPENZFS', 'FSX_ONTAP'];
/** Canned ACLs a bucket whose objects all belong to its owner takes (S3's default Object Ownership, "bucket owner enforced"). */
const OWNER_ACLS = ['private', 'bucket-owner-full-control'];

/** Whether a request asks for an ACL other than the owner's (a canned one, or an x-amz-grant-*): buckets here have no ACLs. */
export function asksForAcl(request: S3Request): boolean {
  const acl = header(request, 'x-amz-acl');
  return (acl !== undefined && !OWNER_ACLS.includes(acl)) || Object.keys(request.headers).some((name) => name.startsWith('x-amz-grant-'));
}

/**
 * Refuses a write asking for what the gateway does not do, rather than storing the object without
 * it while the client believes it done: encryption (NotImplemented), object lock (as S3 answers for
 * a bucket without it), and ACLs other than the owner's (as S3 answers for a bucket that does not
 * allow ACLs).
 */
export function checkWriteHeaders(request: S3Request): void {
  const encryption = ENCRYPTION_HEADERS.find((name) => request.headers[name] !== undefined);
  if (encryption) throw errors.notImplemented(encryption);
  if (OBJECT_LOCK_HEADERS.some((name) => request.headers[name] !== undefined)) throw errors.noObjectLock();
  const storageClass = header(request, 'x-amz-storage-class');
  if (storageClass !== undefined && !STORAGE_CLASSES.includes(storageClass)) throw new S3Error('InvalidStorageClass', 400, 'The storage class you specified is not valid', { StorageClassRequested: storageClass });
  if (asksForAcl(request)) throw new S3Error('AccessControlListNotSupported', 400, 'The bucket does not allow ACLs');
}

/** x-amz-checksum-algorithm (CreateMultipartUpload, CopyObject): the checksum S3 is to make of the object; another name is InvalidRequest. */
export function checksumAlgorithmOf(request: S3Request): ChecksumAlgorithm | undefined {
  const text = header(request, 'x-amz-checksum-algorithm');
  if (text === undefined) return undefined;
  const algorithm = text.toLowerCase() as ChecksumAlgorithm;
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    throw errors.invalidRequest(`Checksum algorithm provided is unsupported. Please try again with any of the valid types: [${CHECKSUM_ALGORITHMS.map((name) => name.toUpperCase()).join(', ')}]`);
  }
  return algorithm;
}
