import { sendEmpty, type Operation } from './context.js';

/** S3 DeleteBucketCors: 204, whether the bucket had a configuration or not. */
export const deleteBucketCors: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  await context.objects.changeConfiguration(request.bucket, 'cors', () => undefined);
  sendEmpty(res, 204);
};
