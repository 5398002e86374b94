import { checkConditions, checkReadRequest, requestedExtent, responseHeaders } from './reading.js';
import { sendEmpty, type Operation } from './context.js';

/** S3 HeadObject: GetObject's headers (conditions and Range included) without the content. */
export const headObject: Operation = (request, res, context) => {
  checkReadRequest(request);
  const object = context.objects.existingObject(request.bucket, request.key);
  checkConditions(request, object);
  const { range, partsCount } = requestedExtent(request, object);
  const headers = responseHeaders(request, object, !range && !partsCount);
  if (partsCount) headers['x-amz-mp-parts-count'] = partsCount;
  if (range) {
    sendEmpty(res, 206, { ...headers, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${object.size}` });
  } else {
    // a part of no bytes (a multipart object's empty last part) has no range
    sendEmpty(res, 200, { ...headers, 'Content-Length': partsCount ? 0 : object.size });
  }
};
