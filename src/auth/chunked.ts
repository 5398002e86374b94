import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AuthError } from './sigv4-errors.js';
import { EMPTY_SHA256, hmacHex, sameSignature, sha256Hex, type SigningScope } from './sigv4-canonical.js';
import { checkChecksumValue, checksumHeaderAlgorithm, checksumMismatch, runningChecksum, type ChecksumAlgorithm, type RunningChecksum } from './checksums.js';
import { CHUNK_BY_CHUNK, incompleteBody } from './sigv4-body.js';

/**
 * Decodes an `aws-chunked` body (S3 "Transferring Payload in Multiple Chunks"):
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailing header>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
 *
 * Chunk signatures chain from the seed signature of the Authorization header; a trailing
 * x-amz-checksum-* is checked against the decoded data. Data is passed on as it arrives (never
 * a whole chunk held): only the size and trailer lines are buffered, and those are bounded.
 */

export interface ChunkedOptions {
  /** x-amz-decoded-content-length. */
  decodedLength: number;
  /** Set for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: chunks (and the trailer) are signed. */
  signing?: { scope: SigningScope; seedSignature: string };
  /** The checksum x-amz-trailer announced. */
  trailer: ChecksumAlgorithm | undefined;
  /** Filled with algorithm → base64 once the trailing checksum matched. */
  checksums: Record<string, string>;
}

// A size line is at most 16 hex digits + ";chunk-signature=" + 64 hex; trailer lines are shorter. Longer is hostile.
const MAX_LINE_BYTES = 256;
const MAX_TRAILER_LINES = 8;
// 2^53: sizes beyond are not exact as JavaScript numbers (and far beyond any object).
const MAX_SIZE_HEX_DIGITS = 13;

type State = 'size' | 'data' | 'data-end' | 'trailer' | 'done';

const malformed = (why: string) => new AuthError('InvalidRequest', `The aws-chunked request body is malformed: ${why}.`, 400);
const chunkSignatureMismatch = () => new AuthError('SignatureDoesNotMatch',
  'The request signature we calculated does not match the signature you provided. Check your key and signing method.', 403);

export class AwsChunkedDecoder extends Transform {
  private state: State = 'size';
  private line = Buffer.alloc(0);
  private remaining = 0;
  private decoded = 0;
  private chunkHash: Hash | undefined;
  private chunkSignature = '';
  private previousSignature: string;
  private readonly trailers: Array<[string, string]> = [];
  private readonly checksum: RunningChecksum | undefined;

  constructor(private readonly options: ChunkedOptions) {
    super(CHUNK_BY_CHUNK);
    this.previousSignature = options.signing?.seedSignature ?? '';
    this.checksum = options.trailer ? runningChecksum(options.trailer) : undefined;
  }

  override _transform(input: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let offset = 0;
      while (offset < input.length) {
        switch (this.state) {
          case 'size': offset = this.readLine(input, offset, (line) => this.startChunk(line)); break;
          case 'data': offset = this.passData(input, offset); break;
          case 'data-end': offset = this.readLine(input, offset, (line) => this.endChunk(line)); break;
          case 'trailer': offset = this.readLine(input, offset, (line) => this.readTrailer(line)); break;
          case 'done': throw malformed('data after the final chunk');
        }
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.state !== 'done' || this.decoded !== this.options.decodedLength) return callback(incompleteBody());
    callback();
  }

  /** Collects bytes up to CRLF (bounded) and hands the line over; returns the offset after it. */
  private readLine(input: Buffer, offset: number, onLine: (line: string) => void): number {
    let text: string;
    let next: number;
    if (this.line.length > 0 && this.line[this.line.length - 1] === 0x0d && input[offset] === 0x0a) {
      // The CR ended the previous buffer, its LF starts this one.
      text = this.line.subarray(0, this.line.length - 1).toString('latin1');
      next = offset + 1;
    } else {
      const end = input.indexOf('\r\n', offset);
      if (end < 0) {
        this.appendLine(input.subarray(offset));
        return input.length;
      }
      this.appendLine(input.subarray(offset, end));
      text = this.line.toString('latin1');
      next = end + 2;
    }
    this.line = Buffer.alloc(0);
    onLine(text);
    return next;
  }

  private appendLine(bytes: Buffer): void {
    if (this.line.length + bytes.length > MAX_LINE_BYTES) throw malformed(`a line longer than ${MAX_LINE_BYTES} bytes`);
    this.line = Buffer.concat([this.line, bytes]);
  }

  // "<hex size>;chunk-signature=<sig>" (signed) or "<hex size>" (unsigned)
  private startChunk(line: string): void {
    const semicolon = line.indexOf(';');
    const hex = semicolon < 0 ? line : line.slice(0, semicolon);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.replace(/^0+(?=.)/, '').length > MAX_SIZE_HEX_DIGITS) throw malformed(`invalid chunk size "${hex.slice(0, 20)}"`);
    const size = parseInt(hex, 16);
    if (this.options.signing) {
      const signature = /^chunk-signature=([0-9a-f]{64})$/.exec(semicolon < 0 ? '' : line.slice(semicolon + 1));
      if (!signature) throw malformed('a chunk without its chunk-signature');
      this.chunkSignature = signature[1];
      this.chunkHash = createHash('sha256');
    }
    if (this.decoded + size > this.options.decodedLength) throw malformed('more data than x-amz-decoded-content-length');
    if (size === 0) {
      this.verifyChunk();
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  private passData(input: Buffer, offset: number): number {
    const take = Math.min(this.remaining, input.length - offset);
    const data = input.subarray(offset, offset + take);
    this.chunkHash?.update(data);
    this.checksum?.update(data);
    this.decoded += take;
    this.remaining -= take;
    this.push(data);
    if (this.remaining === 0) this.state = 'data-end';
    return offset + take;
  }

  private endChunk(line: string): void {
    if (line !== '') throw malformed('chunk data longer than its size');
    this.verifyChunk();
    this.state = 'size';
  }

  // S3 chunk string to sign: "AWS4-HMAC-SHA256-PAYLOAD\n<timestamp>\n<scope>\n<previous signature>\n<hash of ''>\n<hash of the chunk data>"
  private verifyChunk(): void {
    const signing = this.options.signing;
    if (!signing) return;
    const toSign = `AWS4-HMAC-SHA256-PAYLOAD\n${signing.scope.timestamp}\n${signing.scope.scope}\n${this.previousSignature}\n${EMPTY_SHA256}\n${this.chunkHash!.digest('hex')}`;
    if (!sameSignature(hmacHex(signing.scope.key, toSign), this.chunkSignature)) throw chunkSignatureMismatch();
    this.previousSignature = this.chunkSignature;
  }

  private readTrailer(line: string): void {
    if (line !== '') {
      if (this.trailers.length >= MAX_TRAILER_LINES) throw malformed('too many trailing headers');
      const colon = line.indexOf(':');
      if (colon <= 0) throw malformed('a trailing header without a name');
      this.trailers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
      return;
    }
    this.verifyTrailer();
    this.state = 'done';
  }

  private verifyTrailer(): void {
    const signing = this.options.signing;
    const headers = this.trailers.filter(([name]) => name !== 'x-amz-trailer-signature');
    if (signing && this.options.trailer) {
      // "AWS4-HMAC-SHA256-TRAILER\n<timestamp>\n<scope>\n<signature of the final chunk>\n<hash of the canonical trailing headers>"
      const provided = this.trailers.find(([name]) => name === 'x-amz-trailer-signature')?.[1];
      const canonical = headers.map(([name, value]) => `${name}:${value}\n`).sort().join('');
      const toSign = `AWS4-HMAC-SHA256-TRAILER\n${signing.scope.timestamp}\n${signing.scope.scope}\n${this.previousSignature}\n${sha256Hex(canonical)}`;
      if (provided === undefined || !sameSignature(hmacHex(signing.scope.key, toSign), provided)) throw chunkSignatureMismatch();
    }
    const algorithm = this.options.trailer;
    if (!algorithm) return;
    const sent = headers.find(([name]) => checksumHeaderAlgorithm(name) === algorithm)?.[1];
    if (sent === undefined) throw malformed(`the trailing x-amz-checksum-${algorithm} announced by x-amz-trailer is missing`);
    checkChecksumValue(algorithm, sent);
    if (this.decoded !== this.options.decodedLength) throw incompleteBody();
    const computed = this.checksum!.digest();
    if (computed !== sent) throw checksumMismatch(algorithm);
    this.options.checksums[algorithm] = computed;
  }
}
