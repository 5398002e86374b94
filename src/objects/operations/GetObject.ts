import { pipeline } from 'node:stream/promises';
import { byteRange, checkConditions, responseHeaders } from './reading.js';
import type { Operation } from './context.js';

/** Up to this size a body is read in one call and sent in one write; larger ones stream. */
const ONE_READ_BYTES = 256 * 1024;

/** S3 GetObject: conditions, one byte range, response-* overrides; the content streams from the file. */
export const getObject: Operation = async (request, res, context) => {
  const { object, file } = await context.objects.open(request.bucket, request.key);
  try {
    checkConditions(request, object);
    const range = byteRange(request, object.size);
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : object.size;
    const headers = { ...responseHeaders(request, object), 'Content-Length': length };
    if (range) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${range.start}-${range.end}/${object.size}` });
    else res.writeHead(200, headers);
    if (length <= ONE_READ_BYTES) {
      const { buffer, bytesRead } = await file.read(Buffer.allocUnsafe(length), 0, length, start);
      res.end(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
      return;
    }
    await pipeline(file.createReadStream({ start, end: start + length - 1, autoClose: false, highWaterMark: 256 * 1024 }), res);
  } finally {
    await file.close();
  }
};
