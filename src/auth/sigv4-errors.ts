/** The S3 error codes verification answers with; the HTTP layer renders them (XML for S3, JSON for the IoT data plane). */
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
  | 'InvalidRequest'
  | 'MissingContentLength';

export class AuthError extends Error {
  override name = 'AuthError';
  /**
   * `details` are the extra elements S3 puts in its <Error> body (e.g. StringToSign, CanonicalRequest,
   * ClientComputedContentSHA256, ServerTime): nothing secret, they help a client debug its signer.
   */
  constructor(readonly code: AuthErrorCode, message: string, readonly status = 403, readonly details: Record<string, string> = {}) {
    super(message);
  }
}

/** S3's `StringToSignBytes` and `CanonicalRequestBytes`: each byte (of the text as signed, one latin1 character a byte) as two hex digits, space-separated. */
export function spacedHexBytes(text: string): string {
  return Buffer.from(text, 'latin1').toString('hex').replace(/(..)(?=.)/g, '$1 ');
}
