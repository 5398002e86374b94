import { changeOrigin, sendEmpty, type Operation } from './context.js';
import { checkVersionId } from './reading.js';
import { checkEventQueue } from './writing.js';

/** S3 DeleteObjectTagging: removes the object's tags (204, whether it had any or not), with an `ObjectTagging:Delete` event. */
export const deleteObjectTagging: Operation = async (request, res, context) => {
  checkVersionId(request.query.get('versionId'));
  checkEventQueue(context);
  await context.objects.setTags(request.bucket, request.key, [], 'ObjectTagging:Delete', changeOrigin(request));
  sendEmpty(res, 204);
};
