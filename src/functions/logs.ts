import { close, fstat, mkdirSync, open, rename, write } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';

/**
 * A function's log file: its console output and the START/END/REPORT lines, appended; at
 * `maxBytes` the file becomes `<file>.1` (replacing the previous one) and a new one starts,
 * so a chatty function uses at most twice `maxBytes` of disk.
 */
export class RotatingLog extends Writable {
  private fd: number | undefined;
  private size = 0;

  constructor(private readonly file: string, private readonly maxBytes: number) {
    super({ decodeStrings: true });
    mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.ensureOpen((openError) => {
      if (openError) return callback(openError);
      write(this.fd!, chunk, (writeError) => {
        if (writeError) return callback(writeError);
        this.size += chunk.length;
        if (this.size >= this.maxBytes) this.rotate(callback);
        else callback();
      });
    });
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
