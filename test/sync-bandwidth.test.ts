import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ByteBucket, MeteredStream } from '../src/sync/objects/metered-stream.js';

// The upload bandwidth cap (cloud.s3.maxBytesPerSecond) on its own: what leaves the stream, and when.

describe('the upload bandwidth cap', () => {
  it('sends a chunk larger than a tenth of a second of bytes in pieces of that size, at the capped rate', async () => {
    const stream = new MeteredStream(new ByteBucket(2000), () => undefined);
    const chunk = Buffer.alloc(1000, 7);
    const arrivals: Array<{ at: number; bytes: number }> = [];
    const started = performance.now();
    stream.on('data', (piece: Buffer) => arrivals.push({ at: performance.now() - started, bytes: piece.length }));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    stream.end(chunk);
    await ended;
    // pieces of a tenth of a second's bytes: a slow cap does not keep the request silent for the
    // whole chunk's time (the cloud request's idle timeout counts silence)
    expect(arrivals.map((arrival) => arrival.bytes)).toEqual([200, 200, 200, 200, 200]);
    // and the cap holds: 1000 bytes at 2000 B/s, the first burst at once, the rest over 0.4 s
    expect(arrivals.at(-1)!.at).toBeGreaterThan(350);
    expect(stream.md5()).toBe(createHash('md5').update(chunk).digest('hex'));
  });

  it('passes chunks through whole without a cap', async () => {
    const stream = new MeteredStream(new ByteBucket(0), () => undefined);
    const pieces: Buffer[] = [];
    stream.on('data', (piece: Buffer) => pieces.push(piece));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    stream.end(Buffer.alloc(65536));
    await ended;
    expect(pieces.map((piece) => piece.length)).toEqual([65536]);
  });
});
