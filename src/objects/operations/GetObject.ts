import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { byteRange, checkConditions, responseHeaders } from './reading.js';
import type { Operation } from './context.js';

/** Up to this size a body is read in one call and sent in one write. */
const ONE_READ_BYTES = 256 * 1024;

/**
 * A larger body streams through two buffers of this size: each read and write is a round trip
 * through the thread pool or the event loop, which on a busy machine waits for a core, so fewer
 * and larger ones keep the transfer going (64 MiB GET from the page cache at load 8-11: 80-450
 * MB/s with 256 KiB, 490-1200 MB/s with 1 MiB; 4 MiB was no faster).
 */
const STREAM_READ_BYTES = 1024 * 1024;

/** Up to this size an object is read synchronously (ObjectStore.readSmall): a short hold of the event loop. */
const SMALL_OBJECT_BYTES = 64 * 1024;

/**
 * S3 GetObject: conditions, one byte range, response-* overrides. A small object is read whole at
 * once; a larger one streams from its file.
 */
export const getObject: Operation = async (request, res, context) => {
  const small = context.objects.readSmall(request.bucket, request.key, SMALL_OBJECT_BYTES);
  const { object, file } = small ? { object: small.object, file: undefined } : await context.objects.open(request.bucket, request.key);
  try {
    checkConditions(request, object);
    const range = byteRange(request, object.size);
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : object.size;
    const headers = responseHeaders(request, object);
    headers['Content-Length'] = length;
    if (range) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${range.start}-${range.end}/${object.size}` });
    else res.writeHead(200, headers);
    if (small) {
      res.end(small.content.subarray(start, start + length));
      return;
    }
    if (length <= ONE_READ_BYTES) {
      const { buffer, bytesRead } = await file!.read(Buffer.allocUnsafe(length), 0, length, start);
      res.end(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
      return;
    }
    await streamRange(file!, res, start, length);
  } finally {
    await file?.close();
  }
};

/**
 * Sends `length` bytes from `start`: the next read fills one buffer while the other is being
 * written, and a buffer is reused only once its write was flushed. Memory stays at two buffers
 * whatever the object's size, with no garbage for the collector to catch up with.
 */
async function streamRange(file: FileHandle, res: ServerResponse, start: number, length: number): Promise<void> {
  const bufferBytes = Math.min(STREAM_READ_BYTES, length);
  const buffers = [Buffer.allocUnsafe(bufferBytes), Buffer.allocUnsafe(bufferBytes)];
  let flushed: Promise<void> = Promise.resolve();
  for (let offset = 0, turn = 0; offset < length; turn++) {
    const buffer = buffers[turn % 2];
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, length - offset), start + offset);
    if (bytesRead === 0) throw new Error('the file ended before the object did');
    await flushed;
    if (res.destroyed) return;
    flushed = new Promise((resolve, reject) => res.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve())));
    // Awaited after the next read; until then a failed write (the client went away) must not count
    // as an unhandled rejection, which would end the daemon.
    flushed.catch(() => undefined);
    offset += bytesRead;
  }
  await flushed;
  res.end();
}
