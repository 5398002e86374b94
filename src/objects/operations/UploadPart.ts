import { errors } from '../errors.js';
import { quoted, sendEmpty, type Operation, type S3Request } from './context.js';
import { announcedLength, checksumHeaders, contentMd5 } from './writing.js';

/** S3 UploadPart: part numbers 1-10,000; a part uploaded again replaces the earlier one. */
export const uploadPart: Operation = async (request, res, context) => {
  const partNumber = partNumberOf(request);
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const part = await context.objects.putPart(upload, partNumber, request.body, { contentMd5: contentMd5(request), expectedSize: announcedLength(request) });
  sendEmpty(res, 200, { ETag: quoted(part.etag), ...checksumHeaders(request.checksums, 'part') });
};

/** The partNumber query parameter, 1-10,000 (InvalidArgument otherwise). */
export function partNumberOf(request: S3Request): number {
  const partText = request.query.get('partNumber') ?? '';
  const partNumber = Number(partText);
  if (!/^\d{1,5}$/.test(partText) || partNumber < 1 || partNumber > 10000) {
    throw errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partText);
  }
  return partNumber;
}
