import { errors } from '../errors.js';
import type { PartRecord, UploadRecord } from '../object-store.js';
import { checksumHeaderAlgorithm } from '../../auth/checksums.js';
import { header, quoted, sendEmpty, type Operation, type S3Request } from './context.js';
import { announcedLength, checksumHeaders, checksumKindElements, checkWriteHeaders, contentMd5 } from './writing.js';

/** S3 UploadPart: part numbers 1-10,000; a part uploaded again replaces the earlier one. */
export const uploadPart: Operation = async (request, res, context) => {
  const partNumber = partNumberOf(request);
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  checkWriteHeaders(request);
  checkPartChecksumAlgorithm(request, upload);
  const part = await context.objects.putPart(upload, partNumber, request.body, { contentMd5: contentMd5(request), expectedSize: announcedLength(request) });
  sendEmpty(res, 200, { ETag: quoted(part.etag), ...checksumHeaders(partChecksums(upload, part) ?? request.checksums, 'part') });
};

/**
 * An upload with a checksum algorithm takes parts with a checksum of that algorithm (in a header or
 * a trailer, verified as the body streams) or none (the part's is computed all the same).
 */
function checkPartChecksumAlgorithm(request: S3Request, upload: UploadRecord): void {
  if (!upload.checksum) return;
  const declared = [...Object.keys(request.headers), header(request, 'x-amz-trailer') ?? ''].map(checksumHeaderAlgorithm);
  const other = declared.find((algorithm) => algorithm !== undefined && algorithm !== upload.checksum!.algorithm);
  if (other) throw errors.invalidRequest(`Checksum Type mismatch occurred, expected checksum Type: ${upload.checksum.algorithm}, actual checksum Type: ${other}`);
}

/** The algorithm and type of an upload's checksum (ListParts, ListMultipartUploads); none without one. */
export function uploadChecksumElements(upload: UploadRecord): string[] {
  return upload.checksum ? checksumKindElements([upload.checksum.algorithm], upload.checksum.type) : [];
}

/** A part's checksum by its upload's algorithm (none without one). */
export function partChecksums(upload: UploadRecord, part: PartRecord): Record<string, string> | undefined {
  return upload.checksum && part.checksum !== undefined ? { [upload.checksum.algorithm]: part.checksum } : undefined;
}

/** The partNumber query parameter, 1-10,000 (InvalidArgument otherwise). */
export function partNumberOf(request: S3Request): number {
  const partText = request.query.get('partNumber') ?? '';
  const partNumber = Number(partText);
  if (!/^\d{1,5}$/.test(partText) || partNumber < 1 || partNumber > 10000) {
    throw errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partText);
  }
  return partNumber;
}
