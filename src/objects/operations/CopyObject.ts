import { errors } from '../errors.js';
import { el, isoTime } from '../xml.js';
import { changeOrigin, header, quoted, sendXml, smallBody, storedHeaders, userMetadata, type Operation, type S3Request } from './context.js';
import { copySource, openCopySource } from './copying.js';
import { expirationHeaders } from './lifecycle-rules.js';
import { headerTags, type Tags } from '../tags.js';
import { checkCopySourceConditions, writeCondition } from './reading.js';
import { checkEventQueue, checksumAlgorithmOf, checksumElements, checksumInto, checkWriteHeaders, contentType, wholeContentChecksums } from './writing.js';

/**
 * S3 CopyObject: x-amz-copy-source names `bucket/key`, x-amz-copy-source-if-* are conditions on it,
 * If-Match and If-None-Match on the destination; x-amz-metadata-directive COPY (default) keeps the
 * source's metadata, REPLACE takes the request's; x-amz-tagging-directive likewise for its tags
 * (REPLACE: those of x-amz-tagging, or none).
 */
export const copyObject: Operation = async (request, res, context) => {
  await smallBody(request, res);
  // S3 CopyObject: If-Match / If-None-Match: * are conditions on the destination, as on PutObject
  const condition = writeCondition(request);
  checkWriteHeaders(request);
  const source = copySource(request);
  context.authorize(request, source.bucket, 'read');
  const directive = header(request, 'x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') throw errors.invalidArgument('Unknown metadata directive.', 'x-amz-metadata-directive', directive);
  // S3 CopyObject: a copy onto itself must change the metadata (REPLACE), the website redirect
  // location or name a storage class (any, even the one it has: `aws s3 cp --storage-class` in place succeeds on S3)
  const changesItself = directive === 'REPLACE' || request.headers['x-amz-storage-class'] !== undefined || request.headers[REDIRECT] !== undefined;
  if (source.bucket === request.bucket && source.key === request.key && !changesItself) {
    throw errors.invalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
  }
  const replacedTags = tagsReplacing(request);
  const algorithm = checksumAlgorithmOf(request);
  checkEventQueue(context);
  context.objects.existingBucket(request.bucket);
  const sourceContent = await openCopySource(context.objects, source);
  const original = sourceContent.object;
  try {
    checkCopySourceConditions(request, original);
    // S3 CopyObject: a larger source is copied in parts, by UploadPartCopy
    const { maxObjectBytes } = context.objects.limits;
    if (original.size > maxObjectBytes) throw errors.invalidRequest(`The specified copy source is larger than the maximum allowable size for a copy source: ${maxObjectBytes}`);
    const replace = directive === 'REPLACE';
    // x-amz-checksum-algorithm: a checksum of that algorithm made as the content is copied, else the source's
    const checksums: Record<string, string> = {};
    const content = sourceContent.read(0, original.size - 1);
    const copied = await context.objects.put(request.bucket, request.key, algorithm ? checksumInto(content, algorithm, checksums) : content, {
      contentType: replace ? contentType(request) : original.contentType,
      metadata: replace ? userMetadata(request.headers) : original.metadata,
      headers: copiedHeaders(request, original.headers, replace),
      // the same content: the source's checksums hold for the copy
      checksums: algorithm ? checksums : wholeContentChecksums(original.checksums),
      tags: replacedTags ?? original.tags,
      expectedSize: original.size,
      condition,
      eventName: 'ObjectCreated:Copy',
      origin: changeOrigin(request),
    });
    sendXml(res, 200, 'CopyObjectResult', [el('LastModified', isoTime(copied.lastModified)), el('ETag', quoted(copied.etag)), ...checksumElements(copied.checksums, 'object')],
      expirationHeaders(context.objects, request.bucket, copied));
  } finally {
    await sourceContent.close();
  }
};

const REDIRECT = 'x-amz-website-redirect-location';

/**
 * The stored headers of the copy: the source's (COPY) or the request's (REPLACE), but the website
 * redirect location only from the request under either directive. S3 CopyObject: "x-amz-website-
 * redirect-location is unique to each object and is not copied when using the x-amz-metadata-directive header."
 */
function copiedHeaders(request: S3Request, sourceHeaders: Record<string, string>, replace: boolean): Record<string, string> {
  const requested = storedHeaders(request.headers);
  const { [REDIRECT]: _sourceRedirect, ...kept } = replace ? requested : sourceHeaders;
  return requested[REDIRECT] === undefined ? kept : { ...kept, [REDIRECT]: requested[REDIRECT] };
}

/** The copy's tags under x-amz-tagging-directive REPLACE (an empty list without x-amz-tagging); undefined under COPY, the default. */
function tagsReplacing(request: S3Request): Tags | undefined {
  const directive = header(request, 'x-amz-tagging-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') throw errors.invalidArgument('Unknown tagging directive.', 'x-amz-tagging-directive', directive);
  return directive === 'REPLACE' ? headerTags(header(request, 'x-amz-tagging')) ?? [] : undefined;
}
