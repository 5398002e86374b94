import { tagSetElement } from '../tags.js';
import { sendXml, type Operation } from './context.js';
import { checkVersionId } from './reading.js';

/** S3 GetObjectTagging: the object's tags in the order they were given (an empty TagSet for none). */
export const getObjectTagging: Operation = (request, res, context) => {
  checkVersionId(request.query.get('versionId'));
  const object = context.objects.existingObject(request.bucket, request.key);
  sendXml(res, 200, 'Tagging', [tagSetElement(object.tags)]);
};
