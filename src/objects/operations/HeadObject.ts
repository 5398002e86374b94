import { byteRange, checkConditions, responseHeaders } from './reading.js';
import { sendEmpty, type Operation } from './context.js';

/** S3 HeadObject: GetObject's headers (conditions and Range included) without the content. */
export const headObject: Operation = (request, res, context) => {
  const object = context.objects.existingObject(request.bucket, request.key);
  checkConditions(request, object);
  const range = byteRange(request, object.size);
  const headers = responseHeaders(request, object, !range);
  if (range) {
    sendEmpty(res, 206, { ...headers, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${object.size}` });
  } else {
    sendEmpty(res, 200, { ...headers, 'Content-Length': object.size });
  }
};
