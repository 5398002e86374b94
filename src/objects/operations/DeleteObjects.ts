import { errors, S3Error } from '../errors.js';
import { checkKey } from '../names.js';
import { el, MAX_MARKUP, parseXml } from '../xml.js';
import { changeOrigin, sendXml, type Operation, type OperationContext, type S3Request } from './context.js';
import { checkVersionId, ifMatchCondition } from './reading.js';
import { checkEventQueue, digestedBody } from './writing.js';

/**
 * S3 DeleteObjects: up to 1,000 keys; each result Deleted (unless Quiet) or an Error of its own.
 * An object's ETag element makes its delete conditional, as DeleteObject's If-Match.
 */
export const deleteObjects: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const text = await digestedBody(request, res);
  const parsed = (await parseXml(text, MAX_MARKUP.deleteObjects))?.Delete;
  if (!parsed || typeof parsed !== 'object') throw errors.malformedXml();
  const objects = (parsed.Object ?? []) as Array<{ Key?: unknown; ETag?: unknown; VersionId?: unknown }>;
  if (objects.length === 0 || objects.length > 1000 || objects.some((object) => typeof object?.Key !== 'string'
    || !['string', 'undefined'].includes(typeof object.ETag) || !['string', 'undefined'].includes(typeof object.VersionId))) {
    throw errors.malformedXml();
  }
  if (parsed.Quiet !== undefined && parsed.Quiet !== 'true' && parsed.Quiet !== 'false') throw errors.malformedXml();
  const quiet = parsed.Quiet === 'true';
  const denied = deleteDenied(request, context);
  checkEventQueue(context);
  const results = await Promise.all(objects.map(async ({ Key, ETag, VersionId }) => {
    const key = Key as string;
    try {
      if (denied) throw denied;
      checkKey(key);
      checkVersionId(VersionId as string | undefined);
      await context.objects.remove(request.bucket, key, changeOrigin(request), ifMatchCondition(ETag as string | undefined, key));
      // S3 DeleteObjects: a result names the version its request named
      return quiet ? '' : el('Deleted', [el('Key', key), ...versionOf(VersionId)]);
    } catch (error) {
      const s3 = error instanceof S3Error ? error : errors.internalError();
      return el('Error', [el('Key', key), ...versionOf(VersionId), el('Code', s3.code), el('Message', s3.message)]);
    }
  }));
  sendXml(res, 200, 'DeleteResult', results);
};

/** The AccessDenied of a caller who may read the bucket but not write it: S3 answers it for each key. */
function deleteDenied(request: S3Request, context: OperationContext): S3Error | undefined {
  try {
    context.authorize(request, request.bucket, 'write');
    return undefined;
  } catch (error) {
    if (error instanceof S3Error && error.code === 'AccessDenied') return error;
    throw error;
  }
}

function versionOf(versionId: unknown): string[] {
  return typeof versionId === 'string' ? [el('VersionId', versionId)] : [];
}
