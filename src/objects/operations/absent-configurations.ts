import { errors, S3Error } from '../errors.js';
import { el } from '../xml.js';
import { sendEmpty, sendXml, type Operation } from './context.js';

/**
 * The configurations a bucket here never has (a website, replication, default encryption, Object
 * Lock, a public access block), read as S3 reads those of a bucket that has none — its own "not
 * found" error, or the document of the default — and deleted as S3 deletes them: 204, whether there
 * was one or not. Tools that read every configuration of a bucket (Terraform's AWS provider,
 * security scanners, S3 browsers) then work against the gateway. Setting one stays NotImplemented
 * (routes.ts): the gateway would not honour it.
 */
interface AbsentConfiguration {
  /** The sub-resource naming it in the query. */
  query: string;
  get: string;
  /** The delete operation, where S3 has one. */
  delete?: string;
  /** Reading it: S3's error for a bucket without one, or the document a bucket without one has. */
  read: { missing: [code: string, message: string] } | { document: [root: string, children: string[]] };
}

const CONFIGURATIONS: AbsentConfiguration[] = [
  { query: 'website', get: 'GetBucketWebsite', delete: 'DeleteBucketWebsite',
    read: { missing: ['NoSuchWebsiteConfiguration', 'The specified bucket does not have a website configuration'] } },
  { query: 'replication', get: 'GetBucketReplication', delete: 'DeleteBucketReplication',
    read: { missing: ['ReplicationConfigurationNotFoundError', 'The replication configuration was not found'] } },
  // S3 now encrypts every bucket by default; the gateway stores objects as they are, and says so
  { query: 'encryption', get: 'GetBucketEncryption', delete: 'DeleteBucketEncryption',
    read: { missing: ['ServerSideEncryptionConfigurationNotFoundError', 'The server side encryption configuration was not found'] } },
  { query: 'object-lock', get: 'GetObjectLockConfiguration', read: { missing: ['ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket'] } },
  { query: 'publicAccessBlock', get: 'GetPublicAccessBlock', delete: 'DeletePublicAccessBlock',
    read: { missing: ['NoSuchPublicAccessBlockConfiguration', 'The public access block configuration was not found'] } },
  { query: 'logging', get: 'GetBucketLogging', read: { document: ['BucketLoggingStatus', []] } },
  { query: 'accelerate', get: 'GetBucketAccelerateConfiguration', read: { document: ['AccelerateConfiguration', []] } },
  { query: 'requestPayment', get: 'GetBucketRequestPayment', read: { document: ['RequestPaymentConfiguration', [el('Payer', 'BucketOwner')]] } },
  // ACLs are disabled (acl.ts): S3's default for new buckets
  { query: 'ownershipControls', get: 'GetBucketOwnershipControls',
    read: { document: ['OwnershipControls', [el('Rule', [el('ObjectOwnership', 'BucketOwnerEnforced')])]] } },
];

/** Each of them with the operation that reads it. */
export const ABSENT_CONFIGURATIONS = CONFIGURATIONS.map((configuration) => ({ ...configuration, operation: readAbsent(configuration) }));

function readAbsent(configuration: AbsentConfiguration): Operation {
  const { read } = configuration;
  return (request, res, context) => {
    context.objects.existingBucket(request.bucket);
    if ('missing' in read) throw new S3Error(read.missing[0], 404, read.missing[1], { BucketName: request.bucket });
    sendXml(res, 200, read.document[0], read.document[1]);
  };
}

export const deleteAbsent: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  sendEmpty(res, 204);
};

/** S3 Get/PutObjectRetention and Get/PutObjectLegalHold in a bucket without Object Lock. */
export const objectLockAbsent: Operation = (request, _res, context) => {
  context.objects.existingBucket(request.bucket);
  throw errors.noObjectLock();
};
