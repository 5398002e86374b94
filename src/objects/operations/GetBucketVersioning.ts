import { sendXml, type Operation } from './context.js';

/** S3 GetBucketVersioning: buckets here are never versioned, which S3 shows as an empty VersioningConfiguration. */
export const getBucketVersioning: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  sendXml(res, 200, 'VersioningConfiguration', []);
};
