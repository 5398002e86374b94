import { S3Error } from '../errors.js';
import { tagSetElement, type Tags } from '../tags.js';
import { sendXml, type Operation } from './context.js';

/** S3 GetBucketTagging: the bucket's tags in the order given; NoSuchTagSet for a bucket without. */
export const getBucketTagging: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const stored = context.objects.configuration(request.bucket, 'tags');
  if (stored === undefined) throw new S3Error('NoSuchTagSet', 404, 'The TagSet does not exist', { BucketName: request.bucket });
  sendXml(res, 200, 'Tagging', [tagSetElement(JSON.parse(stored) as Tags)]);
};
