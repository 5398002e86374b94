import { finished, type Readable } from 'node:stream';

/**
 * How long an answer may wait for the output written before it: enough to read a pipe's worth many
 * times over, short next to a function's timeout (the invocation's clock runs while its answer waits).
 * Past it the answer goes anyway: a log that stopped taking lines must not stop the environment.
 */
const HOLD_MS = 250;
/** Answers waiting at most: a handler posting messages of its own in a loop must not grow the daemon. */
const MAX_HELD = 64;

/**
 * A process environment's answers in line with its output. Its stdout and stderr come on pipes read
 * apart from its answers (a Node.js process's IPC channel, the Python runtime's HTTP requests), so an
 * answer's END and REPORT came before the last lines the invocation wrote whenever those filled the
 * pipe (the process waits to write the rest while its answer is already sent). Each answer says how
 * many bytes the process had written to each (`written`: stdout, stderr) and is acted on once the
 * daemon has read that far, or the stream ended, in the order the answers came.
 */
export class AfterOutputRead {
  private readonly read: number[];
  private readonly ended: boolean[];
  private readonly held: Array<{ run: () => void; written: number[]; until: number }> = [];
  private timer: NodeJS.Timeout | undefined;

  /** `output`: stdout and stderr, as `written` counts them. */
  constructor(output: Readable[]) {
    this.read = output.map(() => 0);
    this.ended = output.map(() => false);
    output.forEach((stream, index) => {
      stream.on('data', (chunk: Buffer) => {
        this.read[index] += chunk.length;
        // after the chunk's other listeners (the log tail's) have had it too
        process.nextTick(() => this.release());
      });
      finished(stream, () => {
        this.ended[index] = true;
        this.release();
      });
    });
  }

  /** Runs `run` once the output is read as far as `written` says (anything but byte counts: at once, after those waiting). */
  after(written: unknown, run: () => void): void {
    const counts = Array.isArray(written) && written.length === this.read.length
      && written.every((count) => Number.isSafeInteger(count) && count >= 0) ? written as number[] : [];
    if (this.held.length === 0 && this.isRead(counts)) return run();
    if (this.held.length === MAX_HELD) this.held.shift()!.run();
    this.held.push({ run, written: counts, until: performance.now() + HOLD_MS });
    this.release();
  }

  /** Runs every answer waiting: the process has exited and its output is in, or will not come. */
  releaseAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let held = this.held.shift(); held; held = this.held.shift()) held.run();
  }

  private isRead(written: number[]): boolean {
    return written.every((count, index) => this.ended[index] || this.read[index] >= count);
  }

  private release(): void {
    const now = performance.now();
    while (this.held.length > 0 && (this.isRead(this.held[0].written) || this.held[0].until <= now)) this.held.shift()!.run();
    clearTimeout(this.timer);
    this.timer = this.held.length > 0 ? setTimeout(() => this.release(), this.held[0].until - now).unref() : undefined;
  }
}

/** `written` as a header carries it (Outpost-Output-Written: `stdout stderr` byte counts). */
export function writtenFromHeader(header: string | string[] | undefined): number[] | undefined {
  return typeof header === 'string' && /^\d{1,15} \d{1,15}$/.test(header) ? header.split(' ').map(Number) : undefined;
}
