import { errors } from '../errors.js';
import { el, MAX_MARKUP, parseXml } from '../xml.js';
import { changeOrigin, header, quoted, sendXml, smallBody, type Operation } from './context.js';
import type { RequestedPart } from '../object-store.js';
import { expirationHeaders } from './lifecycle-rules.js';
import { writeCondition } from './reading.js';
import { checkEventQueue, checksumElements } from './writing.js';

/**
 * S3 CompleteMultipartUpload: the listed parts, ascending, become the object; its ETag is the MD5
 * of the parts' MD5s followed by `-N`. The upload and its parts go in the object's transaction.
 */
export const completeMultipartUpload: Operation = async (request, res, context) => {
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  const parsed = (await parseXml(await smallBody(request, res), MAX_MARKUP.completeMultipartUpload))?.CompleteMultipartUpload;
  if (!parsed || typeof parsed !== 'object') throw errors.malformedXml();
  // S3 CompleteMultipartUpload: Part/Checksum<ALGORITHM> of the upload's algorithm is checked against the part's
  const checksumElement = upload.checksum && `Checksum${upload.checksum.algorithm.toUpperCase()}`;
  const parts = ((parsed.Part ?? []) as Array<Record<string, unknown>>).map((part): RequestedPart => {
    if (typeof part?.PartNumber !== 'string' || !/^-?\d{1,5}$/.test(part.PartNumber) || typeof part.ETag !== 'string') throw errors.malformedXml();
    // S3 CompleteMultipartUpload: a part number below 1 is refused as such, not as a part not found (versity/versitygw#1072 quotes AWS)
    if (Number(part.PartNumber) < 1) throw errors.invalidArgument('PartNumber must be >= 1');
    const checksum = checksumElement ? part[checksumElement] : undefined;
    return { partNumber: Number(part.PartNumber), etag: part.ETag, ...(typeof checksum === 'string' ? { checksum } : {}) };
  });
  checkEventQueue(context);
  // the object's checksum, which the joined parts must have (BadDigest otherwise)
  const expectedChecksum = upload.checksum && header(request, `x-amz-checksum-${upload.checksum.algorithm}`);
  const object = await context.objects.completeUpload(upload, parts, changeOrigin(request), { expectedChecksum, condition: writeCondition(request) });
  sendXml(res, 200, 'CompleteMultipartUploadResult', [
    el('Location', `${request.origin}/${request.bucket}/${encodeURI(request.key)}`),
    el('Bucket', request.bucket),
    el('Key', request.key),
    el('ETag', quoted(object.etag)),
    ...checksumElements(object.checksums, 'object'),
  ], expirationHeaders(context.objects, request.bucket, object));
};
