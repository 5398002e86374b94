import { el } from '../xml.js';
import { sendXml, type Operation } from './context.js';
import { commonPrefixes, contents, echoed, listParameters, refuseOtherVersionParameters } from './listing.js';

/** S3 ListObjects (version 1): resumes after `marker`; NextMarker only with a delimiter, as S3. */
export const listObjects: Operation = (request, res, context) => {
  refuseOtherVersionParameters(request, 1);
  context.objects.existingBucket(request.bucket);
  const parameters = listParameters(request);
  const marker = request.query.get('marker') ?? '';
  const page = context.objects.list(request.bucket, { ...parameters, startAfter: marker });
  const echo = echoed(parameters);
  sendXml(res, 200, 'ListBucketResult', [
    el('Name', request.bucket),
    echo.prefix,
    el('Marker', parameters.encode(marker)),
    page.isTruncated && parameters.delimiter && page.last !== undefined ? el('NextMarker', parameters.encode(page.last)) : '',
    el('MaxKeys', parameters.askedMaxKeys),
    echo.delimiter,
    el('IsTruncated', page.isTruncated),
    ...page.objects.map((object) => contents(object, parameters, true)),
    ...commonPrefixes(page.commonPrefixes, parameters),
    echo.encodingType,
  ]);
};
