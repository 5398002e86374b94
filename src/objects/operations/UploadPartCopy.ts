import { el, isoTime } from '../xml.js';
import { quoted, sendXml, smallBody, type Operation } from './context.js';
import { copySource, copySourceRange, openCopySource } from './copying.js';
import { checkCopySourceConditions } from './reading.js';
import { partChecksums, partNumberOf } from './UploadPart.js';
import { checksumElements } from './writing.js';

/**
 * S3 UploadPartCopy: the part's content is the source object named by x-amz-copy-source, or the
 * bytes x-amz-copy-source-range picks from it; x-amz-copy-source-if-* are conditions on the source.
 * The part is written and committed like an uploaded one (a temporary file fsynced, then renamed).
 */
export const uploadPartCopy: Operation = async (request, res, context) => {
  await smallBody(request, res);
  const partNumber = partNumberOf(request);
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const source = copySource(request);
  context.authorize(request, source.bucket, 'read');
  const sourceContent = await openCopySource(context.objects, source);
  const original = sourceContent.object;
  try {
    checkCopySourceConditions(request, original);
    const range = copySourceRange(request, original.size) ?? { start: 0, end: original.size - 1 };
    const length = range.end - range.start + 1;
    const part = await context.objects.putPart(upload, partNumber, sourceContent.read(range.start, range.end), { expectedSize: length });
    // S3 UploadPartCopy: CopyPartResult (ETag, LastModified)
    sendXml(res, 200, 'CopyPartResult', [el('ETag', quoted(part.etag)), el('LastModified', isoTime(part.lastModified)), ...checksumElements(partChecksums(upload, part), 'part')]);
  } finally {
    await sourceContent.close();
  }
};
