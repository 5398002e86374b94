import { changeOrigin, sendEmpty, type Operation } from './context.js';
import { checkEventQueue } from './writing.js';

/** S3 DeleteObject: 204 whether or not the key existed; an ObjectRemoved:Delete event only when it did. */
export const deleteObject: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  checkEventQueue(context);
  await context.objects.remove(request.bucket, request.key, changeOrigin(request));
  sendEmpty(res, 204);
};
