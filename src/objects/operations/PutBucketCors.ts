import { errors } from '../errors.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { sendEmpty, type Operation } from './context.js';
import { corsRulesFrom } from './cors-rules.js';
import { digestedBody } from './writing.js';

/**
 * S3 PutBucketCors: the rules replace the bucket's whole CORS configuration. Browsers' preflights
 * (OptionsObject) and requests naming an Origin are answered by them. S3 takes the body only with
 * a digest of it (Content-MD5 or a checksum).
 */
export const putBucketCors: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const parsed = (await parseXml(await digestedBody(request, res), MAX_MARKUP.cors))?.CORSConfiguration;
  if (parsed === undefined) throw errors.malformedXml();
  const rules = corsRulesFrom(parsed);
  await context.objects.changeConfiguration(request.bucket, 'cors', () => JSON.stringify(rules));
  sendEmpty(res, 200);
};
