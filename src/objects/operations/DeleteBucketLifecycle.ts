import { sendEmpty, type Operation } from './context.js';
import { changeLifecycle } from './lifecycle-rules.js';

/** S3 DeleteBucketLifecycle: 204, whether the bucket had a configuration or not. */
export const deleteBucketLifecycle: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  await changeLifecycle(context.objects, request.bucket, () => undefined);
  sendEmpty(res, 204);
};
