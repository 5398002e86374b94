import type { ServerResponse } from 'node:http';
import { S3Error } from '../errors.js';
import { el, MAX_MARKUP, parseXml } from '../xml.js';
import { GATEWAY_ACCOUNT } from '../../gateway-identity.js';
import { OWNER, sendEmpty, sendXml, smallBody, type Operation, type S3Request } from './context.js';
import { checkVersionId } from './reading.js';
import { asksForAcl } from './writing.js';

/**
 * ACLs as S3 has them for a bucket whose Object Ownership is "bucket owner enforced" (its default
 * since 2023, and the gateway's only one): ACLs are disabled. Reading one always shows the owner
 * with FULL_CONTROL; setting one is AccessControlListNotSupported, unless it is that ACL
 * (checkOwnerAcl). Who may read is the gateway's to say: access keys' grants and
 * `s3.publicReadBuckets`, not ACLs.
 */

// S3 GetBucketAcl / GetObjectAcl: the Grantee carries its type as an xsi:type attribute
const OWNER_FULL_CONTROL = [el('Owner', OWNER), el('AccessControlList', [el('Grant', [
  `<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">${OWNER.join('')}</Grantee>`,
  el('Permission', 'FULL_CONTROL'),
])])];

const aclsDisabled = () => new S3Error('AccessControlListNotSupported', 400, 'The bucket does not allow ACLs');

/**
 * A PutBucketAcl / PutObjectAcl is taken when it sets the ACL there is, which changes nothing: the
 * owner's canned ACL, or a document granting FULL_CONTROL to the owner alone (what s3cmd's `cp` and
 * `mv` send, having read it from the source; S3 refuses even that once ACLs are disabled, and s3cmd
 * then needs `--acl-private`). Any other ACL is AccessControlListNotSupported.
 */
async function checkOwnerAcl(request: S3Request, res: ServerResponse): Promise<void> {
  if (asksForAcl(request)) throw aclsDisabled();
  const body = await smallBody(request, res, 64 * 1024);
  if (body.trim() === '') {
    if (request.headers['x-amz-acl'] === undefined) throw new S3Error('MissingSecurityHeader', 400, 'Your request was missing a required header', { MissingHeaderName: 'x-amz-acl' });
    return;
  }
  const policy = (await parseXml(body, MAX_MARKUP.configuration))?.AccessControlPolicy;
  if (typeof policy !== 'object' || policy === null) {
    throw new S3Error('MalformedACLError', 400, 'The XML you provided was not well-formed or did not validate against our published schema');
  }
  const grants = (policy.AccessControlList?.Grant ?? []) as Array<{ Permission?: unknown; Grantee?: { ID?: unknown; URI?: unknown; EmailAddress?: unknown } }>;
  const ownerOnly = grants.length > 0 && grants.every((grant) => grant?.Permission === 'FULL_CONTROL' && grant.Grantee?.ID === GATEWAY_ACCOUNT
    && grant.Grantee.URI === undefined && grant.Grantee.EmailAddress === undefined);
  if (!ownerOnly) throw aclsDisabled();
}

export const getBucketAcl: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  sendXml(res, 200, 'AccessControlPolicy', OWNER_FULL_CONTROL);
};

export const getObjectAcl: Operation = (request, res, context) => {
  checkVersionId(request.query.get('versionId'));
  context.objects.existingObject(request.bucket, request.key);
  sendXml(res, 200, 'AccessControlPolicy', OWNER_FULL_CONTROL);
};

export const putBucketAcl: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  await checkOwnerAcl(request, res);
  sendEmpty(res, 200);
};

export const putObjectAcl: Operation = async (request, res, context) => {
  checkVersionId(request.query.get('versionId'));
  context.objects.existingObject(request.bucket, request.key);
  await checkOwnerAcl(request, res);
  sendEmpty(res, 200);
};
