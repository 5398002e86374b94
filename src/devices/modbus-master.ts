import { answerData, findAnswer, otherUnitAnswering, type ModbusRequest } from './parsers/modbus.js';
import { ParseError } from './parsers/reading.js';
import { PORT_BUSY } from './serial.js';

/** The longest Modbus RTU ADU; more buffered bytes can only be noise. */
const MAX_ADU = 256;

/** No answer from the unit asked by the request's timeout: the unit may be absent (unplugged, powered off). */
export class NoAnswer extends ParseError {}

interface Waiting {
  request: ModbusRequest;
  resolve: (data: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * One device on a Modbus line: its requests, its response timeout, and where the noise it is
 * blamed for is counted. Its requests wait in its own queue, at most one poll read and one command
 * (each device runs both one at a time).
 */
export class ModbusUnit {
  readonly waiting: Waiting[] = [];

  constructor(private readonly master: ModbusMaster, readonly responseTimeoutMs: number, readonly onNoise: (bytes: number) => void) {}

  /** Sends a request once the line is free and this unit's turn comes; resolves with the answer's data, rejects with a ParseError (CRC, exception, timeout). */
  transact(request: ModbusRequest): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      void this.master.sendWaiting();
    });
  }

  /** The line is gone or the device stops: its request in flight fails now rather than at its timeout. */
  abort(reason: string): void {
    this.master.abort(this, reason);
  }
}

/**
 * Modbus RTU master on one line, for one unit or the several units of an RS-485 bus: one request
 * on the line at a time (Modbus over Serial Line §2.4: the master waits for the answer or the
 * response timeout before the next request), taken from the units in turn, so one unit's long
 * register map or its timeouts do not hold another's commands back behind all of its reads. The
 * answer is found among the bytes that arrive (stray bytes before it skipped, frames with a bad CRC
 * or another unit's id discarded), a timeout otherwise. Bytes that arrive with no request
 * outstanding are noise.
 */
export class ModbusMaster {
  private readonly units: ModbusUnit[] = [];
  /** The index in `units` whose request goes first next time. */
  private turn = 0;
  /** The unit of the last request sent: bytes heard with no request outstanding are most likely its late answer. */
  private lastUnit: ModbusUnit | undefined;
  private sending = false;
  /** After a timeout the line stays quiet for the unit's response timeout, so a late answer is taken for noise, not for the next request's answer. */
  /** performance.now(): a step of the wall clock must not silence the line for as long as the step. */
  private quietUntil = 0;
  /** performance.now() of the last bytes heard (an answer, noise): the next request keeps the frame gap after them. */
  private lastHeardAt = -Infinity;
  /** Modbus over Serial Line §2.5.1.1: frames are separated by at least 3.5 characters of silence, 1.75 ms above 19200 baud. */
  private readonly frameGapMs: number;
  private current: {
    unit: ModbusUnit;
    request: ModbusRequest;
    /** On the line: not yet while the port has not taken the previous write. */
    written: boolean;
    received: Buffer;
    /** A complete frame failed its CRC: the timeout reports that rather than no answer at all. */
    badCrc: boolean;
    /** Bytes of the request's echo still to come off what is received (port.localEcho). */
    echoLeft: number;
    settle: (error: Error | undefined, data?: Buffer) => void;
  } | undefined;

  /**
   * `write`: puts a frame on the line once the port has taken the previous one, unless `wanted()`
   * says by then that the request was given up. `charMs`: one character's time at the line's speed,
   * added to a unit's response timeout for the request and its answer on the line (at 2400 baud a
   * 74-register answer alone takes 640 ms).
   */
  constructor(private readonly write: (frame: Buffer, wanted: () => boolean) => Promise<void>, private readonly charMs: number, private readonly localEcho = false) {
    this.frameGapMs = Math.max(3.5 * charMs, 1.75);
  }

  /** A device on the line. */
  unit(responseTimeoutMs: number, onNoise: (bytes: number) => void): ModbusUnit {
    const unit = new ModbusUnit(this, responseTimeoutMs, onNoise);
    this.units.push(unit);
    return unit;
  }

  push(received: Buffer): void {
    this.lastHeardAt = performance.now();
    const current = this.current;
    // nothing answers a request not yet on the line (waiting for the port): a late answer to an
    // earlier one would be taken for it, and a write never made reported done
    if (!current?.written) {
      (this.lastUnit ?? this.units[0])?.onNoise(received.length);
      return;
    }
    const chunk = withoutEcho(current, received);
    if (chunk.length === 0) return;
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

  abort(unit: ModbusUnit, reason: string): void {
    if (this.current?.unit === unit) this.current.settle(new ParseError(reason));
  }

  /** Sends the waiting requests, one at a time, the units taking turns. */
  async sendWaiting(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      for (let taken = this.take(); taken; taken = this.take()) {
        const { unit, waiting } = taken;
        await this.send(unit, waiting.request).then(waiting.resolve, waiting.reject);
      }
    } finally {
      this.sending = false;
    }
  }

  /** The first waiting request of the next unit in turn that has one. */
  private take(): { unit: ModbusUnit; waiting: Waiting } | undefined {
    for (let step = 0; step < this.units.length; step++) {
      const index = (this.turn + step) % this.units.length;
      const waiting = this.units[index].waiting.shift();
      if (!waiting) continue;
      this.turn = (index + 1) % this.units.length;
      return { unit: this.units[index], waiting };
    }
    return undefined;
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

  private async send(unit: ModbusUnit, request: ModbusRequest): Promise<Buffer> {
    await this.lineQuiet();
    this.lastUnit = unit;
    const timeoutMs = Math.ceil(unit.responseTimeoutMs + (request.frame.length + request.responseLength) * this.charMs);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.quietUntil = performance.now() + unit.responseTimeoutMs;
        current.settle(timedOut(current, timeoutMs));
      }, timeoutMs);
      const current: NonNullable<ModbusMaster['current']> = {
        unit, request, written: false, received: Buffer.alloc(0), badCrc: false, echoLeft: this.localEcho ? request.frame.length : 0,
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

/**
 * What was received, less the part of the request's own echo it holds. Bytes that differ from the
 * echo before its end say there was none (an adapter that did not echo this time): the bytes taken
 * for it so far were the answer's start (a unit's answer begins with the request's unit id and
 * function code), so all of it goes to the answer search.
 */
function withoutEcho(current: NonNullable<ModbusMaster['current']>, received: Buffer): Buffer {
  if (current.echoLeft === 0) return received;
  const frame = current.request.frame;
  const taken = frame.length - current.echoLeft;
  let matched = 0;
  while (matched < received.length && matched < current.echoLeft && received[matched] === frame[taken + matched]) matched++;
  if (matched < received.length && matched < current.echoLeft) {
    current.echoLeft = 0;
    return Buffer.concat([frame.subarray(0, taken), received]);
  }
  current.echoLeft -= matched;
  return received.subarray(matched);
}

/** Why a request got no answer: still not on the line, a frame that failed its CRC, or nothing (naming another unit that answered instead). */
function timedOut(current: NonNullable<ModbusMaster['current']>, timeoutMs: number): ParseError {
  if (!current.written) return new ParseError(PORT_BUSY);
  if (current.badCrc) return new ParseError('Modbus CRC mismatch');
  const other = otherUnitAnswering(current.request, current.received);
  return new NoAnswer(`no Modbus answer within ${timeoutMs} ms${other !== undefined ? ` (an answer from unit ${other} discarded)` : ''}`);
}

/** One character's time on the line: a start bit, the data bits, a parity bit if any, the stop bits. */
export function characterMs(port: { baudRate: number; dataBits: number; parity: string; stopBits: number }): number {
  return ((1 + port.dataBits + (port.parity === 'none' ? 0 : 1) + port.stopBits) * 1000) / port.baudRate;
}
