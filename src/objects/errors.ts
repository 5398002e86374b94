/**
 * An S3 error: the code, status and message AWS returns for it (S3 API Reference, "Error
 * responses" → "List of error codes"), plus the extra elements some carry (BadDigest's digests).
 */
export class S3Error extends Error {
  override name = 'S3Error';
  constructor(readonly code: string, readonly status: number, message: string, readonly extra: Record<string, string> = {}, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export const errors = {
  accessDenied: () => new S3Error('AccessDenied', 403, 'Access Denied'),
  noSuchBucket: (bucket: string) => new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { BucketName: bucket }),
  noSuchKey: (key: string) => new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key }),
  noSuchUpload: (uploadId: string) => new S3Error('NoSuchUpload', 404,
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: uploadId }),
  bucketAlreadyOwnedByYou: (bucket: string) => new S3Error('BucketAlreadyOwnedByYou', 409,
    'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: bucket }),
  noSuchLifecycleConfiguration: (bucket: string) => new S3Error('NoSuchLifecycleConfiguration', 404, 'The lifecycle configuration does not exist', { BucketName: bucket }),
  bucketNotEmpty: (bucket: string) => new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', { BucketName: bucket }),
  invalidBucketName: (bucket: string) => new S3Error('InvalidBucketName', 400, 'The specified bucket is not valid.', { BucketName: bucket }),
  keyTooLong: () => new S3Error('KeyTooLongError', 400, 'Your key is too long'),
  invalidKey: (why: string) => new S3Error('InvalidArgument', 400, `Object key ${why}`),
  invalidArgument: (message: string, name?: string, value?: string) =>
    new S3Error('InvalidArgument', 400, message, name !== undefined ? { ArgumentName: name, ArgumentValue: value ?? '' } : {}),
  invalidRequest: (message: string) => new S3Error('InvalidRequest', 400, message),
  // what S3 answers to Object Lock asked of a bucket without it, as every bucket here is
  noObjectLock: () => new S3Error('InvalidRequest', 400, 'Bucket is missing Object Lock Configuration'),
  invalidRange: (size: number, range: string) => new S3Error('InvalidRange', 416, 'The requested range is not satisfiable',
    { RangeRequested: range, ActualObjectSize: String(size) }, { 'Content-Range': `bytes */${size}` }),
  // UploadPartCopy: a copy-source range past the source's end (no Content-Range: nothing is being served)
  invalidCopyRange: (size: number, range: string) => new S3Error('InvalidRange', 416, 'The requested range is not satisfiable',
    { RangeRequested: range, ActualObjectSize: String(size) }),
  preconditionFailed: (condition: string) => new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { Condition: condition }),
  badDigest: (expected: string, calculated: string) => new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.',
    { ExpectedDigest: expected, CalculatedDigest: calculated }),
  invalidDigest: (digest: string) => new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified is not valid.', { 'Content-MD5': digest }),
  // worded as S3 answers them (its error code table adds "object" and a period), with the part too-small-to-complete named (PartNumber, unquoted ETag)
  entityTooSmall: (size: number, minimum: number, part?: { partNumber: number; etag: string }) => new S3Error('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum allowed size',
    { ProposedSize: String(size), MinSizeAllowed: String(minimum), ...(part ? { PartNumber: String(part.partNumber), ETag: part.etag } : {}) }),
  entityTooLarge: (size: number, maximum: number) => new S3Error('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size',
    { ProposedSize: String(size), MaxSizeAllowed: String(maximum) }),
  /** A part CompleteMultipartUpload names that is not there, or not with that ETag. */
  invalidPart: (partNumber: number, etag: string) => new S3Error('InvalidPart', 400,
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    { PartNumber: String(partNumber), ETag: etag }),
  // GetObject, HeadObject: a partNumber past the object's parts (a single-part object has one)
  invalidPartNumber: (partNumber: number, partCount: number) => new S3Error('InvalidPartNumber', 416, 'The requested partnumber is not satisfiable',
    { PartNumberRequested: String(partNumber), ActualPartCount: String(partCount) }),
  invalidPartOrder: () => new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. Parts must be ordered by part number.'),
  metadataTooLarge: (size: number, maximum: number) => new S3Error('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size.',
    { Size: String(size), MaxSizeAllowed: String(maximum) }),
  invalidRedirectLocation: () => new S3Error('InvalidRedirectLocation', 400, "The website redirect location must have a prefix of 'http://' or 'https://' or '/'."),
  malformedXml: () => new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema'),
  missingContentLength: () => new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.'),
  requestTimeout: () => new S3Error('RequestTimeout', 400, 'Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.'),
  incompleteBody: () => new S3Error('IncompleteBody', 400, 'You did not provide the number of bytes specified by the Content-Length HTTP header'),
  /**
   * A method the addressed resource does not take: the service (`/`), a bucket, an object or a
   * sub-resource of them (`?acl`, …); Allow names those it does (RFC 9110 §15.5.6).
   */
  methodNotAllowed: (method: string, resourceType: string, allow: readonly string[]) => new S3Error('MethodNotAllowed', 405,
    'The specified method is not allowed against this resource.', { Method: method, ResourceType: resourceType }, { Allow: allow.join(', ') }),
  // a method S3 defines nothing for (TRACE, PROPFIND, ...): S3 cannot parse the request at all, it is not a 405
  unknownMethod: () => new S3Error('BadRequest', 400, 'An error occurred when parsing the HTTP request.'),
  notImplemented: (what: string) => new S3Error('NotImplemented', 501, 'A header you provided implies functionality that is not implemented', { Header: what }),
  changedInShare: (key: string) => new S3Error('ServiceUnavailable', 503,
    'The object is being changed in the file share; try again once the change has settled.', { Key: key }, { 'Retry-After': '2' }),
  // not an AWS error: the share on a drive not mounted (ShareVolume)
  shareUnavailable: () => new S3Error('ServiceUnavailable', 503,
    "The gateway's file share is not available (its drive is not mounted?); try again once it is back.", {}, { 'Retry-After': '30' }),
  // not an AWS error (S3 does not fill up): the status of WebDAV's RFC 4918, as other S3-compatible stores answer
  insufficientStorage: () => new S3Error('InsufficientStorage', 507,
    "There is not enough space left on the gateway's disk to store this. Delete objects or free space on the disk, then try again."),
  slowDown: () => new S3Error('SlowDown', 503, 'Please reduce your request rate.'),
  internalError: () => new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.'),
};
