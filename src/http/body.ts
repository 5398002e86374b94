import type { Readable } from 'node:stream';

/**
 * A request body up to `limit` bytes. A larger one is read to its end (so the answer reaches the
 * client) but not kept, and rejected with `tooLarge()`.
 */
export function readLimited(body: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    body.on('end', () => (size > limit ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    body.on('error', reject);
  });
}
