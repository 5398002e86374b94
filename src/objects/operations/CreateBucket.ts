import { sendEmpty, smallBody, type Operation } from './context.js';

/** S3 CreateBucket: a CreateBucketConfiguration body (LocationConstraint) is accepted and ignored — the gateway is one region. */
export const createBucket: Operation = async (request, res, context) => {
  await smallBody(request);
  await context.objects.createBucket(request.bucket);
  sendEmpty(res, 200, { Location: `/${request.bucket}` });
};
