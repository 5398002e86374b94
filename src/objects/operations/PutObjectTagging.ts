import { checkTags, documentTags } from '../tags.js';
import { MAX_MARKUP, parseXml } from '../xml.js';
import { changeOrigin, sendEmpty, type Operation } from './context.js';
import { checkVersionId } from './reading.js';
import { checkEventQueue, digestedBody } from './writing.js';

/**
 * S3 PutObjectTagging: the body's TagSet replaces the object's tags (an empty one removes them),
 * with an `ObjectTagging:Put` event; its content, ETag and Last-Modified stay. S3 takes the body
 * only with a digest of it (Content-MD5 or a checksum), as the SDKs send it.
 */
export const putObjectTagging: Operation = async (request, res, context) => {
  checkVersionId(request.query.get('versionId'));
  const tags = checkTags(documentTags(await parseXml(await digestedBody(request, res), MAX_MARKUP.configuration)));
  checkEventQueue(context);
  await context.objects.setTags(request.bucket, request.key, tags, 'ObjectTagging:Put', changeOrigin(request));
  sendEmpty(res, 200);
};
