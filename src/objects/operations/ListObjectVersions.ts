import { el, isoTime } from '../xml.js';
import { OWNER, quoted, sendXml, type Operation } from './context.js';
import { checksumAlgorithmElements, commonPrefixes, echoed, listParameters } from './listing.js';

/** S3 ListObjectVersions of an unversioned bucket: each current object once, VersionId `null`, IsLatest. */
export const listObjectVersions: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const parameters = listParameters(request);
  const keyMarker = request.query.get('key-marker') ?? '';
  const page = context.objects.list(request.bucket, { ...parameters, startAfter: keyMarker });
  const echo = echoed(parameters);
  const truncatedAt = page.isTruncated ? page.last : undefined;
  sendXml(res, 200, 'ListVersionsResult', [
    el('Name', request.bucket),
    echo.prefix,
    el('KeyMarker', parameters.encode(keyMarker)),
    el('VersionIdMarker', request.query.get('version-id-marker') ?? ''),
    truncatedAt !== undefined ? el('NextKeyMarker', parameters.encode(truncatedAt)) + el('NextVersionIdMarker', 'null') : '',
    echo.maxKeys,
    echo.delimiter,
    el('IsTruncated', page.isTruncated),
    ...page.objects.map((object) => el('Version', [
      el('Key', parameters.encode(object.key)),
      el('VersionId', 'null'),
      el('IsLatest', true),
      el('LastModified', isoTime(object.lastModified)),
      el('ETag', quoted(object.etag)),
      el('Size', object.size),
      el('Owner', OWNER),
      el('StorageClass', 'STANDARD'),
      ...checksumAlgorithmElements(object),
    ])),
    ...commonPrefixes(page.commonPrefixes, parameters),
    echo.encodingType,
  ]);
};
