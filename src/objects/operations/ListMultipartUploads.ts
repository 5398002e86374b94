import { el, isoTime } from '../xml.js';
import { integerParameter, OWNER, sendXml, type Operation } from './context.js';
import { uploadChecksumElements } from './UploadPart.js';

/** S3 ListMultipartUploads: uploads in progress by key, then upload id; prefix and markers (no delimiter grouping). */
export const listMultipartUploads: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const maxUploads = Math.min(integerParameter(request, 'max-uploads', 1000, 'Provided max-uploads not an integer or within integer range'), 1000);
  const prefix = request.query.get('prefix') ?? '';
  const keyMarker = request.query.get('key-marker') ?? '';
  const uploadIdMarker = request.query.get('upload-id-marker') ?? '';
  const found = context.objects.uploads(request.bucket, prefix, keyMarker, uploadIdMarker, maxUploads);
  const uploads = found.slice(0, maxUploads);
  const truncated = found.length > maxUploads;
  const last = uploads.at(-1);
  sendXml(res, 200, 'ListMultipartUploadsResult', [
    el('Bucket', request.bucket),
    el('KeyMarker', keyMarker),
    el('UploadIdMarker', uploadIdMarker),
    el('NextKeyMarker', truncated && last ? last.key : ''),
    el('NextUploadIdMarker', truncated && last ? last.uploadId : ''),
    prefix ? el('Prefix', prefix) : '',
    el('MaxUploads', maxUploads),
    el('IsTruncated', truncated),
    ...uploads.map((upload) => el('Upload', [
      el('Key', upload.key), el('UploadId', upload.uploadId), el('Initiator', OWNER), el('Owner', OWNER),
      el('StorageClass', 'STANDARD'), el('Initiated', isoTime(upload.initiated)),
      ...uploadChecksumElements(upload),
    ])),
  ]);
};
