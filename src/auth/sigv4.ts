import type { IncomingMessage } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import { AuthError, spacedHexBytes } from './sigv4-errors.js';
import {
  ALGORITHM, EMPTY_SHA256, canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUris, hmacHex, queryPairs, sameSignature, signingKey, stringToSign,
  type SigningScope,
} from './sigv4-canonical.js';
import { checksumClaims, checksumHeaderAlgorithm, type ChecksumAlgorithm, type ChecksumClaim } from './checksums.js';
import { AwsChunkedDecoder } from './chunked.js';
import { VerifiedBody } from './sigv4-body.js';

export { AuthError, type AuthErrorCode } from './sigv4-errors.js';

/**
 * AWS Signature Version 4 verification for the gateway's AWS-compatible HTTP APIs:
 * S3 on `s3.port` and the IoT data plane on `http.port`.
 */

export interface VerifyOptions {
  /** The signing service name: 's3' canonicalizes the path as S3 does (no double URI-encoding); others (e.g. 'iotdata') double-encode. */
  service: string;
  /** The secret of an access key id; undefined makes InvalidAccessKeyId. */
  secretOf(accessKeyId: string): string | undefined;
  /** Milliseconds since the epoch (tests move the clock). */
  now?: () => number;
  /** The region the credential scope must name (AuthorizationHeaderMalformed otherwise); any region when unset. */
  region?: string;
  /** Another name the scope may give `region` by (the gateway's own, `local`, that functions' SDKs sign for). */
  regionAlias?: string;
  /**
   * false: x-amz-checksum-* headers are not the body's but the operation's (S3
   * CompleteMultipartUpload: the object's checksum), left to it to check.
   */
  bodyChecksums?: boolean;
}

export interface VerifiedRequest {
  /** The signer; undefined when the request carries no signature at all (anonymous). */
  accessKeyId: string | undefined;
  /**
   * The content: the request itself, or the decoded `aws-chunked` stream. Verification failures
   * found while streaming (a chunk signature, x-amz-content-sha256, a trailing checksum, a short
   * body) are emitted as an AuthError stream error, so nothing is committed. An S3 body of at most
   * 64 KiB with nothing to verify is the request itself: a client that goes away before its end
   * fails it with Node's ECONNRESET ("aborted"), which the S3 server answers as IncompleteBody.
   */
  body: Readable;
  /** Decoded content length: x-amz-decoded-content-length for aws-chunked bodies, else Content-Length. */
  contentLength: number | undefined;
  /** Checksums verified (crc32, crc32c, sha1, sha256 → base64), complete once `body` has ended. */
  checksums: Record<string, string>;
}

/** What the request claims: who signed, for which scope, when, over which headers. */
interface Claim {
  accessKeyId: string;
  /** YYYYMMDD of the credential scope. */
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
  /** x-amz-date (or Date) in ISO 8601 basic form, as the string to sign carries it. */
  timestamp: string;
  /** The same instant in milliseconds since the epoch. */
  signedAt: number;
  /** Seconds of validity of a presigned URL; undefined for the Authorization header. */
  expires?: number;
}

// S3: "the request time … must be within 15 minutes of the AWS server time".
const MAX_SKEW_MS = 15 * 60 * 1000;
// SigV4 presigned URLs live at most 7 days.
const MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Bodies up to this size with nothing to verify are read from the request itself (plainBody). */
const PASS_THROUGH_BYTES = 64 * 1024;

const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

const signatureMismatch = (details: Record<string, string>) => new AuthError('SignatureDoesNotMatch',
  'The request signature we calculated does not match the signature you provided. Check your key and signing method.', 403, details);

/** Verifies the Authorization header or the presigned query (X-Amz-*) of `req`; throws AuthError. */
export function verifyRequest(req: IncomingMessage, options: VerifyOptions): VerifiedRequest {
  const target = req.url ?? '/';
  const questionMark = target.indexOf('?');
  const rawPath = questionMark < 0 ? target : target.slice(0, questionMark);
  const query = queryPairs(questionMark < 0 ? '' : target.slice(questionMark + 1));

  const claim = readClaim(req, query);
  if (!claim) return { accessKeyId: undefined, ...plainBody(req, headerChecksums(req, options), undefined) };

  const secret = options.secretOf(claim.accessKeyId);
  if (secret === undefined) throw new AuthError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', 403, { AWSAccessKeyId: claim.accessKeyId });
  checkScope(claim, options);
  checkTime(claim, options.now?.() ?? Date.now());
  checkEverythingSigned(req, claim);

  const payload = declaredPayload(req, claim, options);
  const scope: SigningScope = {
    timestamp: claim.timestamp,
    scope: `${claim.date}/${claim.region}/${claim.service}/${claim.terminator}`,
    key: signingKey(secret, claim.date, claim.region, claim.service),
  };
  const uris = canonicalUris(rawPath, options.service);
  const canonicalQueryString = canonicalQuery(query);
  const headers = canonicalHeaders(req, claim.signedHeaders);
  const checkSignature = (payloadHash: string): AuthError | undefined => {
    let first: { canonical: string; toSign: string } | undefined;
    for (const uri of uris) {
      const canonical = canonicalRequest(req.method ?? 'GET', uri, canonicalQueryString, headers, claim.signedHeaders, payloadHash);
      // Header values are the bytes sent, which Node reads one latin1 character a byte: hashed back
      // into those bytes, as S3 hashes them, a UTF-8 value (the SDK's non-ASCII metadata) verifies
      const toSign = stringToSign(scope, Buffer.from(canonical, 'latin1'));
      if (sameSignature(hmacHex(scope.key, toSign), claim.signature)) return undefined;
      first ??= { canonical, toSign };
    }
    // in S3's order, with the bytes of each text as S3 shows them
    return signatureMismatch({ AWSAccessKeyId: claim.accessKeyId, StringToSign: first!.toSign, SignatureProvided: claim.signature,
      StringToSignBytes: spacedHexBytes(first!.toSign), CanonicalRequest: first!.canonical, CanonicalRequestBytes: spacedHexBytes(first!.canonical) });
  };

  // Without x-amz-content-sha256 (allowed outside S3) the payload hash is known only at the end of the body.
  if (payload.kind === 'computed') {
    return { accessKeyId: claim.accessKeyId, ...plainBody(req, payload.checksums, undefined, checkSignature) };
  }
  const mismatch = checkSignature(payload.signedAs);
  if (mismatch) throw mismatch;
  if (payload.kind === 'chunked') {
    const checksums: Record<string, string> = {};
    const decoder = new AwsChunkedDecoder({
      decodedLength: payload.decodedLength,
      signing: payload.signedChunks ? { scope, seedSignature: claim.signature } : undefined,
      trailer: payload.trailer,
      checksums,
    });
    const decoded = VerifiedBody.pipeFrom(req, decoder);
    if (payload.checksums.length === 0) return { accessKeyId: claim.accessKeyId, body: decoded, contentLength: payload.decodedLength, checksums };
    // x-amz-checksum-* sent as headers with an aws-chunked body: checked on the decoded content.
    const body = new VerifiedBody({ checksums: payload.checksums, verified: checksums });
    // pipeline passes a decoding error on to `body`, and its callback handles the error meanwhile.
    pipeline(decoded, body, () => undefined);
    return { accessKeyId: claim.accessKeyId, body, contentLength: payload.decodedLength, checksums };
  }
  // S3 answers a body cut short as IncompleteBody whatever its reader's error (S3Server)
  const passThrough = options.service === 's3' && payload.kind === 'unsigned';
  return { accessKeyId: claim.accessKeyId, ...plainBody(req, payload.checksums, payload.kind === 'sha256' ? payload.signedAs : undefined, undefined, passThrough) };
}

// --- who signed, and how: the Authorization header or the X-Amz-* query of a presigned URL ---

function readClaim(req: IncomingMessage, query: Array<[string, string]>): Claim | undefined {
  const authorization = req.headers.authorization;
  const queryValue = (name: string) => query.find(([key]) => key === name)?.[1];
  const presigned = queryValue('X-Amz-Algorithm') !== undefined || queryValue('X-Amz-Credential') !== undefined || queryValue('X-Amz-Signature') !== undefined;
  if (authorization !== undefined && presigned) {
    throw new AuthError('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified', 400);
  }
  if (authorization !== undefined) return headerClaim(req, authorization);
  if (presigned) return presignedClaim(queryValue);
  if (queryValue('AWSAccessKeyId') !== undefined || queryValue('Signature') !== undefined) throw unsupportedMechanism();
  return undefined;
}

export const unsupportedMechanism = () => new AuthError('InvalidRequest', `The authorization mechanism you have provided is not supported. Please use ${ALGORITHM}.`, 400);
const headerMalformed = (why: string, details: Record<string, string> = {}) => new AuthError('AuthorizationHeaderMalformed', `The authorization header is malformed; ${why}`, 400, details);
const queryMalformed = (message: string) => new AuthError('AuthorizationQueryParametersError', message, 400);
const CREDENTIAL_FORM = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".';

// SigV4 header form: "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>"
function headerClaim(req: IncomingMessage, authorization: string): Claim {
  const space = authorization.indexOf(' ');
  if (authorization.slice(0, space < 0 ? undefined : space) !== ALGORITHM) throw unsupportedMechanism();
  const fields = new Map<string, string>();
  for (const part of authorization.slice(space + 1).split(',')) {
    const equals = part.indexOf('=');
    if (equals > 0) fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }
  const credential = fields.get('Credential');
  if (credential === undefined) throw headerMalformed(`the Credential is mal-formed; ${CREDENTIAL_FORM}`);
  const signedHeaders = fields.get('SignedHeaders');
  if (!signedHeaders) throw headerMalformed('missing the SignedHeaders component.');
  const signature = fields.get('Signature');
  if (!signature) throw headerMalformed('missing the Signature component.');
  const scope = credential.split('/');
  if (scope.length !== 5 || scope.some((part) => part === '')) throw headerMalformed(`the Credential is mal-formed; ${CREDENTIAL_FORM}`);

  const { timestamp, signedAt } = headerTimestamp(req);
  if (scope[1] !== timestamp.slice(0, 8)) throw headerMalformed('Invalid credential date. Date is not the same as X-Amz-Date.');
  return {
    accessKeyId: scope[0], date: scope[1], region: scope[2], service: scope[3], terminator: scope[4],
    signedHeaders: signedHeaders.split(';'), signature, timestamp, signedAt,
  };
}

/** x-amz-date, else the Date header, as ISO 8601 basic (the string to sign's form), and as epoch milliseconds. */
function headerTimestamp(req: IncomingMessage): { timestamp: string; signedAt: number } {
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate === 'string') {
    const signedAt = parseAmzDate(amzDate);
    if (signedAt !== undefined) return { timestamp: amzDate, signedAt };
  } else if (req.headers.date !== undefined) {
    const millis = Date.parse(req.headers.date);
    if (!Number.isNaN(millis)) return { timestamp: new Date(millis).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''), signedAt: millis };
  }
  throw new AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header', 403);
}

/** 20130524T000000Z → epoch milliseconds; undefined when malformed. */
export function parseAmzDate(value: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  const millis = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(millis);
  return date.getUTCDate() === day && date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second ? millis : undefined;
}

// S3 presigned URL: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature.
function presignedClaim(queryValue: (name: string) => string | undefined): Claim {
  const algorithm = queryValue('X-Amz-Algorithm');
  const credential = queryValue('X-Amz-Credential');
  const timestamp = queryValue('X-Amz-Date');
  const expires = queryValue('X-Amz-Expires');
  const signedHeaders = queryValue('X-Amz-SignedHeaders');
  const signature = queryValue('X-Amz-Signature');
  if (!algorithm || !credential || !timestamp || !expires || !signedHeaders || !signature) {
    throw queryMalformed('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  if (algorithm !== ALGORITHM) throw queryMalformed(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
  const scope = credential.split('/');
  if (scope.length !== 5 || scope.some((part) => part === '')) throw queryMalformed(`Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; ${CREDENTIAL_FORM}`);
  const signedAt = parseAmzDate(timestamp);
  if (signedAt === undefined) throw queryMalformed('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  if (!/^\d+$/.test(expires)) throw queryMalformed(/^-\d+$/.test(expires) ? 'X-Amz-Expires must be non-negative' : 'X-Amz-Expires should be a number');
  const seconds = Number(expires);
  if (seconds > MAX_PRESIGNED_EXPIRES) {
    throw queryMalformed(`X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than ${MAX_PRESIGNED_EXPIRES} seconds`);
  }
  if (scope[1] !== timestamp.slice(0, 8)) throw queryMalformed(`Invalid credential date "${scope[1]}". This date is not the same as X-Amz-Date: "${timestamp.slice(0, 8)}".`);
  return {
    accessKeyId: scope[0], date: scope[1], region: scope[2], service: scope[3], terminator: scope[4],
    signedHeaders: signedHeaders.split(';'), signature, timestamp, signedAt, expires: seconds,
  };
}

// --- the claim against the endpoint, the clock and the request ---

/** The credential scope must name this endpoint: its region, its service, `aws4_request`. */
export function checkScope(claim: Pick<Claim, 'region' | 'service' | 'terminator' | 'expires'>, options: VerifyOptions,
  malformed = (why: string, details: Record<string, string> = {}) => claim.expires === undefined
    ? headerMalformed(why, details)
    : new AuthError('AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; ${why}`, 400, details)): void {
  if (options.region !== undefined && claim.region !== options.region && claim.region !== options.regionAlias) {
    throw malformed(`the region '${claim.region}' is wrong; expecting '${options.region}'`, { Region: options.region });
  }
  if (claim.service !== options.service) throw malformed(`incorrect service "${claim.service}". This endpoint belongs to "${options.service}".`);
  if (claim.terminator !== 'aws4_request') throw malformed(`incorrect terminal "${claim.terminator}". This endpoint uses "aws4_request".`);
}

function checkTime(claim: Claim, now: number): void {
  const { signedAt } = claim;
  const serverTime = () => new Date(now).toISOString().replace(/\.\d{3}/, '');
  if (claim.expires === undefined) {
    if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
      throw new AuthError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', 403,
        { RequestTime: claim.timestamp, ServerTime: serverTime(), MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS) });
    }
    return;
  }
  if (signedAt - now > MAX_SKEW_MS) throw new AuthError('AccessDenied', 'Request is not yet valid', 403, { ServerTime: serverTime() });
  if (now > signedAt + claim.expires * 1000) {
    throw new AuthError('AccessDenied', 'Request has expired', 403,
      { 'X-Amz-Expires': String(claim.expires), Expires: new Date(signedAt + claim.expires * 1000).toISOString().replace(/\.\d{3}/, ''), ServerTime: serverTime() });
  }
}

/**
 * The Host and every x-amz-* header the request carries must be covered by the signature (a proxy
 * could add them otherwise). Names are taken as listed, as the canonical request takes them: a
 * `Host` (SigV4 lists lowercase names) signs no Host header's value, so it covers nothing.
 */
function checkEverythingSigned(req: IncomingMessage, claim: Claim): void {
  const signed = new Set(claim.signedHeaders);
  const unsigned = Object.keys(req.headers).filter((name) => (name === 'host' || name.startsWith('x-amz-')) && !signed.has(name));
  if (unsigned.length > 0) {
    throw new AuthError('AccessDenied', 'There were headers present in the request which were not signed', 403, { HeadersNotSigned: unsigned.join(', ') });
  }
}

// --- the payload: what x-amz-content-sha256 declares, and the body stream that checks it ---

type Payload =
  | { kind: 'unsigned' | 'sha256'; signedAs: string; checksums: ChecksumClaim[] }
  | { kind: 'computed'; checksums: ChecksumClaim[] }
  | { kind: 'chunked'; signedAs: string; signedChunks: boolean; decodedLength: number; trailer: ChecksumAlgorithm | undefined; checksums: ChecksumClaim[] };

function declaredPayload(req: IncomingMessage, claim: Claim, { service, ...options }: VerifyOptions): Payload {
  const declared = singleHeader(req, 'x-amz-content-sha256');
  const checksums = headerChecksums(req, options);
  if (declared === undefined) {
    if (service === 's3') {
      // S3's presigned URLs sign UNSIGNED-PAYLOAD
      if (claim.expires !== undefined) return { kind: 'unsigned', signedAs: UNSIGNED_PAYLOAD, checksums };
      throw new AuthError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256', 400);
    }
    // other services sign the body's hash, presigned or not: checked once the body is read
    if (bodyIsEmpty(req)) return { kind: 'sha256', signedAs: EMPTY_SHA256, checksums };
    return { kind: 'computed', checksums };
  }
  if (declared === UNSIGNED_PAYLOAD) return { kind: 'unsigned', signedAs: declared, checksums };
  if (SHA256_HEX.test(declared)) return { kind: 'sha256', signedAs: declared, checksums };
  if (declared === STREAMING_SIGNED || declared === STREAMING_SIGNED_TRAILER || declared === STREAMING_UNSIGNED_TRAILER) {
    const length = singleHeader(req, 'x-amz-decoded-content-length');
    if (length === undefined || !/^\d{1,15}$/.test(length)) {
      throw new AuthError('MissingContentLength', 'You must provide the Content-Length HTTP header.', 411);
    }
    const trailer = declared === STREAMING_SIGNED ? undefined : trailerAlgorithm(req);
    return { kind: 'chunked', signedAs: declared, signedChunks: declared !== STREAMING_UNSIGNED_TRAILER, decodedLength: Number(length), trailer, checksums };
  }
  throw new AuthError('InvalidArgument', `x-amz-content-sha256 must be ${UNSIGNED_PAYLOAD}, ${STREAMING_UNSIGNED_TRAILER}, ${STREAMING_SIGNED}, ${STREAMING_SIGNED_TRAILER}, or a valid sha256 value.`, 400,
    { ArgumentName: 'x-amz-content-sha256', ArgumentValue: declared });
}

/** Node joins repeated headers into one string (only Set-Cookie stays a list). */
function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function bodyIsEmpty(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
}

/** x-amz-checksum-* request headers, each checked against the body. */
function headerChecksums(req: IncomingMessage, options: Pick<VerifyOptions, 'bodyChecksums'>): ChecksumClaim[] {
  return options.bodyChecksums === false ? [] : checksumClaims(req.headers);
}

/** x-amz-trailer names the checksum header that follows the last chunk (the SDKs send one, or none). */
function trailerAlgorithm(req: IncomingMessage): ChecksumAlgorithm | undefined {
  const trailer = singleHeader(req, 'x-amz-trailer');
  if (trailer === undefined) return undefined;
  const algorithm = checksumHeaderAlgorithm(trailer.trim());
  if (!algorithm) {
    throw new AuthError('InvalidRequest', 'The value specified in the x-amz-trailer header is not supported', 400);
  }
  return algorithm;
}

function plainBody(req: IncomingMessage, checksums: ChecksumClaim[], expectedSha256: string | undefined, checkSignature?: (payloadHash: string) => AuthError | undefined,
  passThrough = false) {
  const length = req.headers['content-length'];
  const verified: Record<string, string> = {};
  // No body (most GETs, HEADs, DELETEs) and nothing claimed about it: nothing to verify, and no stream to build.
  if (bodyIsEmpty(req) && checksums.length === 0 && !checkSignature && (expectedSha256 === undefined || expectedSha256 === EMPTY_SHA256)) {
    return { body: req as Readable, contentLength: length === undefined ? undefined : 0, checksums: verified };
  }
  // A small S3 body with nothing claimed about it (UNSIGNED-PAYLOAD, no checksum): the request itself,
  // without a stream in between (~7 % of a 4 KiB PUT's event-loop time). Its reader may get the
  // backlog joined in one read, which stays small; larger bodies go chunk by chunk (CHUNK_BY_CHUNK).
  if (passThrough && checksums.length === 0 && length !== undefined && req.headers['transfer-encoding'] === undefined && Number(length) <= PASS_THROUGH_BYTES) {
    return { body: req as Readable, contentLength: Number(length), checksums: verified };
  }
  const body = new VerifiedBody({ checksums, expectedSha256, checkSignature, verified });
  return { body: VerifiedBody.pipeFrom(req, body), contentLength: length === undefined ? undefined : Number(length), checksums: verified };
}
