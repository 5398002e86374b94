import { sendEmpty, type Operation } from './context.js';

/** S3 HeadBucket: 200 with the region, or the status of NoSuchBucket (a HEAD has no body). */
export const headBucket: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  sendEmpty(res, 200, { 'x-amz-bucket-region': context.config.region });
};
