import { sendEmpty, type Operation } from './context.js';

/** S3 AbortMultipartUpload: the upload and its parts are deleted. */
export const abortMultipartUpload: Operation = async (request, res, context) => {
  const upload = context.objects.existingUpload(request.bucket, request.key, request.query.get('uploadId') ?? '');
  await context.objects.abortUpload(upload);
  sendEmpty(res, 204);
};
