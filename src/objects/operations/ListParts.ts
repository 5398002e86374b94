import { el, isoTime } from '../xml.js';
import { integerParameter, OWNER, quoted, sendXml, type Operation } from './context.js';
import { partChecksums, uploadChecksumElements } from './UploadPart.js';
import { checksumElements } from './writing.js';

/** S3 ListParts: up to max-parts (1,000) parts after part-number-marker. */
export const listParts: Operation = (request, res, context) => {
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const maxParts = Math.min(integerParameter(request, 'max-parts', 1000, 'Provided max-parts not an integer or within integer range'), 1000);
  const marker = integerParameter(request, 'part-number-marker', 0, 'Provided part-number-marker not an integer or within integer range');
  // S3 ListParts: max-parts=0 is a page of no parts and the last one, as ListObjects' max-keys=0; called
  // truncated, it sent a client paging by IsTruncated back for the same empty page for ever
  const found = maxParts === 0 ? [] : context.objects.parts(upload.uploadId, marker, maxParts + 1);
  const parts = found.slice(0, maxParts);
  const truncated = found.length > maxParts;
  sendXml(res, 200, 'ListPartsResult', [
    el('Bucket', upload.bucket),
    el('Key', upload.key),
    el('UploadId', upload.uploadId),
    el('Initiator', OWNER),
    el('Owner', OWNER),
    el('StorageClass', 'STANDARD'),
    el('PartNumberMarker', marker),
    el('NextPartNumberMarker', parts.at(-1)?.partNumber ?? 0),
    el('MaxParts', maxParts),
    el('IsTruncated', truncated),
    ...uploadChecksumElements(upload),
    ...parts.map((part) => el('Part', [
      el('PartNumber', part.partNumber), el('LastModified', isoTime(part.lastModified)), el('ETag', quoted(part.etag)), el('Size', part.size),
      ...checksumElements(partChecksums(upload, part), 'part'),
    ])),
  ]);
};
