import { Readable } from 'node:stream';
import { el, isoTime } from '../xml.js';
import { quoted, sendXml, smallBody, type Operation } from './context.js';
import { copySource, copySourceRange } from './copying.js';
import { checkCopySourceConditions } from './reading.js';
import { partNumberOf } from './UploadPart.js';

/**
 * S3 UploadPartCopy: the part's content is the source object named by x-amz-copy-source, or the
 * bytes x-amz-copy-source-range picks from it; x-amz-copy-source-if-* are conditions on the source.
 * The part is written and committed like an uploaded one (a temporary file fsynced, then renamed).
 */
export const uploadPartCopy: Operation = async (request, res, context) => {
  await smallBody(request);
  const partNumber = partNumberOf(request);
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const source = copySource(request);
  context.authorize(request, source.bucket, 'read');
  // a source held in SQLite is copied from there; another streams from its file
  const stored = context.objects.readSmall(source.bucket, source.key, 0);
  const { object: original, file } = stored ? { object: stored.object, file: undefined } : await context.objects.open(source.bucket, source.key);
  try {
    checkCopySourceConditions(request, original);
    const range = copySourceRange(request, original.size) ?? { start: 0, end: original.size - 1 };
    const length = range.end - range.start + 1;
    // an empty source has no byte to start a stream at
    const content = stored ? Readable.from([stored.content.subarray(range.start, range.end + 1)])
      : length > 0 ? file!.createReadStream({ autoClose: false, start: range.start, end: range.end, highWaterMark: 1024 * 1024 }) : Readable.from([]);
    const part = await context.objects.putPart(upload, partNumber, content, { expectedSize: length });
    // S3 UploadPartCopy: CopyPartResult (ETag, LastModified)
    sendXml(res, 200, 'CopyPartResult', [el('ETag', quoted(part.etag)), el('LastModified', isoTime(part.lastModified))]);
  } finally {
    await file?.close();
  }
};
