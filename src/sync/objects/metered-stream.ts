import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * cloud.s3.maxBytesPerSecond over all uploads: a token bucket holding at most a tenth of a second
 * of bytes (`burst`). A piece larger than what is left is let through and paid for by waiting, so
 * the long-run rate holds; pieces are at most a burst (MeteredStream), so under a low cap bytes
 * still go out every tenth of a second, where a whole 64 KiB chunk at 1 kB/s would keep the request
 * silent past its idle timeout.
 */
export class ByteBucket {
  private tokens = 0;
  private refilledAt = performance.now();

  constructor(private readonly bytesPerSecond: number) {}

  /** The most bytes to send at once: a burst (all of them without a cap). */
  pieceBytes(bytes: number): number {
    return this.bytesPerSecond === 0 ? bytes : Math.min(bytes, Math.max(1, Math.floor(this.bytesPerSecond / 10)));
  }

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
    this.sendPaced(chunk, callback);
  }

  /** Sends the chunk a piece at a time, each once the bucket allows it. */
  private sendPaced(chunk: Buffer, callback: TransformCallback): void {
    const piece = chunk.subarray(0, this.bucket.pieceBytes(chunk.length));
    const rest = chunk.subarray(piece.length);
    const send = () => {
      if (rest.length === 0) return callback(null, piece);
      this.push(piece);
      this.sendPaced(rest, callback);
    };
    const wait = this.bucket.take(piece.length);
    if (wait === 0) send();
    else setTimeout(send, wait);
  }

  /** Hex MD5 of everything that went through (call once the stream ended). */
  md5(): string {
    return this.hash.digest('hex');
  }
}
