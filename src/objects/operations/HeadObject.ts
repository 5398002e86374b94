import { checkConditions, checkReadRequest, readAnswer } from './reading.js';
import { sendEmpty, type Operation } from './context.js';
import { expirationHeaders } from './lifecycle-rules.js';

/** S3 HeadObject: GetObject's headers (conditions and Range included) without the content. */
export const headObject: Operation = (request, res, context) => {
  checkReadRequest(request);
  const object = context.objects.existingObject(request.bucket, request.key);
  checkConditions(request, object);
  const { status, headers } = readAnswer(request, object);
  sendEmpty(res, status, { ...headers, ...expirationHeaders(context.objects, request.bucket, object) });
};
