import { el } from '../xml.js';
import { sendXml, storedHeaders, userMetadata, type Operation } from './context.js';
import { contentType } from './writing.js';

/** S3 CreateMultipartUpload: the metadata is taken now and given to the object on completion. */
export const createMultipartUpload: Operation = async (request, res, context) => {
  const upload = await context.objects.createUpload(request.bucket, request.key, {
    contentType: contentType(request), metadata: userMetadata(request.headers), headers: storedHeaders(request.headers),
  });
  sendXml(res, 200, 'InitiateMultipartUploadResult', [el('Bucket', upload.bucket), el('Key', upload.key), el('UploadId', upload.uploadId)]);
};
