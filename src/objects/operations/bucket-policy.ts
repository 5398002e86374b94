import { errors, S3Error } from '../errors.js';
import { el } from '../xml.js';
import { sendEmpty, sendXml, type Operation, type S3Request, type OperationContext } from './context.js';

/**
 * A bucket's policy is the gateway's configuration: none, or for a bucket in
 * `s3.publicReadBuckets` the policy that says what anyone may do there (read its objects and
 * list them), so that tools asking whether a bucket is public (S3 Block
 * Public Access's "policy status", security scanners) get the truth. It is set in the daemon's
 * configuration, not over the API.
 */

// what anyone may do in a public-read bucket (S3Server.authorize: the bucket's read operations but notPublic routes')
const PUBLIC_READ_ACTIONS = ['s3:GetObject', 's3:GetObjectAttributes', 's3:ListBucket', 's3:ListBucketVersions', 's3:GetBucketLocation', 's3:GetBucketVersioning'];

const noPolicy = (bucket: string) => new S3Error('NoSuchBucketPolicy', 404, 'The bucket policy does not exist', { BucketName: bucket });

function isPublic(request: S3Request, context: OperationContext): boolean {
  context.objects.existingBucket(request.bucket);
  return context.config.publicReadBuckets.includes(request.bucket);
}

export const getBucketPolicy: Operation = (request, res, context) => {
  if (!isPublic(request, context)) throw noPolicy(request.bucket);
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{
      Sid: 'OutpostPublicRead', Effect: 'Allow', Principal: '*', Action: PUBLIC_READ_ACTIONS,
      Resource: [`arn:aws:s3:::${request.bucket}`, `arn:aws:s3:::${request.bucket}/*`],
    }],
  });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(policy) });
  res.end(policy);
};

// S3 GetBucketPolicyStatus: NoSuchBucketPolicy where there is no policy
export const getBucketPolicyStatus: Operation = (request, res, context) => {
  if (!isPublic(request, context)) throw noPolicy(request.bucket);
  sendXml(res, 200, 'PolicyStatus', [el('IsPublic', true)]);
};

/** 204 where there is none, as S3; a public-read bucket's stays until the configuration changes. */
export const deleteBucketPolicy: Operation = (request, res, context) => {
  if (isPublic(request, context)) throw errors.notImplemented('?policy');
  sendEmpty(res, 204);
};
