import { el } from '../xml.js';
import { sendXml, type Operation } from './context.js';
import { commonPrefixes, contents, decodeToken, echoed, encodeToken, listParameters, refuseOtherVersionParameters } from './listing.js';

/**
 * S3 ListObjectsV2: a page of the key index. The continuation token is the last entry of the
 * previous page (a key or a common prefix), so a page never repeats one.
 */
export const listObjectsV2: Operation = (request, res, context) => {
  refuseOtherVersionParameters(request, 2);
  context.objects.existingBucket(request.bucket);
  const parameters = listParameters(request);
  const token = request.query.get('continuation-token');
  const startAfter = request.query.get('start-after') ?? '';
  const resumeAfter = token !== null ? decodeToken(token) : startAfter;
  const page = context.objects.list(request.bucket, { ...parameters, startAfter: resumeAfter });
  const echo = echoed(parameters);
  // S3 reads fetch-owner without case (True, TRUE)
  const withOwner = request.query.get('fetch-owner')?.toLowerCase() === 'true';
  sendXml(res, 200, 'ListBucketResult', [
    el('Name', request.bucket),
    echo.prefix,
    page.isTruncated && page.last !== undefined ? el('NextContinuationToken', encodeToken(page.last)) : '',
    el('KeyCount', page.objects.length + page.commonPrefixes.length),
    el('MaxKeys', parameters.askedMaxKeys),
    echo.delimiter,
    el('IsTruncated', page.isTruncated),
    ...page.objects.map((object) => contents(object, parameters, withOwner)),
    ...commonPrefixes(page.commonPrefixes, parameters),
    echo.encodingType,
    token !== null ? el('ContinuationToken', token) : '',
    startAfter ? el('StartAfter', parameters.encode(startAfter)) : '',
  ]);
};
