import type { IncomingMessage } from 'node:http';
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AuthError } from './sigv4-errors.js';
import { checksumMismatch, runningChecksum, type ChecksumAlgorithm, type RunningChecksum } from './checksums.js';

export interface VerifiedBodyOptions {
  /** x-amz-checksum-* headers to check at the end. */
  checksums: Array<{ algorithm: ChecksumAlgorithm; expected: string }>;
  /** The hex x-amz-content-sha256 the signature covers. */
  expectedSha256?: string;
  /** For a signature over a payload hash the client did not declare: checked with the hash computed here. */
  checkSignature?: (payloadHash: string) => AuthError | undefined;
  /** Filled with algorithm → base64 of each checksum that matched. */
  verified: Record<string, string>;
}

/**
 * A body's chunks handed to its reader one by one, as they were pushed: in byte mode a reader's
 * read() (what an async iterator calls) joins everything buffered into a new buffer, a copy of the
 * backlog each time the reader was slower than the socket (an upload's reader waits on each disk
 * write). Two chunks (of at most 64 KiB from the socket) wait for the reader at most, where byte
 * mode let 16 KiB wait: a body of one or two chunks is still verified to its end with no reader,
 * so that its error is known (an operation refused before reading its body).
 */
export const CHUNK_BY_CHUNK = { readableObjectMode: true, readableHighWaterMark: 2 } as const;

/**
 * A request body passed through unchanged while its declared digests are computed; a mismatch
 * fails the stream at its end (before the consumer sees 'end', so it never commits the object).
 */
export class VerifiedBody extends Transform {
  private readonly sha256: Hash | undefined;
  private readonly running: Array<{ algorithm: ChecksumAlgorithm; expected: string; checksum: RunningChecksum }>;

  constructor(private readonly options: VerifiedBodyOptions) {
    super(CHUNK_BY_CHUNK);
    this.sha256 = options.expectedSha256 !== undefined || options.checkSignature ? createHash('sha256') : undefined;
    this.running = options.checksums.map((claim) => ({ ...claim, checksum: runningChecksum(claim.algorithm) }));
  }

  /**
   * Pipes the request into `stream`; the request failing before its end (client gone, connection
   * reset) becomes S3's IncompleteBody on `stream`.
   */
  static pipeFrom<T extends Transform>(req: IncomingMessage, stream: T): T {
    // A body can fail before its reader listens, or with no reader at all (an operation refused
    // first): the error stays on the stream for whoever reads it and never goes unhandled.
    stream.on('error', () => undefined);
    req.on('error', () => stream.destroy(incompleteBody()));
    req.on('aborted', () => stream.destroy(incompleteBody()));
    stream.on('close', () => req.unpipe(stream));
    return req.pipe(stream);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.sha256?.update(chunk);
    for (const { checksum } of this.running) checksum.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const computedSha256 = this.sha256?.digest('hex');
    if (this.options.expectedSha256 !== undefined && computedSha256 !== this.options.expectedSha256) {
      return callback(new AuthError('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", 400,
        { ClientComputedContentSHA256: this.options.expectedSha256, S3ComputedContentSHA256: computedSha256! }));
    }
    const signatureError = this.options.checkSignature?.(computedSha256!);
    if (signatureError) return callback(signatureError);
    for (const { algorithm, expected, checksum } of this.running) {
      const computed = checksum.digest();
      if (computed !== expected) return callback(checksumMismatch(algorithm));
      this.options.verified[algorithm] = computed;
    }
    callback();
  }
}

export function incompleteBody(): AuthError {
  return new AuthError('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header', 400);
}
