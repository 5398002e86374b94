import { errors, S3Error } from '../errors.js';
import { checkKey } from '../names.js';
import { el, MAX_MARKUP, parseXml } from '../xml.js';
import { changeOrigin, header, sendXml, smallBody, type Operation, type S3Request } from './context.js';
import { checkVersionId, ifMatchCondition } from './reading.js';
import { checkEventQueue, contentMd5 } from './writing.js';
import { createHash } from 'node:crypto';
import { checksumHeaderAlgorithm } from '../../auth/checksums.js';

/**
 * S3 DeleteObjects: up to 1,000 keys; each result Deleted (unless Quiet) or an Error of its own.
 * An object's ETag element makes its delete conditional, as DeleteObject's If-Match.
 */
export const deleteObjects: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  checkIntegrityHeader(request);
  const digest = contentMd5(request);
  const text = await smallBody(request);
  if (digest !== undefined && createHash('md5').update(text).digest('base64') !== digest) {
    throw errors.badDigest(digest, createHash('md5').update(text).digest('base64'));
  }
  const parsed = (await parseXml(text, MAX_MARKUP.deleteObjects))?.Delete;
  if (!parsed || typeof parsed !== 'object') throw errors.malformedXml();
  const objects = (parsed.Object ?? []) as Array<{ Key?: unknown; ETag?: unknown; VersionId?: unknown }>;
  if (objects.length === 0 || objects.length > 1000 || objects.some((object) => typeof object?.Key !== 'string'
    || !['string', 'undefined'].includes(typeof object.ETag) || !['string', 'undefined'].includes(typeof object.VersionId))) {
    throw errors.malformedXml();
  }
  const quiet = parsed.Quiet === 'true';
  checkEventQueue(context);
  const results = await Promise.all(objects.map(async ({ Key, ETag, VersionId }) => {
    const key = Key as string;
    try {
      checkKey(key);
      checkVersionId(VersionId as string | undefined);
      await context.objects.remove(request.bucket, key, changeOrigin(request), ifMatchCondition(ETag as string | undefined, key));
      return quiet ? '' : el('Deleted', [el('Key', key)]);
    } catch (error) {
      const s3 = error instanceof S3Error ? error : errors.internalError();
      return el('Error', [el('Key', key), el('Code', s3.code), el('Message', s3.message)]);
    }
  }));
  sendXml(res, 200, 'DeleteResult', results);
};

/**
 * S3 DeleteObjects: a body that deletes up to 1,000 objects must come with a digest of it,
 * Content-MD5 or an x-amz-checksum-* (a header, or a trailer x-amz-trailer announces); without one
 * S3 deletes nothing and answers InvalidRequest. Each is verified against the body once it is read.
 */
function checkIntegrityHeader(request: S3Request): void {
  if (request.headers['content-md5'] !== undefined) return;
  const announced = [...Object.keys(request.headers), header(request, 'x-amz-trailer') ?? ''];
  if (announced.some((name) => checksumHeaderAlgorithm(name) !== undefined)) return;
  throw errors.invalidRequest('Missing required header for this request: Content-MD5');
}
