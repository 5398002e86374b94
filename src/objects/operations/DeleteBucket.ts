import { sendEmpty, type Operation } from './context.js';

/** S3 DeleteBucket: only a bucket without objects (BucketNotEmpty otherwise); its multipart uploads go with it. */
export const deleteBucket: Operation = async (request, res, context) => {
  await context.objects.deleteBucket(request.bucket);
  sendEmpty(res, 204);
};
