import { sendEmpty, type Operation } from './context.js';

/** S3 DeleteBucketTagging: 204, whether the bucket had tags or not. */
export const deleteBucketTagging: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  await context.objects.changeConfiguration(request.bucket, 'tags', () => undefined);
  sendEmpty(res, 204);
};
