/**
 * Cuts a byte stream into delimited frames without ever holding more than `maxFrameBytes` and a
 * partial delimiter (plus one chunk while scanning): a line that grows past the limit is dropped up
 * to its delimiter and reported as oversized, so noise without delimiters cannot grow the buffer.
 */
export class LineFramer {
  private readonly delimiter: Buffer;
  private buffer = Buffer.alloc(0);
  /** Inside an oversized line: bytes are discarded until the next delimiter. */
  private discarding = false;

  constructor(delimiter: string, private readonly maxFrameBytes: number, private readonly onFrame: (frame: Buffer) => void, private readonly onOversized: () => void) {
    this.delimiter = Buffer.from(delimiter, 'utf8');
  }

  push(chunk: Buffer): void {
    let data = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let end: number;
    while ((end = data.indexOf(this.delimiter)) >= 0) {
      const frame = data.subarray(0, end);
      data = data.subarray(end + this.delimiter.length);
      if (this.discarding) this.discarding = false;
      else if (frame.length > this.maxFrameBytes) this.onOversized();
      else this.onFrame(frame);
    }
    // the last bytes may be the start of a delimiter split across reads: a line of maxFrameBytes
    // followed by half a "\r\n" is not too long yet
    if (data.length > this.maxFrameBytes + this.delimiter.length - 1) {
      if (!this.discarding) this.onOversized();
      this.discarding = true;
      // Keep a delimiter's worth minus one: the delimiter may be split across chunks.
      data = data.subarray(data.length - (this.delimiter.length - 1));
    }
    this.buffer = Buffer.from(data);
  }

  /** After a reconnect: a partial line from before is not continued by the new stream. */
  reset(): void {
    this.buffer = Buffer.alloc(0);
    this.discarding = false;
  }
}

/**
 * Fixed-length frames, e.g. scales that print N-byte records. Nothing in the bytes marks where a
 * frame starts, so a byte lost to noise (or a connection made mid-record) would shift every later
 * frame: the device's pauses between records realign them, as a partial frame followed by `gapMs`
 * of silence is dropped.
 */
export class FixedFramer {
  private buffer = Buffer.alloc(0);
  /** performance.now() of the last chunk: a step of the wall clock is no silence on the line. */
  private lastChunkAt = 0;

  constructor(private readonly length: number, private readonly gapMs: number, private readonly onFrame: (frame: Buffer) => void,
    private readonly onPartialDropped: (bytes: number) => void) {}

  push(chunk: Buffer): void {
    const now = performance.now();
    if (this.buffer.length && this.gapMs > 0 && now - this.lastChunkAt > this.gapMs) {
      this.onPartialDropped(this.buffer.length);
      this.buffer = Buffer.alloc(0);
    }
    this.lastChunkAt = now;
    let data = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (data.length >= this.length) {
      this.onFrame(Buffer.from(data.subarray(0, this.length)));
      data = data.subarray(this.length);
    }
    this.buffer = Buffer.from(data);
  }

  reset(): void {
    this.buffer = Buffer.alloc(0);
  }
}
