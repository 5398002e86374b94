import { errors } from '../errors.js';
import { el, isoTime } from '../xml.js';
import { OWNER, quoted, sendXml, type Operation } from './context.js';
import { checksumAlgorithmElements, commonPrefixes, echoed, listParameters } from './listing.js';

/** S3 ListObjectVersions of an unversioned bucket: each current object once, VersionId `null`, IsLatest. */
export const listObjectVersions: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const parameters = listParameters(request);
  const keyMarker = request.query.get('key-marker') ?? '';
  checkVersionIdMarker(request.query.get('version-id-marker'), keyMarker);
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

/**
 * S3 ListObjectVersions: version-id-marker is a version of key-marker's key, so not without one, not
 * empty, and here, buckets being unversioned, `null` (what NextVersionIdMarker says): another is
 * refused as S3 refuses a version id it never made, rather than ignored.
 */
function checkVersionIdMarker(marker: string | null, keyMarker: string): void {
  if (marker === null) return;
  if (!keyMarker) throw errors.invalidArgument('A version-id marker cannot be specified without a key marker.', 'version-id-marker', marker);
  if (marker === '') throw errors.invalidArgument('A version-id marker cannot be empty.', 'version-id-marker', marker);
  if (marker !== 'null') throw errors.invalidArgument('Invalid version id specified', 'version-id-marker', marker);
}
