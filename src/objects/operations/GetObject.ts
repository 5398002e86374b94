import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { BufferSets } from '../buffer-sets.js';
import { checkConditions, checkReadRequest, readAnswer } from './reading.js';
import { expirationHeaders } from './lifecycle-rules.js';
import type { Operation } from './context.js';

/** Up to this size a body is read in one call and sent in one write. */
const ONE_READ_BYTES = 256 * 1024;

/**
 * A larger body streams through READ_BUFFERS buffers of this size: each read and write is a round trip
 * through the thread pool or the event loop, which on a busy machine waits for a core, so fewer
 * and larger ones keep the transfer going (64 MiB GET from the page cache at load 8-11: 80-450
 * MB/s with 256 KiB, 490-1200 MB/s with 1 MiB; 4 MiB was no faster).
 */
const STREAM_READ_BYTES = 1024 * 1024;
const READ_BUFFERS = 3;

/**
 * Bodies stream through the large buffers above while at most FAST_STREAMS do, the others through
 * buffers of SHARED_READ_BYTES: memory stays bounded however many readers there are (an `aws s3 cp`
 * download reads 10 ranges of 8 MiB at once: 3 MiB each took the daemon's RSS past 125 MiB). The
 * large buffers are kept for the next large bodies, GETs or uploads (BufferSets).
 */
const FAST_STREAMS = 2;
const SHARED_READ_BYTES = 128 * 1024;

/** Up to this size an object is read synchronously (ObjectStore.readSmall): a short hold of the event loop. */
const SMALL_OBJECT_BYTES = 64 * 1024;

/**
 * S3 GetObject: conditions, one byte range, response-* overrides. A small object is read whole at
 * once; a larger one streams from its file.
 */
export const getObject: Operation = async (request, res, context) => {
  checkReadRequest(request);
  const { object, content, file } = context.objects.readSmall(request.bucket, request.key, SMALL_OBJECT_BYTES)
    ?? await context.objects.open(request.bucket, request.key);
  try {
    checkConditions(request, object);
    const { status, headers, start, length } = readAnswer(request, object);
    res.writeHead(status, { ...headers, ...expirationHeaders(context.objects, request.bucket, object) });
    if (content) {
      res.end(content.subarray(start, start + length));
      return;
    }
    if (length <= ONE_READ_BYTES) {
      const { buffer, bytesRead } = await file!.read(Buffer.allocUnsafe(length), 0, length, start);
      // a file cut short since it was opened (a local program's doing): cut off, not left waiting for the rest
      if (bytesRead < length) res.destroy();
      else res.end(buffer);
      return;
    }
    await streamRange(file!, res, start, length);
  } finally {
    await file?.close();
  }
};

/**
 * Sends `length` bytes from `start` through READ_BUFFERS reused buffers: while one is being written
 * to the socket, the next chunks are already being read, two reads in flight (the disk serves two
 * at once faster than one after the other: 80-84 % of the raw sequential read against 71-80 % with
 * one read ahead, here). A buffer is read into again only once its write was flushed, so memory
 * stays at three buffers whatever the object's size, with no garbage for the collector.
 */
async function streamRange(file: FileHandle, res: ServerResponse, start: number, length: number): Promise<void> {
  const lent = streamBuffers.lend();
  try {
    await streamThrough(lent.buffers, file, res, start, length);
  } finally {
    lent.giveBack();
  }
}

async function streamThrough(buffers: Buffer[], file: FileHandle, res: ServerResponse, start: number, length: number): Promise<void> {
  const bufferBytes = Math.min(buffers[0].length, length);
  const chunks = Math.ceil(length / bufferBytes);
  const reads: Array<Promise<{ bytesRead: number }>> = [];
  const chunkBytes = (chunk: number) => Math.min(bufferBytes, length - chunk * bufferBytes);
  const startRead = (chunk: number) => {
    const read = file.read(buffers[chunk % READ_BUFFERS], 0, chunkBytes(chunk), start + chunk * bufferBytes);
    // awaited in its turn; a read left behind when the client went away must not count as an
    // unhandled rejection, which would end the daemon (the handle's close waits for it)
    read.catch(() => undefined);
    reads[chunk] = read;
  };
  for (let chunk = 0; chunk < Math.min(READ_BUFFERS - 1, chunks); chunk++) startRead(chunk);
  let flushed: Promise<void> = Promise.resolve();
  // A write's callback never comes once the client went away in the middle of it: the connection's
  // close lets the wait go (its socket closed, nothing writes from the buffer any more), so that the
  // file is closed and the buffers given back now, not when the collector finds them.
  let letGo: (() => void) | undefined;
  const onClose = () => letGo?.();
  res.once('close', onClose);
  try {
    for (let chunk = 0; chunk < chunks; chunk++) {
      const { bytesRead } = await reads[chunk];
      // a regular file reads short only at its end: cut short since it was opened
      if (bytesRead < chunkBytes(chunk)) throw new Error('the file ended before the object did');
      await flushed;
      if (res.destroyed) return;
      // the buffer of the previous chunk is free again: the read after the next goes into it
      if (chunk + READ_BUFFERS - 1 < chunks) startRead(chunk + READ_BUFFERS - 1);
      const buffer = buffers[chunk % READ_BUFFERS];
      flushed = new Promise((resolve, reject) => {
        letGo = resolve;
        res.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve()));
      });
      // awaited after the next read, likewise
      flushed.catch(() => undefined);
    }
    await flushed;
    res.end();
  } catch (error) {
    // the headers are out: a body that cannot be sent whole is cut off (and its pending write let go)
    res.destroy();
    throw error;
  } finally {
    // the buffers serve another body next: nothing may still read into them or write from them
    await Promise.allSettled([...reads, flushed]);
    res.off('close', onClose);
  }
}

/** The large buffers, lent to FAST_STREAMS bodies at a time (see there). */
const streamBuffers = new BufferSets(FAST_STREAMS, READ_BUFFERS, STREAM_READ_BYTES,
  () => Array.from({ length: READ_BUFFERS }, () => Buffer.allocUnsafe(SHARED_READ_BYTES)));
