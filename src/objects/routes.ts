import type { IncomingHttpHeaders } from 'node:http';
import { errors } from './errors.js';
import type { Operation } from './operations/context.js';
import { listBuckets } from './operations/ListBuckets.js';
import { createBucket } from './operations/CreateBucket.js';
import { deleteBucket } from './operations/DeleteBucket.js';
import { headBucket } from './operations/HeadBucket.js';
import { getBucketLocation } from './operations/GetBucketLocation.js';
import { getBucketVersioning } from './operations/GetBucketVersioning.js';
import { listObjects } from './operations/ListObjects.js';
import { listObjectsV2 } from './operations/ListObjectsV2.js';
import { listObjectVersions } from './operations/ListObjectVersions.js';
import { getObject } from './operations/GetObject.js';
import { getObjectAttributes } from './operations/GetObjectAttributes.js';
import { headObject } from './operations/HeadObject.js';
import { putObject } from './operations/PutObject.js';
import { copyObject } from './operations/CopyObject.js';
import { deleteObject } from './operations/DeleteObject.js';
import { deleteObjects } from './operations/DeleteObjects.js';
import { postObject } from './operations/PostObject.js';
import { optionsObject, S3_METHODS } from './operations/OptionsObject.js';
import { createMultipartUpload } from './operations/CreateMultipartUpload.js';
import { uploadPart } from './operations/UploadPart.js';
import { uploadPartCopy } from './operations/UploadPartCopy.js';
import { completeMultipartUpload } from './operations/CompleteMultipartUpload.js';
import { abortMultipartUpload } from './operations/AbortMultipartUpload.js';
import { listParts } from './operations/ListParts.js';
import { listMultipartUploads } from './operations/ListMultipartUploads.js';
import { getBucketNotificationConfiguration } from './operations/GetBucketNotificationConfiguration.js';
import { putBucketNotificationConfiguration } from './operations/PutBucketNotificationConfiguration.js';
import { getBucketLifecycleConfiguration } from './operations/GetBucketLifecycleConfiguration.js';
import { putBucketLifecycleConfiguration } from './operations/PutBucketLifecycleConfiguration.js';
import { deleteBucketLifecycle } from './operations/DeleteBucketLifecycle.js';
import { getBucketCors } from './operations/GetBucketCors.js';
import { putBucketCors } from './operations/PutBucketCors.js';
import { deleteBucketCors } from './operations/DeleteBucketCors.js';
import { getBucketTagging } from './operations/GetBucketTagging.js';
import { putBucketTagging } from './operations/PutBucketTagging.js';
import { deleteBucketTagging } from './operations/DeleteBucketTagging.js';
import { getBucketAcl, getObjectAcl, putBucketAcl, putObjectAcl } from './operations/acl.js';
import { deleteBucketPolicy, getBucketPolicy, getBucketPolicyStatus } from './operations/bucket-policy.js';
import { getObjectTagging } from './operations/GetObjectTagging.js';
import { putObjectTagging } from './operations/PutObjectTagging.js';
import { deleteObjectTagging } from './operations/DeleteObjectTagging.js';
import { ABSENT_CONFIGURATIONS, deleteAbsent, objectLockAbsent } from './operations/absent-configurations.js';

// steps of every request, loaded with the operations (s3-server.ts)
export { checkExpectedOwners, withHoistedHeaders } from './operations/context.js';
export { crossOriginHeaders } from './operations/cors-rules.js';

export interface Route {
  name: string;
  operation: Operation;
  /**
   * What the signer needs on the addressed bucket; 'signed' only a signature (the service-level
   * ListBuckets); 'form' is authorized by the operation (a POST upload is signed in its body);
   * 'none' nothing (a CORS preflight, which browsers send unsigned). 'administer' changes the bucket
   * itself, not its objects (deleting it, its notifications, lifecycle, CORS, tags): a key granted
   * read-write on every bucket, not one granted only this bucket — a camera's key, say, which could
   * otherwise point the bucket's events at any function, or expire every object.
   */
  access: 'read' | 'write' | 'administer' | 'signed' | 'form' | 'none';
  /** Its x-amz-checksum-* headers are the object's checksum, not the request body's (VerifyOptions.bodyChecksums). */
  objectChecksumHeaders?: true;
  /**
   * Refused to anonymous callers even in a public-read bucket, whose public access is to its
   * objects and their listing: it reads or changes a configuration (an ACL, tags, notifications,
   * …), or lists uploads in progress (keys not published yet).
   */
  notPublic?: true;
}

const r = (name: string, operation: Operation, access: Route['access']): Route => ({ name, operation, access });
const c = (name: string, operation: Operation, access: 'read' | 'write' | 'administer'): Route => ({ name, operation, access, notPublic: true });

/**
 * Sub-resources of S3 this gateway does not have (setting the configurations of absent-configurations.ts,
 * analytics, …; `attributes` but to GET an object's): NotImplemented rather than a wrong answer.
 */
const UNSUPPORTED = ['acl', 'policy', 'lifecycle', 'tagging', 'website', 'logging', 'replication', 'encryption', 'object-lock',
  'retention', 'legal-hold', 'torrent', 'restore', 'select', 'accelerate', 'analytics', 'inventory', 'metrics', 'requestPayment',
  'ownershipControls', 'publicAccessBlock', 'intelligent-tiering', 'attributes', 'policyStatus', 'renameObject', 'session', 'metadataTable',
  'metadataConfiguration'];

/** The methods S3 names in Allow for a bucket or an object. */
const RESOURCE_METHODS = ['HEAD', 'DELETE', 'POST', 'GET', 'PUT'];

interface SubResource {
  /** The query parameter naming it; PART is named by two. */
  names: string[];
  resourceType: string;
  /** The methods S3 has operations of on it, in the order of its Allow. */
  methods: string[];
}

/**
 * Sub-resources and the methods S3 takes on them: another (a HEAD, which none has, a GET of
 * `?delete`, a DELETE of `?versioning`) is 405 MethodNotAllowed naming the sub-resource, whose Allow
 * names those, rather than the bucket's or object's operation of that method without it (a
 * ListObjects, a DeleteBucket). A request names at most one (refuseConflictingSubResources).
 */
const BUCKET_SUB_RESOURCES: SubResource[] = [
  { names: ['delete'], resourceType: 'MULTI_OBJECT_DELETE', methods: ['POST'] },
  { names: ['location'], resourceType: 'LOCATION', methods: ['GET'] },
  { names: ['versions'], resourceType: 'VERSIONS', methods: ['GET'] },
  { names: ['uploads'], resourceType: 'UPLOADS', methods: ['POST', 'GET'] },
  { names: ['versioning'], resourceType: 'VERSIONING', methods: ['GET', 'PUT'] },
  { names: ['acl'], resourceType: 'ACL', methods: ['GET', 'PUT'] },
  { names: ['notification'], resourceType: 'NOTIFICATION', methods: ['GET', 'PUT'] },
  { names: ['tagging'], resourceType: 'TAGGING', methods: ['DELETE', 'GET', 'PUT'] },
  { names: ['policy'], resourceType: 'POLICY', methods: ['DELETE', 'GET', 'PUT'] },
  { names: ['policyStatus'], resourceType: 'POLICY_STATUS', methods: ['GET'] },
  // the other configurations, by the operations S3 has on each (Get…, Put…, and Delete… where there is one)
  ...['cors', 'lifecycle', 'website', 'encryption', 'replication', 'publicAccessBlock', 'ownershipControls', 'analytics', 'inventory', 'metrics',
    'intelligent-tiering'].map((name) => ({ names: [name], resourceType: constantCase(name), methods: ['DELETE', 'GET', 'PUT'] })),
  ...['logging', 'accelerate', 'requestPayment', 'object-lock'].map((name) => ({ names: [name], resourceType: constantCase(name), methods: ['GET', 'PUT'] })),
];
const OBJECT_SUB_RESOURCES: SubResource[] = [
  { names: ['delete'], resourceType: 'MULTI_OBJECT_DELETE', methods: ['POST'] },
  { names: ['uploadId', 'partNumber'], resourceType: 'PART', methods: ['PUT'] },
  { names: ['uploadId'], resourceType: 'UPLOAD', methods: ['DELETE', 'POST', 'GET'] },
  { names: ['acl'], resourceType: 'ACL', methods: ['GET', 'PUT'] },
  { names: ['tagging'], resourceType: 'OBJECT_TAGGING', methods: ['DELETE', 'GET', 'PUT'] },
  { names: ['retention'], resourceType: 'RETENTION', methods: ['GET', 'PUT'] },
  { names: ['legal-hold'], resourceType: 'LEGAL_HOLD', methods: ['GET', 'PUT'] },
  { names: ['restore'], resourceType: 'RESTORE', methods: ['POST'] },
  { names: ['select'], resourceType: 'SELECT', methods: ['POST'] },
  { names: ['torrent'], resourceType: 'TORRENT', methods: ['GET'] },
];

/**
 * The query parameters that each name what a request at a bucket or at a key addresses: two at once
 * are refused (refuseConflictingSubResources). A bucket's path knows an upload's and a torrent's too,
 * a key's the uploads of CreateMultipartUpload.
 */
const BUCKET_SELECTORS = new Set([...BUCKET_SUB_RESOURCES.flatMap((sub) => sub.names), 'uploadId', 'torrent']);
const OBJECT_SELECTORS = new Set([...OBJECT_SUB_RESOURCES.flatMap((sub) => sub.names).filter((name) => name !== 'delete' && name !== 'partNumber'), 'attributes', 'uploads']);

/**
 * S3 refuses a request naming two sub-resources (`?acl&versioning`, `?uploads&tagging`) rather than
 * choosing one: 400 InvalidArgument naming them alphabetically, the first as the ArgumentValue of
 * ArgumentName ResourceType, before the credential is read. `partNumber` beside `uploadId` alone is
 * an upload's part, beside another sub-resource one more of them (`?uploadId=…&partNumber=1&acl`).
 */
function refuseConflictingSubResources(key: string, query: URLSearchParams): void {
  const selectors = key ? OBJECT_SELECTORS : BUCKET_SELECTORS;
  const named = [...new Set(query.keys())].filter((name) => selectors.has(name));
  if (query.has('partNumber') && named.length > 0 && !(named.length === 1 && named[0] === 'uploadId')) named.push('partNumber');
  if (named.length < 2) return;
  named.sort();
  throw errors.invalidArgument(`Conflicting query string parameters: ${named.join(', ')}`, 'ResourceType', named[0]);
}

/** publicAccessBlock → PUBLIC_ACCESS_BLOCK, object-lock → OBJECT_LOCK. */
function constantCase(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').replaceAll('-', '_').toUpperCase();
}

function refuseSubResourceMethod(method: string, key: string, query: URLSearchParams): void {
  const addressed = (key ? OBJECT_SUB_RESOURCES : BUCKET_SUB_RESOURCES).find((sub) => sub.names.every((name) => query.has(name)));
  if (addressed && !addressed.methods.includes(method)) throw errors.methodNotAllowed(method, addressed.resourceType, addressed.methods);
}

/** The operation a request names, by method, bucket, key and sub-resource (S3 API Reference). */
export function route(method: string, bucket: string, key: string, query: URLSearchParams, headers: IncomingHttpHeaders): Route {
  // a method S3 does not know is 400 BadRequest, not a 405 naming the methods a resource takes
  if (!S3_METHODS.has(method)) throw errors.unknownMethod();
  // S3 answers a preflight before anything else of the request: its sub-resource, its credential
  if (method === 'OPTIONS') return r('OptionsObject', optionsObject, 'none');
  if (bucket && query.size > 1) refuseConflictingSubResources(key, query);
  if (key && method === 'GET' && query.has('attributes')) return r('GetObjectAttributes', getObjectAttributes, 'read');
  // most requests have no query at all
  if (query.size > 0) {
    if (bucket) refuseSubResourceMethod(method, key, query);
    const configuration = bucket ? configurationRoute(method, key, query) : undefined;
    if (configuration) return configuration;
    const unsupported = UNSUPPORTED.find((name) => query.has(name));
    if (unsupported) throw errors.notImplemented(`?${unsupported}`);
  }
  if (!bucket) {
    if (method === 'GET') return r('ListBuckets', listBuckets, 'signed');
    throw errors.methodNotAllowed(method, 'SERVICE', ['GET']);
  }
  if (!key) {
    switch (method) {
      case 'GET':
        if (query.has('location')) return r('GetBucketLocation', getBucketLocation, 'read');
        if (query.has('versioning')) return r('GetBucketVersioning', getBucketVersioning, 'read');
        if (query.has('versions')) return r('ListObjectVersions', listObjectVersions, 'read');
        if (query.has('uploads')) return { ...r('ListMultipartUploads', listMultipartUploads, 'read'), notPublic: true };
        if (query.has('notification')) return c('GetBucketNotificationConfiguration', getBucketNotificationConfiguration, 'read');
        if (query.get('list-type') === '2') return r('ListObjectsV2', listObjectsV2, 'read');
        return r('ListObjects', listObjects, 'read');
      case 'HEAD': return r('HeadBucket', headBucket, 'read');
      case 'PUT':
        if (query.has('notification')) return c('PutBucketNotificationConfiguration', putBucketNotificationConfiguration, 'administer');
        if (query.has('versioning')) throw errors.notImplemented('?versioning');
        return r('CreateBucket', createBucket, 'write');
      case 'DELETE': return r('DeleteBucket', deleteBucket, 'administer');
      case 'POST':
        // S3: a caller who may not delete gets each key's AccessDenied in a 200, not a 403 (DeleteObjects checks)
        if (query.has('delete')) return { ...r('DeleteObjects', deleteObjects, 'read'), notPublic: true };
        return r('PostObject', postObject, 'form');
    }
    throw errors.methodNotAllowed(method, 'BUCKET', RESOURCE_METHODS);
  }
  switch (method) {
    case 'GET': return query.has('uploadId') ? { ...r('ListParts', listParts, 'read'), notPublic: true } : r('GetObject', getObject, 'read');
    case 'HEAD': return r('HeadObject', headObject, 'read');
    case 'PUT':
      if (query.has('uploadId') || query.has('partNumber')) {
        return headers['x-amz-copy-source'] !== undefined ? r('UploadPartCopy', uploadPartCopy, 'write') : r('UploadPart', uploadPart, 'write');
      }
      return headers['x-amz-copy-source'] !== undefined ? r('CopyObject', copyObject, 'write') : r('PutObject', putObject, 'write');
    case 'POST':
      if (query.has('uploads')) return r('CreateMultipartUpload', createMultipartUpload, 'write');
      if (query.has('uploadId')) return { ...r('CompleteMultipartUpload', completeMultipartUpload, 'write'), objectChecksumHeaders: true };
      break;
    case 'DELETE': return query.has('uploadId') ? r('AbortMultipartUpload', abortMultipartUpload, 'write') : r('DeleteObject', deleteObject, 'write');
  }
  throw errors.methodNotAllowed(method, 'OBJECT', RESOURCE_METHODS);
}

/**
 * ACLs (disabled, as with S3's default Object Ownership), object and bucket tags, Object Lock, CORS and
 * lifecycle rules, and the configurations a bucket here never has (what S3 answers for a bucket without them).
 * Undefined for the rest, setting those configurations among them.
 */
function configurationRoute(method: string, key: string, query: URLSearchParams): Route | undefined {
  if (key) {
    if (query.has('acl')) return method === 'GET' ? c('GetObjectAcl', getObjectAcl, 'read') : method === 'PUT' ? c('PutObjectAcl', putObjectAcl, 'write') : undefined;
    if (query.has('tagging')) {
      if (method === 'GET') return c('GetObjectTagging', getObjectTagging, 'read');
      return method === 'PUT' ? c('PutObjectTagging', putObjectTagging, 'write') : c('DeleteObjectTagging', deleteObjectTagging, 'write');
    }
    for (const [name, subject] of [['retention', 'ObjectRetention'], ['legal-hold', 'ObjectLegalHold']]) {
      if (!query.has(name)) continue;
      return method === 'GET' ? c(`Get${subject}`, objectLockAbsent, 'read') : method === 'PUT' ? c(`Put${subject}`, objectLockAbsent, 'write') : undefined;
    }
    return undefined;
  }
  if (query.has('acl')) return method === 'GET' ? c('GetBucketAcl', getBucketAcl, 'read') : method === 'PUT' ? c('PutBucketAcl', putBucketAcl, 'administer') : undefined;
  if (query.has('policy')) return method === 'GET' ? c('GetBucketPolicy', getBucketPolicy, 'read') : method === 'DELETE' ? c('DeleteBucketPolicy', deleteBucketPolicy, 'administer') : undefined;
  if (query.has('policyStatus')) return method === 'GET' ? c('GetBucketPolicyStatus', getBucketPolicyStatus, 'read') : undefined;
  if (query.has('cors')) {
    if (method === 'GET') return c('GetBucketCors', getBucketCors, 'read');
    return method === 'PUT' ? c('PutBucketCors', putBucketCors, 'administer') : c('DeleteBucketCors', deleteBucketCors, 'administer');
  }
  if (query.has('tagging')) {
    if (method === 'GET') return c('GetBucketTagging', getBucketTagging, 'read');
    return method === 'PUT' ? c('PutBucketTagging', putBucketTagging, 'administer') : c('DeleteBucketTagging', deleteBucketTagging, 'administer');
  }
  if (query.has('lifecycle')) {
    if (method === 'GET') return c('GetBucketLifecycleConfiguration', getBucketLifecycleConfiguration, 'read');
    return method === 'PUT' ? c('PutBucketLifecycleConfiguration', putBucketLifecycleConfiguration, 'administer') : c('DeleteBucketLifecycle', deleteBucketLifecycle, 'administer');
  }
  const absent = ABSENT_CONFIGURATIONS.find((configuration) => query.has(configuration.query));
  if (method === 'GET' && absent) return c(absent.get, absent.operation, 'read');
  if (method === 'DELETE' && absent?.delete) return c(absent.delete, deleteAbsent, 'administer');
  return undefined;
}
