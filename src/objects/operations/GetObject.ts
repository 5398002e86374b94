import { pipeline } from 'node:stream/promises';
import { byteRange, checkConditions, responseHeaders } from './reading.js';
import type { Operation } from './context.js';

/** S3 GetObject: conditions, one byte range, response-* overrides; the content streams from the file. */
export const getObject: Operation = async (request, res, context) => {
  const { object, file } = await context.objects.open(request.bucket, request.key);
  try {
    checkConditions(request, object);
    const range = byteRange(request, object.size);
    const headers = responseHeaders(request, object);
    if (range) {
      res.writeHead(206, { ...headers, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${object.size}` });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': object.size });
    }
    if (object.size === 0 || (range && range.end < range.start)) {
      res.end();
      return;
    }
    await pipeline(file.createReadStream({ start: range?.start ?? 0, end: range?.end ?? object.size - 1, autoClose: false, highWaterMark: 256 * 1024 }), res);
  } finally {
    await file.close();
  }
};
