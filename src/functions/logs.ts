import { close, fstat, open, rename, write } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { makeDirectoriesSync } from '../store/durable-directories.js';
import { Writable } from 'node:stream';

type WriteCallback = (error: Error | null | undefined) => void;

/**
 * How long log text waits to be written: one write per batch instead of one per invocation, since each
 * write wakes a libuv pool thread, which on a small board takes the CPU from the invocation path.
 */
const BATCH_MS = 10;
/** Log text a batch holds at most: past this it is written at once (a chatty function, a burst). */
const MAX_BATCH_BYTES = 64 * 1024;

/**
 * A function's log file: its console output and the START/END/REPORT lines, appended; at
 * `maxBytes` the file becomes `<file>.1` (replacing the previous one) and a new one starts,
 * so a chatty function uses at most twice `maxBytes` of disk. What arrives within BATCH_MS
 * is written together. What cannot be written (a full disk) is dropped, the failure told to
 * `onFailure` once until a write succeeds again: the stream stays open, since the function's
 * output is piped into it and would otherwise stop the function once its pipe is full.
 */
export class RotatingLog extends Writable {
  private fd: number | undefined;
  private size = 0;
  /** The runtime's own lines (START, END, REPORT) not handed to the stream yet. */
  private lines = '';
  /** Set while a batch is being collected (the stream is corked until it fires). */
  private batchTimer: NodeJS.Timeout | undefined;
  /** Since the last write failed, until one succeeds. */
  private failing = false;
  /** The function's output so far ends within a line: the runtime's next line starts a new one. */
  private outputMidLine = false;

  constructor(private readonly file: string, private readonly maxBytes: number, private readonly onFailure: (error: Error) => void) {
    super({ decodeStrings: true });
    makeDirectoriesSync(dirname(file), 0o750);
  }

  /**
   * Appends the runtime's lines. The function's console output, piped in, goes after the lines
   * appended before it arrived (see `write`), so a START line comes before the output of its
   * invocation, and its END after it (the runtimes hand over their output before their answer).
   */
  line(text: string): void {
    if (this.writableEnded) return;
    this.collect();
    // START, END and REPORT begin their own line, as Lambda logs them after output without a final newline.
    if (this.outputMidLine && this.lines === '') this.lines = '\n';
    this.outputMidLine = false;
    this.lines += text;
    if (this.lines.length >= MAX_BATCH_BYTES) this.writeBatch();
  }

  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    this.collect();
    this.flushLines();
    const last = typeof chunk === 'string' ? chunk.at(-1) : chunk instanceof Uint8Array && chunk.length > 0 ? String.fromCharCode(chunk[chunk.length - 1]) : undefined;
    if (last !== undefined) this.outputMidLine = last !== '\n';
    const room = super.write(chunk, encoding as BufferEncoding, callback);
    if (this.writableLength >= MAX_BATCH_BYTES) this.writeBatch();
    return room;
  }

  /** Starts a batch unless one is being collected: writes wait in the corked stream until BATCH_MS. */
  private collect(): void {
    if (this.batchTimer || this.writableEnded) return;
    this.cork();
    this.batchTimer = setTimeout(() => this.writeBatch(), BATCH_MS);
  }

  private writeBatch(): void {
    if (!this.batchTimer) return;
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    this.flushLines();
    this.uncork();
  }

  private flushLines(): void {
    const text = this.lines;
    if (text === '' || this.writableEnded) return;
    this.lines = '';
    super.write(text);
  }

  /** Writes the lines still buffered, then ends the stream (closes the file). */
  finish(callback?: () => void): void {
    this.writeBatch();
    this.end(callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const done = (error?: Error | null) => (error ? this.dropped(error, callback) : this.written(callback));
    this.ensureOpen((openError) => {
      if (openError) return done(openError);
      write(this.fd!, chunk, (writeError) => {
        if (writeError) return done(writeError);
        this.size += chunk.length;
        if (this.size >= this.maxBytes) this.rotate(done);
        else done();
      });
    });
  }

  private written(callback: () => void): void {
    this.failing = false;
    callback();
  }

  /** The chunk is lost; the file is opened again for the next one (it may have been removed meanwhile). */
  private dropped(error: Error, callback: () => void): void {
    if (!this.failing) this.onFailure(error);
    this.failing = true;
    this.closeFile(() => callback());
  }

  /** A batch, and what arrived while a write was in flight, goes out as one write. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this._write(Buffer.concat(chunks.map(({ chunk }) => chunk)), 'binary', callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.closeFile(callback);
  }

  private ensureOpen(callback: (error?: Error | null) => void): void {
    if (this.fd !== undefined) return callback();
    open(this.file, 'a', 0o640, (error, fd) => {
      if (error) return callback(error);
      this.fd = fd;
      // Appending to the file of a previous run: count what is already there.
      fstat(fd, (statError, stat) => {
        this.size = statError ? 0 : stat.size;
        callback();
      });
    });
  }

  private rotate(callback: (error?: Error | null) => void): void {
    this.closeFile(() => rename(this.file, `${this.file}.1`, (error) => callback(error)));
  }

  private closeFile(callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return callback();
    close(fd, (error) => callback(error));
  }
}

/** At most this much log text per read, so `outpost logs` never makes the daemon buffer a whole file. */
const MAX_LOG_READ_BYTES = 256 * 1024;

export interface LogChunk {
  text: string;
  /** Where the next read continues (`outpost logs -f` passes it back). */
  offset: number;
}

/**
 * Reads a function's log: from `offset` when following, else its last `lines`
 * lines. A file shorter than `offset` was rotated, so reading starts again at 0.
 */
export async function readLog(file: string, request: { offset?: number; lines: number }): Promise<LogChunk> {
  let handle;
  try {
    handle = await openFile(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', offset: 0 };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const following = request.offset !== undefined;
    const start = following ? (request.offset! <= size ? request.offset! : 0) : Math.max(0, size - MAX_LOG_READ_BYTES);
    const length = Math.min(size - start, MAX_LOG_READ_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, start);
    let text = buffer.toString('utf8');
    if (!following) {
      const lines = text.split('\n');
      const complete = text.endsWith('\n') ? lines.slice(0, -1) : lines;
      // A read that starts mid-file starts mid-line: drop that partial first line.
      const whole = start > 0 ? complete.slice(1) : complete;
      text = whole.slice(-request.lines).map((line) => `${line}\n`).join('');
    }
    return { text, offset: start + length };
  } finally {
    await handle.close();
  }
}
