import { el, isoTime } from '../xml.js';
import { OWNER, sendXml, type Operation } from './context.js';
import { commonPrefixes, echoed, listParameters } from './listing.js';
import { uploadChecksumElements } from './UploadPart.js';

/**
 * S3 ListMultipartUploads: uploads in progress by key, a key's by initiation time; prefix,
 * delimiter (CommonPrefixes), key-marker and upload-id-marker, max-uploads, encoding-type=url.
 */
export const listMultipartUploads: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const parameters = listParameters(request, 'max-uploads');
  const keyMarker = request.query.get('key-marker') ?? '';
  // S3 ListMultipartUploads: upload-id-marker is ignored without a key-marker
  const uploadIdMarker = keyMarker ? request.query.get('upload-id-marker') ?? '' : '';
  const listing = context.objects.uploads(request.bucket, { ...parameters, keyMarker, uploadIdMarker, maxUploads: parameters.maxKeys });
  const next = listing.isTruncated ? listing.last : undefined;
  const echo = echoed(parameters, 'MaxUploads');
  sendXml(res, 200, 'ListMultipartUploadsResult', [
    el('Bucket', request.bucket),
    el('KeyMarker', parameters.encode(keyMarker)),
    el('UploadIdMarker', uploadIdMarker),
    el('NextKeyMarker', next ? parameters.encode(next.key) : ''),
    parameters.prefix ? echo.prefix : '',
    echo.delimiter,
    el('NextUploadIdMarker', next?.uploadId ?? ''),
    echo.maxKeys,
    el('IsTruncated', listing.isTruncated),
    ...listing.uploads.map((upload) => el('Upload', [
      el('Key', parameters.encode(upload.key)), el('UploadId', upload.uploadId), el('Initiator', OWNER), el('Owner', OWNER),
      el('StorageClass', 'STANDARD'), el('Initiated', isoTime(upload.initiated)),
      ...uploadChecksumElements(upload),
    ])),
    ...commonPrefixes(listing.commonPrefixes, parameters),
    echo.encodingType,
  ]);
};
