import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * AWS Signature Version 4 verification for the gateway's AWS-compatible HTTP APIs:
 * S3 on `s3.port` and the IoT data plane on `http.port`.
 */

export type AuthErrorCode =
  | 'AccessDenied'
  | 'InvalidAccessKeyId'
  | 'SignatureDoesNotMatch'
  | 'RequestTimeTooSkewed'
  | 'AuthorizationHeaderMalformed'
  | 'AuthorizationQueryParametersError'
  | 'XAmzContentSHA256Mismatch'
  | 'BadDigest'
  | 'IncompleteBody'
  | 'InvalidArgument'
  | 'InvalidRequest';

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(readonly code: AuthErrorCode, message: string, readonly status = 403) {
    super(message);
  }
}

export interface VerifyOptions {
  /** The signing service name: 's3' canonicalizes the path as S3 does (no double URI-encoding); others (e.g. 'iotdata') double-encode. */
  service: string;
  /** The secret of an access key id; undefined makes InvalidAccessKeyId. */
  secretOf(accessKeyId: string): string | undefined;
  /** Milliseconds since the epoch (tests move the clock). */
  now?: () => number;
}

export interface VerifiedRequest {
  /** The signer; undefined when the request carries no signature at all (anonymous). */
  accessKeyId: string | undefined;
  /**
   * The content: the request itself, or the decoded `aws-chunked` stream. Verification failures
   * found while streaming (a chunk signature, x-amz-content-sha256, a trailing checksum, a short
   * body) are emitted as an AuthError stream error, so nothing is committed.
   */
  body: Readable;
  /** Decoded content length: x-amz-decoded-content-length for aws-chunked bodies, else Content-Length. */
  contentLength: number | undefined;
  /** Checksums verified (crc32, crc32c, sha1, sha256 → base64), complete once `body` has ended. */
  checksums: Record<string, string>;
}

/** Verifies the Authorization header or the presigned query (X-Amz-*) of `req`; throws AuthError. */
export function verifyRequest(_req: IncomingMessage, _options: VerifyOptions): VerifiedRequest {
  throw new Error('not implemented');
}
