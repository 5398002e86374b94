/** Reads up to `length` bytes at `position` of a file into `buffer` at `offset` (a FileHandle's read, or fs.read on a descriptor). */
export type ReadAt = (buffer: Buffer, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>;

/** The largest read of fileChunks. */
const CHUNK_BYTES = 1024 * 1024;

/**
 * Bytes `start` to `end` (inclusive) of a file, read through one buffer reused for every chunk:
 * each chunk yielded is valid until the next is asked for, so its consumer copies it out first
 * (ObjectStore.receive does). A read stream would make a new 1 MiB buffer per read, garbage that
 * piled up to tens of MiB under an `aws s3 cp`. A range that fits one buffer is one chunk, whole
 * (short reads are filled up), so a consumer that keeps its chunks may take it. The file ending
 * early is an error: the object's record says how long it is.
 */
export async function* fileChunks(readAt: ReadAt, start: number, end: number): AsyncGenerator<Buffer> {
  const length = end - start + 1;
  if (length <= 0) return;
  const buffer = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, length));
  for (let position = start; position <= end;) {
    const chunkBytes = Math.min(buffer.length, end + 1 - position);
    let filled = 0;
    while (filled < chunkBytes) {
      const { bytesRead } = await readAt(buffer, filled, chunkBytes - filled, position + filled);
      if (bytesRead === 0) throw new Error('the file ended before the object did');
      filled += bytesRead;
    }
    position += filled;
    yield buffer.subarray(0, filled);
  }
}
