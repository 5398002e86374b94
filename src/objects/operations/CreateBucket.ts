import { S3Error, errors } from '../errors.js';
import { bucketTagsJson, checkBucketTags, tagList, type Tags } from '../tags.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { header, sendEmpty, smallBody, type Operation, type S3Request } from './context.js';
import { asksForAcl } from './writing.js';

/**
 * S3 CreateBucket: the gateway is one region, which a CreateBucketConfiguration's LocationConstraint
 * may name; its Tags are the bucket's first tags. A bucket it cannot make as asked (object lock,
 * ACLs, another object ownership) is refused rather than made without it.
 */
export const createBucket: Operation = async (request, res, context) => {
  const body = await smallBody(request, res);
  checkBucketHeaders(request);
  const configuration = body.trim() ? bucketConfiguration(await parseXml(body, MAX_MARKUP.configuration)) : undefined;
  if (configuration) checkLocationConstraint(configuration, context.config.region);
  await context.objects.createBucket(request.bucket, bucketTagsJson(configuration ? configurationTags(configuration) : []));
  sendEmpty(res, 200, { Location: `/${request.bucket}` });
};

function bucketConfiguration(parsed: Record<string, any> | undefined): Record<string, any> {
  const configuration = parsed?.CreateBucketConfiguration;
  if (configuration === undefined) throw errors.malformedXml();
  // an empty <CreateBucketConfiguration/> is parsed as text
  return typeof configuration === 'object' ? configuration : {};
}

/** S3 CreateBucket: CreateBucketConfiguration's `<Tags><Tag>…</Tag></Tags>`, as PutBucketTagging checks them. */
function configurationTags(configuration: Record<string, any>): Tags {
  return configuration.Tags === undefined ? [] : checkBucketTags(tagList(configuration.Tags));
}

function checkBucketHeaders(request: S3Request): void {
  if (header(request, 'x-amz-bucket-object-lock-enabled')?.toLowerCase() === 'true') throw errors.notImplemented('x-amz-bucket-object-lock-enabled');
  const ownership = header(request, 'x-amz-object-ownership');
  if (ownership !== undefined && ownership !== 'BucketOwnerEnforced') throw errors.notImplemented('x-amz-object-ownership');
  if (asksForAcl(request)) throw new S3Error('InvalidBucketAclWithObjectOwnership', 400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting");
}

/**
 * A LocationConstraint naming another region than the gateway's (IllegalLocationConstraintException),
 * or naming us-east-1, which S3 takes only as no constraint at all (InvalidLocationConstraint).
 */
function checkLocationConstraint(configuration: Record<string, any>, region: string): void {
  const constraint = configuration.LocationConstraint;
  if (constraint === 'us-east-1') throw new S3Error('InvalidLocationConstraint', 400, 'The specified location-constraint is not valid');
  if (typeof constraint === 'string' && constraint !== '' && constraint !== region) {
    throw new S3Error('IllegalLocationConstraintException', 400,
      `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to.`);
  }
}
