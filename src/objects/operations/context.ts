import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FunctionInvoker } from '../../service.js';
import type { S3Config } from '../config.js';
import type { ObjectEvents } from '../events.js';
import { GATEWAY_ACCOUNT } from '../../gateway-identity.js';
import type { ChangeOrigin, ObjectRecord, ObjectStore } from '../object-store.js';
import { errors } from '../errors.js';
import { decodeMimeWords, mailSafe } from '../mime-words.js';
import { document, el } from '../xml.js';
import { takeFor } from '../../http/body-memory.js';

/** One S3 request once addressed and authenticated. */
export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The content (decoded from aws-chunked, verified as it streams). */
  body: Readable;
  /** Decoded content length, when announced. */
  contentLength: number | undefined;
  /** Checksums verified once `body` ended (crc32, crc32c, crc64nvme, sha1, sha256 → base64). */
  checksums: Record<string, string>;
  /** undefined for an anonymous request. */
  accessKeyId: string | undefined;
  requestId: string;
  sourceIp: string;
  /** `http://host:port` as the client addressed it (CompleteMultipartUpload's Location). */
  origin: string;
}

/** What every S3 operation works with. */
export interface OperationContext {
  objects: ObjectStore;
  events: ObjectEvents;
  config: S3Config;
  functions: FunctionInvoker | undefined;
  /** AccessDenied unless the request may do `action` on `bucket`. */
  authorize(request: S3Request, bucket: string, action: 'read' | 'write'): void;
  /** The signer of a POST upload's form (fields by lower-case name), undefined for an unsigned one; the S3 auth error otherwise. */
  formSigner(fields: ReadonlyMap<string, string>): string | undefined;
}

export type Operation = (request: S3Request, res: ServerResponse, context: OperationContext) => Promise<void> | void;

/** The owner every listing shows: the gateway's one account, which owns every bucket and object. */
export const OWNER = [el('ID', GATEWAY_ACCOUNT), el('DisplayName', 'outpost')];

/**
 * x-amz-expected-bucket-owner (the request's bucket) and x-amz-source-expected-bucket-owner (a
 * copy's source): a client that names another account than the gateway's is refused, as S3 refuses
 * it, with 403 AccessDenied, before anything is read or written.
 */
export function checkExpectedOwners(request: S3Request): void {
  for (const name of ['x-amz-expected-bucket-owner', 'x-amz-source-expected-bucket-owner']) {
    const expected = header(request, name);
    if (expected !== undefined && expected !== GATEWAY_ACCOUNT) throw errors.accessDenied();
  }
}

export function changeOrigin(request: S3Request): ChangeOrigin {
  return { principalId: request.accessKeyId ? `AWS:${request.accessKeyId}` : 'anonymous', sourceIp: request.sourceIp, requestId: request.requestId };
}

export function sendXml(res: ServerResponse, status: number, root: string, children: string[], headers: Record<string, string> = {}): void {
  // As bytes, outside V8's heap: a socket keeps a string written to it until its client reads it, and
  // eight clients slow to read listings of 1000 keys of escaped characters (5 MB each) filled a 48 MB heap
  const body = Buffer.from(document(root, children));
  // A client slow to read holds it until it does. A reading (a listing) is refused instead when
  // memory is short: it changed nothing, and clients retry SlowDown; the answer of a write always goes.
  if (!takeFor(res, body.length) && res.req.method === 'GET') throw errors.slowDown();
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': body.length, ...headers });
  res.end(body);
}

/**
 * A response without a body. Where one could be (not a 204, nor an answer to HEAD, whose
 * Content-Length is the object's), it is announced as `Content-Length: 0`, as S3 answers a
 * PutObject or UploadPart; Node would otherwise send an empty chunked body.
 */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  const bodyless = status === 204 || res.req.method === 'HEAD' || 'Content-Length' in headers;
  res.writeHead(status, bodyless ? headers : { ...headers, 'Content-Length': 0 });
  res.end();
}

export const quoted = (etag: string) => `"${etag}"`;

/** Headers S3 stores with an object and returns on GET and HEAD. */
export const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires', 'x-amz-website-redirect-location'];

/** S3's limit on user metadata: 2 KB, "the sum of the number of bytes in the UTF-8 encoding of each key and value". */
const MAX_METADATA_BYTES = 2048;

/**
 * `x-amz-meta-*` of a request, names lower-cased without the prefix, values as S3 stores them: a
 * header's bytes read one ISO-8859-1 character each (as Node reads them; UTF-8 sent raw is not
 * decoded, as S3 does not), a form field's or presigned URL parameter's text as it is, RFC 2047
 * encoded words decoded (mime-words.ts). MetadataTooLarge over 2 KB.
 */
export function userMetadata(headers: IncomingHttpHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const text = decodeMimeWords(Array.isArray(value) ? value.join(',') : value);
    const key = name.slice('x-amz-meta-'.length);
    // the name is the client's: x-amz-meta-__proto__ is metadata like any other, not the record's prototype
    Object.defineProperty(metadata, key, { value: text, writable: true, enumerable: true, configurable: true });
    bytes += Buffer.byteLength(key) + Buffer.byteLength(text);
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw errors.metadataTooLarge(bytes, MAX_METADATA_BYTES);
  }
  return metadata;
}

/** The stored headers of a request; `aws-chunked` is a transfer coding, not the object's. */
export function storedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const stored: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    let value = headers[name];
    if (typeof value !== 'string') continue;
    if (name === 'content-encoding') value = value.split(',').map((coding) => coding.trim()).filter((coding) => coding && coding !== 'aws-chunked').join(',');
    if (value) stored[name] = value;
  }
  // S3 PutObject: x-amz-website-redirect-location is another object of the bucket or a URL
  const redirect = stored['x-amz-website-redirect-location'];
  if (redirect !== undefined && !/^(\/|https?:\/\/)/.test(redirect)) throw errors.invalidRedirectLocation();
  return stored;
}

/**
 * Text (a form field, a query parameter) as a header value. A header's value is bytes, which Node
 * reads and writes as latin1 and refuses past U+00FF: the text goes as the bytes of its UTF-8, as a
 * client sending it in a header sends it. User metadata is the text itself: S3 stores it as text and
 * returns what is not US-ASCII encoded (userMetadata, objectHeaders). A line break or NUL cannot be
 * in a header, nor, in another header than user metadata (sent as it is), any control character
 * but tab (RFC 9110 §5.5), which Node refuses to send: stored, the object answered 500 to every
 * read (InvalidArgument instead).
 */
export function asHeaderValue(name: string, text: string): string {
  if (/[\r\n\0]/.test(text)) throw errors.invalidArgument(`${name}: a header value cannot hold a line break or NUL`, name, text);
  if (name.startsWith('x-amz-meta-')) return text;
  if (/[\x01-\x08\x0b-\x1f\x7f]/.test(text)) throw errors.invalidArgument(`${name}: a header value cannot hold a control character`, name, text);
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** x-amz-checksum-crc32 and the like, and the SDK's name of the algorithm (not x-amz-checksum-mode, a request for them). */
const isChecksumValue = (name: string) => (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-mode') || name === 'x-amz-sdk-checksum-algorithm';

/** RFC 9110 §5.1: a field name is a token. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

/** The query parameters of a presigned URL that are its signature's own (SigV4 query authentication). */
const QUERY_AUTHENTICATION = new Set(['x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-signedheaders', 'x-amz-signature',
  'x-amz-security-token', 'x-amz-content-sha256']);

/**
 * A presigned request's headers: the x-amz-* query parameters that the SDKs hoist out of the
 * headers into the URL, so that the signature covers them (x-amz-meta-*, x-amz-tagging, x-amz-acl,
 * …), stand for those headers, as S3 takes them; a header the request sends itself wins. Not
 * checksums: S3 takes none from a presigned URL (the JS SDK puts the CRC32 of an empty body in every
 * presigned PutObject).
 */
export function withHoistedHeaders(headers: IncomingHttpHeaders, query: URLSearchParams): IncomingHttpHeaders {
  if (!query.has('X-Amz-Signature')) return headers;
  const hoisted: IncomingHttpHeaders = {};
  for (const [name, value] of query) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('x-amz-') || QUERY_AUTHENTICATION.has(lower) || isChecksumValue(lower)) continue;
    if (!HEADER_NAME.test(lower)) throw errors.invalidArgument(`${name}: not a header name`, name, value);
    if (headers[lower] === undefined && hoisted[lower] === undefined) hoisted[lower] = asHeaderValue(lower, value);
  }
  return Object.keys(hoisted).length ? { ...hoisted, ...headers } : headers;
}

/** The response headers describing an object (GetObject, HeadObject). */
export function objectHeaders(object: ObjectRecord): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'Content-Type': object.contentType,
    ETag: quoted(object.etag),
    'Last-Modified': new Date(object.lastModified).toUTCString(),
    'Accept-Ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(object.headers)) headers[name] = value;
  for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = mailSafe(value);
  if (object.tags?.length) headers['x-amz-tagging-count'] = object.tags.length;
  return headers;
}

/** A header as one string (repeated headers joined, as Node does for most). */
export function header(request: S3Request, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * Reads a small request body (XML documents), at most `limit` bytes, held in the memory every
 * listener shares: past its bound, SlowDown (503), which clients retry.
 */
export async function smallBody(request: S3Request, res: ServerResponse, limit = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += (chunk as Buffer).length;
    if (size > limit) throw errors.malformedXml();
    if (!takeFor(res, (chunk as Buffer).length)) throw errors.slowDown();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A non-negative integer query parameter (or header), else InvalidArgument naming it. */
export function integerParameter(request: S3Request, name: string, fallback: number, message: string, from: 'query' | 'header' = 'query'): number {
  const text = from === 'query' ? request.query.get(name) : header(request, name);
  if (text === null || text === undefined || text === '') return fallback;
  if (!/^\d{1,10}$/.test(text) || Number(text) > 2147483647) throw errors.invalidArgument(message, name, text);
  return Number(text);
}
