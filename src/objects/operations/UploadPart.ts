import { errors } from '../errors.js';
import { header, quoted, sendEmpty, type Operation } from './context.js';
import { announcedLength, checksumHeaders, contentMd5 } from './writing.js';

/** S3 UploadPart: part numbers 1-10,000; a part uploaded again replaces the earlier one. */
export const uploadPart: Operation = async (request, res, context) => {
  if (header(request, 'x-amz-copy-source') !== undefined) throw errors.notImplemented('x-amz-copy-source');
  const partText = request.query.get('partNumber') ?? '';
  const partNumber = Number(partText);
  if (!/^\d{1,5}$/.test(partText) || partNumber < 1 || partNumber > 10000) {
    throw errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partText);
  }
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const part = await context.objects.putPart(upload, partNumber, request.body, { contentMd5: contentMd5(request), expectedSize: announcedLength(request) });
  sendEmpty(res, 200, { ETag: quoted(part.etag), ...checksumHeaders(request) });
};
