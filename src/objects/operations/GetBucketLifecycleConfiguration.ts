import { errors } from '../errors.js';
import { sendXml, type Operation } from './context.js';
import { lifecycleOf, ruleElement } from './lifecycle-rules.js';

/** S3 GetBucketLifecycleConfiguration: the rules as stored; NoSuchLifecycleConfiguration for a bucket without. */
export const getBucketLifecycleConfiguration: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const configuration = lifecycleOf(context.objects, request.bucket);
  if (!configuration) throw errors.noSuchLifecycleConfiguration(request.bucket);
  sendXml(res, 200, 'LifecycleConfiguration', configuration.rules.map(ruleElement),
    { 'x-amz-transition-default-minimum-object-size': configuration.transitionDefaultMinimumObjectSize });
};
