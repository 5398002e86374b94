import { changeOrigin, header, sendEmpty, type Operation } from './context.js';
import { checkVersionId, ifMatchCondition } from './reading.js';
import { checkEventQueue } from './writing.js';

/**
 * S3 DeleteObject: 204 whether or not the key existed; an ObjectRemoved:Delete event only when it
 * did. If-Match makes it conditional (S3 conditional deletes); If-None-Match is no condition of
 * DeleteObject in S3 and is ignored, as there.
 */
export const deleteObject: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  // a version id that is not the object's deletes nothing: refused
  checkVersionId(request.query.get('versionId'));
  checkEventQueue(context);
  await context.objects.remove(request.bucket, request.key, changeOrigin(request), ifMatchCondition(header(request, 'if-match'), request.key));
  sendEmpty(res, 204);
};
