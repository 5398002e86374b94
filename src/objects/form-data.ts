import { S3Error } from './errors.js';

/**
 * A streaming reader of multipart/form-data (RFC 7578) for S3 POST uploads: the fields before the
 * file are read into memory (bounded), the file's content is handed on as a stream and never held
 * whole. S3 reads nothing after the file, so neither does this.
 */

export interface FormFile {
  /** The part's filename parameter ('' when absent): what `${filename}` in the key stands for. */
  filename: string;
  /** The file's content, ending at the part's closing delimiter; MalformedPOSTRequest when the body ends before it. */
  content: AsyncIterable<Buffer>;
}

export interface Form {
  /** Field values by lower-case name (S3 form field names are case-insensitive). */
  fields: Map<string, string>;
  file: FormFile | undefined;
  /** Reads what follows the file (more fields, the epilogue) and throws it away, so the connection can serve the next request. */
  discardRest(): Promise<void>;
}

/** The boundary of a multipart/form-data Content-Type; undefined for any other type. */
export function formBoundary(contentType: string | undefined): string | undefined {
  const [type, ...parameters] = (contentType ?? '').split(';');
  if (type.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  const boundary = parameterValue(parameters.join(';'), 'boundary');
  // RFC 2046: 1-70 characters
  return boundary && boundary.length <= 70 ? boundary : undefined;
}

export const malformedPost = () => new S3Error('MalformedPOSTRequest', 400, 'The body of your POST request is not well-formed multipart/form-data.');

const preDataTooLarge = (limit: number) => new S3Error('MaxPostPreDataLengthExceeded', 400,
  'Your POST request fields preceding the upload file were too large.', { MaxPostPreDataLengthBytes: String(limit) });

const CRLF = Buffer.from('\r\n');
const HEADERS_END = Buffer.from('\r\n\r\n');

/**
 * Reads the form up to the file part: the fields (at most `fieldBytes` of the body before the
 * file, else MaxPostPreDataLengthExceeded) and the file, whose content the caller streams next.
 */
export async function readForm(body: AsyncIterable<Buffer>, boundary: string, fieldBytes: number): Promise<Form> {
  const reader = new DelimitedReader(body, Buffer.from(`\r\n--${boundary}`));
  const fields = new Map<string, string>();
  let budget = fieldBytes;
  const spend = (bytes: number) => {
    budget -= bytes;
    if (budget < 0) throw preDataTooLarge(fieldBytes);
  };
  // the preamble before the first delimiter is ignored (RFC 2046)
  spend((await reader.untilDelimiter(budget)).length);
  for (;;) {
    if (await reader.atLastDelimiter()) return { fields, file: undefined, discardRest: () => reader.discardRest() };
    const headers = await reader.partHeaders(budget);
    spend(headers.length);
    const disposition = partHeader(headers, 'content-disposition');
    const name = disposition === undefined ? undefined : parameterValue(disposition, 'name');
    if (name === undefined) throw malformedPost();
    if (name.toLowerCase() === 'file') {
      const file = { filename: parameterValue(disposition!, 'filename') ?? '', content: reader.untilDelimiterStreamed() };
      return { fields, file, discardRest: () => reader.discardRest() };
    }
    const value = await reader.untilDelimiter(budget);
    spend(value.length);
    fields.set(name.toLowerCase(), value.toString('utf8'));
  }
}

/** A header of a part's header block (`Name: value` lines), by lower-case name. */
function partHeader(block: Buffer, name: string): string | undefined {
  for (const line of block.toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** A `name=value` or `name="value"` parameter of a header value (`form-data; name="key"; filename="a.jpg"`). */
function parameterValue(header: string, name: string): string | undefined {
  const pattern = /;?\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (const match of header.matchAll(pattern)) {
    if (match[1].toLowerCase() === name) return match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3].trim();
  }
  return undefined;
}

/** Reads a body as the stretches between delimiters, holding at most one socket chunk and a delimiter's length. */
class DelimitedReader {
  private readonly chunks: AsyncIterator<Buffer>;
  // the body's first delimiter has no CRLF before it; starting with one makes every delimiter alike
  private pending: Buffer = CRLF;

  constructor(body: AsyncIterable<Buffer>, private readonly delimiter: Buffer) {
    this.chunks = body[Symbol.asyncIterator]();
  }

  /** The bytes up to the next delimiter (which is consumed); more than `limit` is the caller's error to report as its own. */
  async untilDelimiter(limit: number): Promise<Buffer> {
    for (;;) {
      const at = this.pending.indexOf(this.delimiter);
      if (at >= 0) {
        const before = this.pending.subarray(0, at);
        this.pending = this.pending.subarray(at + this.delimiter.length);
        return before;
      }
      if (this.pending.length > limit + this.delimiter.length) return this.pending;
      await this.more();
    }
  }

  /** The same as a stream: everything up to the next delimiter, in chunks, without gathering it. */
  async *untilDelimiterStreamed(): AsyncGenerator<Buffer> {
    for (;;) {
      const at = this.pending.indexOf(this.delimiter);
      if (at >= 0) {
        if (at > 0) yield this.pending.subarray(0, at);
        this.pending = this.pending.subarray(at + this.delimiter.length);
        return;
      }
      // a delimiter may begin in the last bytes: they wait for the next chunk
      const safe = this.pending.length - this.delimiter.length + 1;
      if (safe > 0) {
        yield this.pending.subarray(0, safe);
        this.pending = this.pending.subarray(safe);
      }
      await this.more();
    }
  }

  /** After a delimiter: `--` ends the form, CRLF starts a part (RFC 2046). */
  async atLastDelimiter(): Promise<boolean> {
    while (this.pending.length < 2) await this.more();
    if (this.pending[0] === 0x2d && this.pending[1] === 0x2d) return true;
    if (!this.pending.subarray(0, 2).equals(CRLF)) throw malformedPost();
    this.pending = this.pending.subarray(2);
    return false;
  }

  /** A part's header block, up to the blank line (consumed). */
  async partHeaders(limit: number): Promise<Buffer> {
    // a part without headers starts with the blank line at once
    for (;;) {
      if (this.pending.subarray(0, 2).equals(CRLF)) {
        this.pending = this.pending.subarray(2);
        return Buffer.alloc(0);
      }
      const at = this.pending.indexOf(HEADERS_END);
      if (at >= 0) {
        const headers = this.pending.subarray(0, at);
        this.pending = this.pending.subarray(at + HEADERS_END.length);
        return headers;
      }
      if (this.pending.length > limit) return this.pending;
      await this.more();
    }
  }

  async discardRest(): Promise<void> {
    this.pending = Buffer.alloc(0);
    while (!(await this.chunks.next()).done);
  }

  private async more(): Promise<void> {
    const next = await this.chunks.next();
    if (next.done) throw malformedPost();
    this.pending = this.pending.length ? Buffer.concat([this.pending, next.value]) : next.value;
  }
}
