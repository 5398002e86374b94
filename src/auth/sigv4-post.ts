import { AuthError, spacedHexBytes } from './sigv4-errors.js';
import { checkScope, parseAmzDate, unsupportedMechanism, type VerifyOptions } from './sigv4.js';
import { ALGORITHM, hmacHex, sameSignature, signingKey } from './sigv4-canonical.js';

/**
 * SigV4 of a browser-based POST upload (S3 "Authenticating Requests: Browser-Based Uploads Using
 * POST"): the form carries x-amz-algorithm, x-amz-credential, x-amz-date, the base64 `policy` and
 * x-amz-signature = HMAC-SHA256(signing key of the credential's scope, policy). `fields` are the
 * form fields by lower-case name. Returns the signer's access key id, undefined for a form without
 * a signature (anonymous). The policy's expiration and conditions are the caller's to check.
 */
export function verifyPostSignature(fields: ReadonlyMap<string, string>, options: VerifyOptions): string | undefined {
  if (fields.has('awsaccesskeyid') || fields.has('signature')) throw unsupportedMechanism();
  const signature = fields.get('x-amz-signature');
  if (signature === undefined) return undefined;
  const required = (name: string) => {
    const value = fields.get(name);
    if (value === undefined) throw missingField(name);
    return value;
  };
  const policy = required('policy');
  if (required('x-amz-algorithm') !== ALGORITHM) throw unsupportedMechanism();
  const credential = required('x-amz-credential');
  const timestamp = required('x-amz-date');
  const scope = credential.split('/');
  const malformed = (why: string) => new AuthError('InvalidArgument', `Invalid x-amz-credential: ${why}`, 400, { ArgumentName: 'x-amz-credential', ArgumentValue: credential });
  if (scope.length !== 5 || scope.some((part) => part === '')) throw malformed('expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  const [accessKeyId, date, region, service, terminator] = scope;
  if (parseAmzDate(timestamp) === undefined) {
    throw new AuthError('InvalidArgument', 'x-amz-date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"', 400, { ArgumentName: 'x-amz-date', ArgumentValue: timestamp });
  }
  if (date !== timestamp.slice(0, 8)) throw malformed(`the date "${date}" is not the same as x-amz-date: "${timestamp.slice(0, 8)}".`);
  checkScope({ region, service, terminator }, options, malformed);
  const secret = options.secretOf(accessKeyId);
  if (secret === undefined) throw new AuthError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', 403, { AWSAccessKeyId: accessKeyId });
  if (!sameSignature(hmacHex(signingKey(secret, date, region, service), policy), signature)) {
    throw new AuthError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', 403,
      { AWSAccessKeyId: accessKeyId, StringToSign: policy, SignatureProvided: signature, StringToSignBytes: spacedHexBytes(policy) });
  }
  return accessKeyId;
}

/** S3's answer to a POST form without a field it needs (or with it after the file, where nothing is read). */
export function missingField(name: string): AuthError {
  return new AuthError('InvalidArgument', `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`, 400,
    { ArgumentName: name, ArgumentValue: '' });
}
