import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * cloud.s3.maxBytesPerSecond over all uploads: a token bucket holding at most a tenth of a second
 * of bytes. A chunk larger than what is left is let through and paid for by waiting, so chunks are
 * never split and the long-run rate holds.
 */
export class ByteBucket {
  private tokens = 0;
  private refilledAt = performance.now();

  constructor(private readonly bytesPerSecond: number) {}

  /** Milliseconds to wait before sending `bytes` more (0 without a cap). */
  take(bytes: number): number {
    if (this.bytesPerSecond === 0) return 0;
    const now = performance.now();
    const burst = this.bytesPerSecond / 10;
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * this.bytesPerSecond) / 1000) - bytes;
    this.refilledAt = now;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }
}

/** What an upload body goes through: an MD5 of the bytes (to verify the cloud's ETag), a byte count, and the bandwidth cap. */
export class MeteredStream extends Transform {
  private readonly hash: Hash = createHash('md5');
  bytes = 0;

  constructor(private readonly bucket: ByteBucket, private readonly onBytes: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    const wait = this.bucket.take(chunk.length);
    if (wait === 0) callback(null, chunk);
    else setTimeout(() => callback(null, chunk), wait);
  }

  /** Hex MD5 of everything that went through (call once the stream ended). */
  md5(): string {
    return this.hash.digest('hex');
  }
}
