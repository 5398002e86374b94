import type { ChecksumAlgorithm } from '../../auth/checksums.js';
import { errors } from '../errors.js';
import type { UploadChecksum } from '../object-store.js';
import { headerTags } from '../tags.js';
import { el } from '../xml.js';
import { header, sendXml, storedHeaders, userMetadata, type Operation, type S3Request } from './context.js';
import { checksumAlgorithmOf, checkWriteHeaders, contentType } from './writing.js';

/**
 * S3 CreateMultipartUpload: the metadata and tags are taken now and given to the object on completion, and
 * with x-amz-checksum-algorithm the kind of checksum it will have (x-amz-checksum-type).
 */
export const createMultipartUpload: Operation = async (request, res, context) => {
  checkWriteHeaders(request);
  const checksum = uploadChecksum(request);
  const upload = await context.objects.createUpload(request.bucket, request.key, {
    contentType: contentType(request), metadata: userMetadata(request.headers), headers: storedHeaders(request.headers), checksum,
    tags: headerTags(header(request, 'x-amz-tagging')),
  });
  const checksumHeaders: Record<string, string> = checksum ? { 'x-amz-checksum-algorithm': checksum.algorithm.toUpperCase(), 'x-amz-checksum-type': checksum.type } : {};
  sendXml(res, 200, 'InitiateMultipartUploadResult', [el('Bucket', upload.bucket), el('Key', upload.key), el('UploadId', upload.uploadId)], checksumHeaders);
};

/** Checksum types of a multipart upload, by algorithm (the first the default): CRC64NVME has no COMPOSITE, the SHAs no FULL_OBJECT. */
const UPLOAD_CHECKSUM_TYPES: Record<ChecksumAlgorithm, Array<UploadChecksum['type']>> = {
  crc32: ['COMPOSITE', 'FULL_OBJECT'],
  crc32c: ['COMPOSITE', 'FULL_OBJECT'],
  crc64nvme: ['FULL_OBJECT'],
  sha1: ['COMPOSITE'],
  sha256: ['COMPOSITE'],
};

function uploadChecksum(request: S3Request): UploadChecksum | undefined {
  const algorithm = checksumAlgorithmOf(request);
  const typeText = header(request, 'x-amz-checksum-type');
  if (algorithm === undefined) {
    if (typeText !== undefined) throw errors.invalidRequest('The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.');
    return undefined;
  }
  const types = UPLOAD_CHECKSUM_TYPES[algorithm];
  const type = (typeText?.toUpperCase() ?? types[0]) as UploadChecksum['type'];
  if (!types.includes(type)) throw errors.invalidRequest(`The ${algorithm.toUpperCase()} checksum algorithm does not support the ${typeText} checksum type for multipart uploads.`);
  return { algorithm, type };
}
