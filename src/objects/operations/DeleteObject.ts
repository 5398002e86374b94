import { errors } from '../errors.js';
import type { ObjectRecord } from '../object-store.js';
import { changeOrigin, header, sendEmpty, type Operation, type S3Request } from './context.js';
import { etagListed } from './reading.js';
import { checkEventQueue } from './writing.js';

/**
 * S3 DeleteObject: 204 whether or not the key existed; an ObjectRemoved:Delete event only when it
 * did. If-Match makes it conditional (S3 conditional deletes).
 */
export const deleteObject: Operation = async (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  checkEventQueue(context);
  await context.objects.remove(request.bucket, request.key, changeOrigin(request), ifMatchCondition(request));
  sendEmpty(res, 204);
};

/**
 * S3 DeleteObject: If-Match names the ETag the object must have (`*`: any, it must exist);
 * 412 PreconditionFailed when it has another, 404 NoSuchKey when there is none. If-None-Match is
 * not a condition of DeleteObject in S3 and is ignored, as there.
 */
function ifMatchCondition(request: S3Request): ((object: ObjectRecord | undefined) => void) | undefined {
  const ifMatch = header(request, 'if-match');
  if (ifMatch === undefined) return undefined;
  return (object) => {
    if (!object) throw errors.noSuchKey(request.key);
    if (!etagListed(ifMatch, object.etag)) throw errors.preconditionFailed('If-Match');
  };
}
