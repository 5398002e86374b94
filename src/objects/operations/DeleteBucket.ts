import { sendEmpty, type Operation } from './context.js';

/** S3 DeleteBucket: only an empty bucket (BucketNotEmpty otherwise). */
export const deleteBucket: Operation = async (request, res, context) => {
  await context.objects.deleteBucket(request.bucket);
  sendEmpty(res, 204);
};
