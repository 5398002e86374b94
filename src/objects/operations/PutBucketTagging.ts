import { bucketTagsJson, checkBucketTags, documentTags } from '../tags.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { sendEmpty, type Operation } from './context.js';
import { digestedBody } from './writing.js';

/**
 * S3 PutBucketTagging: the TagSet replaces the bucket's tags (an empty one removes them). S3 takes
 * the body only with a digest of it (Content-MD5 or a checksum), as the SDKs send it.
 */
export const putBucketTagging: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const tags = checkBucketTags(documentTags(await parseXml(await digestedBody(request, res), MAX_MARKUP.configuration)));
  await context.objects.changeConfiguration(request.bucket, 'tags', () => bucketTagsJson(tags));
  sendEmpty(res, 204);
};
