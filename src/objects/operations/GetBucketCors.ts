import { S3Error } from '../errors.js';
import { sendXml, type Operation } from './context.js';
import { corsRuleElement, corsRulesOf } from './cors-rules.js';

/** S3 GetBucketCors: the rules as stored; NoSuchCORSConfiguration for a bucket without. */
export const getBucketCors: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const rules = corsRulesOf(context.objects, request.bucket);
  if (!rules) throw new S3Error('NoSuchCORSConfiguration', 404, 'The CORS configuration does not exist', { BucketName: request.bucket });
  sendXml(res, 200, 'CORSConfiguration', rules.map(corsRuleElement));
};
