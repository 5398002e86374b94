import { headerTags } from '../tags.js';
import { changeOrigin, header, quoted, sendEmpty, storedHeaders, userMetadata, type Operation } from './context.js';
import { expirationHeaders } from './lifecycle-rules.js';
import { writeCondition } from './reading.js';
import { announcedLength, checkEventQueue, checksumHeaders, checkWriteHeaders, contentMd5, contentType } from './writing.js';

/**
 * S3 PutObject: the body streams to a temporary file (Content-MD5 and checksums checked on the
 * way), then the object is installed and acknowledged once its metadata and event are committed.
 */
export const putObject: Operation = async (request, res, context) => {
  const condition = writeCondition(request);
  checkWriteHeaders(request);
  checkEventQueue(context);
  const object = await context.objects.put(request.bucket, request.key, request.body, {
    contentType: contentType(request),
    metadata: userMetadata(request.headers),
    headers: storedHeaders(request.headers),
    checksums: request.checksums,
    tags: headerTags(header(request, 'x-amz-tagging')),
    contentMd5: contentMd5(request),
    expectedSize: announcedLength(request),
    condition,
    eventName: 'ObjectCreated:Put',
    origin: changeOrigin(request),
  });
  sendEmpty(res, 200, { ETag: quoted(object.etag), ...checksumHeaders(object.checksums, 'object'), ...expirationHeaders(context.objects, request.bucket, object) });
};
