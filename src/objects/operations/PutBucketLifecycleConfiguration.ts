import { errors } from '../errors.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { header, sendEmpty, type Operation, type S3Request } from './context.js';
import { changeLifecycle, MAX_LIFECYCLE_RULES, ruleOf, TRANSITION_MINIMUM_SIZES } from './lifecycle-rules.js';
import { digestedBody } from './writing.js';

/**
 * S3 PutBucketLifecycleConfiguration: the configuration replaces the bucket's whole one. Expiration
 * and AbortIncompleteMultipartUpload rules, filtered by prefix, object size and tags, are honoured
 * (lifecycle-expiration.ts); a rule asking for what the gateway has not (transitions, noncurrent
 * versions) is refused, and nothing is stored.
 */
export const putBucketLifecycleConfiguration: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const minimumSize = transitionMinimumSize(request);
  const parsed = (await parseXml(await digestedBody(request, res), MAX_MARKUP.lifecycle))?.LifecycleConfiguration;
  if (typeof parsed !== 'object') throw errors.malformedXml();
  const elements = (parsed.Rule ?? []) as unknown[];
  if (elements.length === 0 || elements.length > MAX_LIFECYCLE_RULES) throw errors.malformedXml();
  const rules = elements.map(ruleOf);
  await changeLifecycle(context.objects, request.bucket, () => ({ rules, transitionDefaultMinimumObjectSize: minimumSize }));
  sendEmpty(res, 200, { 'x-amz-transition-default-minimum-object-size': minimumSize });
};

/** x-amz-transition-default-minimum-object-size: S3's default since 2024 unless the request names the other. */
function transitionMinimumSize(request: S3Request): string {
  const asked = header(request, 'x-amz-transition-default-minimum-object-size');
  if (asked === undefined) return TRANSITION_MINIMUM_SIZES[0];
  if (!TRANSITION_MINIMUM_SIZES.includes(asked)) throw errors.invalidArgument('Invalid TransitionDefaultMinimumObjectSize', 'x-amz-transition-default-minimum-object-size', asked);
  return asked;
}
