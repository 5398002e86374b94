import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * The pieces of a SigV4 signature: canonical request, string to sign, signing key. Kept apart
 * from the verification steps (sigv4.ts) and the chunk signatures (chunked.ts), which share them.
 */

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Where a signature is anchored: the request time and the credential scope. */
export interface SigningScope {
  /** ISO 8601 basic: 20130524T000000Z. */
  timestamp: string;
  /** date/region/service/aws4_request */
  scope: string;
  /** HMAC key derived from the secret and the scope. */
  key: Buffer;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

// SigV4 "UriEncode": every byte but the unreserved characters A-Z a-z 0-9 - . _ ~ is %XX, upper-case hex.
const UNRESERVED = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

const UNRESERVED_ONLY = /^[A-Za-z0-9\-._~]*$/;
const ENCODED_BY_SIGV4_ONLY = /[!'()*]/g;

/**
 * UriEncode of a string's UTF-8, the fast way (most names and values need no encoding at all):
 * encodeURIComponent leaves only `!'()*` that SigV4 encodes. A lone surrogate goes the byte way.
 */
export function uriEncodeText(text: string, keepSlash: boolean): string {
  if (UNRESERVED_ONLY.test(text)) return text;
  let encoded: string;
  try {
    encoded = encodeURIComponent(text).replace(ENCODED_BY_SIGV4_ONLY, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    return uriEncode(Buffer.from(text, 'utf8'), keepSlash);
  }
  return keepSlash ? encoded.replace(/%2F/g, '/') : encoded;
}

export function uriEncode(bytes: Buffer, keepSlash: boolean): string {
  let out = '';
  for (const byte of bytes) {
    if (UNRESERVED[byte] || (keepSlash && byte === 0x2f)) out += String.fromCharCode(byte);
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/** Percent-decodes to bytes; a `%` not followed by two hex digits stays literal (AWS decodes leniently too), `+` stays `+`. */
export function percentDecode(text: string): Buffer {
  if (!text.includes('%')) return Buffer.from(text, 'utf8');
  const raw = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let length = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      out[length++] = parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16);
      i += 2;
    } else {
      out[length++] = raw[i];
    }
  }
  return out.subarray(0, length);
}

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

/**
 * CanonicalURI, and the alternative a client may have signed. S3 signs the path once encoded,
 * without normalization: the SDKs send exactly that, so the path as received comes first; a
 * client that sent characters raw (`!`, `(`) or encoded ones SigV4 leaves alone (`%7E`) signed
 * the SigV4 encoding of the decoded path, which comes second (when it differs).
 * Every other service normalizes the path and encodes the already-encoded path a second time.
 */
export function canonicalUris(rawPath: string, service: string): string[] {
  if (service === 's3') {
    // Decoded bytes need not be UTF-8 (`%FF`): encode them as bytes; a path without `%` is text.
    const reencoded = (rawPath.includes('%') ? uriEncode(percentDecode(rawPath), true) : uriEncodeText(rawPath, true)) || '/';
    return reencoded === rawPath ? [rawPath] : [rawPath, reencoded];
  }
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && rawPath.endsWith('/') ? '/' : ''}`;
  return [uriEncodeText(normalized, true)];
}

/**
 * The query's name/value pairs as sent, decoded (a name without `=` has the value ''). A raw `+`
 * is a space, as S3 takes it (clients that serialize with URLSearchParams send a space signed as
 * %20 so) and as the handlers read the query; a plus is sent as %2B.
 */
export function queryPairs(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  const decode = (text: string) => percentDecode(text.replaceAll('+', ' ')).toString('utf8');
  return rawQuery.split('&').filter((part) => part !== '').map((part) => {
    const equals = part.indexOf('=');
    return equals < 0 ? [decode(part), ''] : [decode(part.slice(0, equals)), decode(part.slice(equals + 1))];
  });
}

/** CanonicalQueryString: every pair but the signature itself, encoded, sorted by name then value (byte order). */
export function canonicalQuery(pairs: Array<[string, string]>): string {
  return pairs
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [uriEncodeText(name, false), uriEncodeText(value, false)])
    .sort(([nameA, valueA], [nameB, valueB]) => compare(nameA, nameB) || compare(valueA, valueB))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * CanonicalHeaders: `name:value\n` for each signed header, values of repeated headers joined by
 * `,`, each trimmed with inner runs of spaces collapsed. Read from rawHeaders so repeated headers
 * keep their order and node's own joining (`, `) does not leak in.
 */
export function canonicalHeaders(req: IncomingMessage, signedHeaders: string[]): string {
  const values = new Map<string, string[]>();
  for (const name of signedHeaders) values.set(name, []);
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    values.get(raw[i].toLowerCase())?.push(raw[i + 1].trim().replace(/ {2,}/g, ' '));
  }
  return signedHeaders.map((name) => `${name}:${values.get(name)!.join(',')}\n`).join('');
}

export function canonicalRequest(method: string, uri: string, query: string, headers: string, signedHeaders: string[], payloadHash: string): string {
  return `${method}\n${uri}\n${query}\n${headers}\n${signedHeaders.join(';')}\n${payloadHash}`;
}

/** The canonical request as text, or as the bytes the client signed (a received request's: see verifyRequest). */
export function stringToSign(scope: SigningScope, canonical: string | Buffer): string {
  return `${ALGORITHM}\n${scope.timestamp}\n${scope.scope}\n${sha256Hex(canonical)}`;
}

// Deriving a key costs four HMACs; clients sign many requests with one key on one day.
const SIGNING_KEY_CACHE_SIZE = 64;
const signingKeys = new Map<string, Buffer>();

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), cached (bounded: cleared when full). */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\n${date}\n${region}\n${service}`;
  let key = signingKeys.get(cacheKey);
  if (!key) {
    const dateKey = createHmac('sha256', `AWS4${secret}`).update(date).digest();
    const regionKey = createHmac('sha256', dateKey).update(region).digest();
    const serviceKey = createHmac('sha256', regionKey).update(service).digest();
    key = createHmac('sha256', serviceKey).update('aws4_request').digest();
    if (signingKeys.size >= SIGNING_KEY_CACHE_SIZE) signingKeys.clear();
    signingKeys.set(cacheKey, key);
  }
  return key;
}

/** Constant-time: how much of a signature matched must not show in the answer's timing. */
export function sameSignature(computed: string, provided: string): boolean {
  const a = Buffer.from(computed, 'utf8');
  const b = Buffer.from(provided, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
