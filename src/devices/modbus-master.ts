import { answerData, findAnswer, type ModbusRequest } from './parsers/modbus.js';
import { ParseError } from './parsers/reading.js';
import { PORT_BUSY } from './serial.js';

/** The longest Modbus RTU ADU; more buffered bytes can only be noise. */
const MAX_ADU = 256;

/**
 * Modbus RTU request/response on one line: one request at a time (the bus is half duplex), the
 * answer found among the bytes that arrive (stray bytes before it skipped, frames with a bad CRC
 * discarded), a timeout otherwise. Bytes that arrive with no request outstanding are noise and
 * reported as such.
 */
export class ModbusMaster {
  /** After a timeout the line stays quiet this long, so a late answer is taken for noise, not for the next request's answer. */
  /** performance.now(): a step of the wall clock must not silence the line for as long as the step. */
  private quietUntil = 0;
  /** performance.now() of the last bytes heard (an answer, noise): the next request keeps the frame gap after them. */
  private lastHeardAt = -Infinity;
  /** Modbus over Serial Line §2.5.1.1: frames are separated by at least 3.5 characters of silence, 1.75 ms above 19200 baud. */
  private readonly frameGapMs: number;
  private current: {
    request: ModbusRequest;
    /** On the line: not yet while the port has not taken the previous write. */
    written: boolean;
    received: Buffer;
    /** A complete frame failed its CRC: the timeout reports that rather than no answer at all. */
    badCrc: boolean;
    settle: (error: Error | undefined, data?: Buffer) => void;
  } | undefined;
  /** Requests wait here for the line; bounded by the poll (one at a time) plus the device's command queue. */
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * `write`: puts a frame on the line once the port has taken the previous one, unless `wanted()`
   * says by then that the request was given up. `responseTimeoutMs`: how long the device may take
   * to answer, counted once the request is on the line and before the answer is (`charMs`, one
   * character's time at the line's speed): at 2400 baud a 74-register answer alone takes 640 ms.
   */
  constructor(private readonly write: (frame: Buffer, wanted: () => boolean) => Promise<void>, private readonly responseTimeoutMs: number, private readonly charMs: number,
    private readonly onNoise: (bytes: number) => void) {
    this.frameGapMs = Math.max(3.5 * charMs, 1.75);
  }

  /** Sends a request once the line is free; resolves with the answer's data, rejects with a ParseError (CRC, exception, timeout). */
  transact(request: ModbusRequest): Promise<Buffer> {
    const run = this.queue.then(() => this.send(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  push(chunk: Buffer): void {
    this.lastHeardAt = performance.now();
    const current = this.current;
    // nothing answers a request not yet on the line (waiting for the port): a late answer to an
    // earlier one would be taken for it, and a write never made reported done
    if (!current?.written) {
      this.onNoise(chunk.length);
      return;
    }
    // an answer not found yet is incomplete, so it starts within the last MAX_ADU bytes
    current.received = Buffer.concat([current.received, chunk]).subarray(-MAX_ADU);
    const { answer, badCrc } = findAnswer(current.request, current.received);
    current.badCrc ||= badCrc;
    if (!answer) return;
    try {
      current.settle(undefined, answerData(current.request, answer));
    } catch (error) {
      current.settle(error as Error);
    }
  }

  /**
   * Waits out the quiet time after a timeout and the frame gap after the last bytes heard: a slave
   * takes a request that follows its answer sooner for the rest of a frame and drops it. Bytes
   * heard meanwhile do not extend the wait, so a noisy line cannot hold requests back for ever.
   */
  private async lineQuiet(): Promise<void> {
    const readyAt = Math.max(this.quietUntil, this.lastHeardAt + this.frameGapMs);
    // a timer may fire up to a millisecond early (whole milliseconds, the loop's cached clock)
    for (let wait = readyAt - performance.now(); wait > 0; wait = readyAt - performance.now()) {
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
    }
  }

  /** The line is gone: the request in flight fails now rather than at its timeout. */
  abort(reason: string): void {
    this.current?.settle(new ParseError(reason));
  }

  private async send(request: ModbusRequest): Promise<Buffer> {
    await this.lineQuiet();
    const timeoutMs = Math.ceil(this.responseTimeoutMs + (request.frame.length + request.responseLength) * this.charMs);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.quietUntil = performance.now() + this.responseTimeoutMs;
        current.settle(new ParseError(!current.written ? PORT_BUSY : current.badCrc ? 'Modbus CRC mismatch' : `no Modbus answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const current: NonNullable<ModbusMaster['current']> = {
        request, written: false, received: Buffer.alloc(0), badCrc: false,
        settle: (error, data) => {
          clearTimeout(timer);
          this.current = undefined;
          if (error) reject(error);
          else resolve(data!);
        },
      };
      this.current = current;
      this.write(request.frame, () => this.current === current)
        .then(() => { current.written = true; }, (error: Error) => { if (this.current === current) current.settle(error); });
    });
  }
}
