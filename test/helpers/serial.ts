import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { expect } from 'vitest';
import { eventually } from './eventually.js';
import { outpost } from './mqtt.js';

// Real pseudo-terminal pairs from socat: outpostd opens the "dev" end as its serial port, the test
// plays the device on the "sim" end through serialport, as a sensor on a USB adapter would.

export class PtyPair {
  private socat: ChildProcess | undefined;
  private simPort: SerialPort | undefined;
  /** What outpostd wrote to the device. */
  received = Buffer.alloc(0);
  private onData: ((chunk: Buffer) => void) | undefined;

  constructor(readonly dev: string, readonly sim: string) {}

  static async create(dir: string, name: string): Promise<PtyPair> {
    const pair = new PtyPair(join(dir, `${name}-dev`), join(dir, `${name}-sim`));
    await pair.plug();
    return pair;
  }

  /**
   * Creates the pty pair (again). The device's end is opened (serialport flushes input on open)
   * before outpostd's end appears under its name, as a USB tty appears with the device already on.
   */
  async plug(): Promise<void> {
    const appearing = `${this.dev}.new`;
    this.socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${appearing}`, `pty,raw,echo=0,link=${this.sim}`], { stdio: 'ignore' });
    await eventually(() => existsSync(appearing) && existsSync(this.sim), 5000);
    this.simPort = await new Promise<SerialPort>((resolve, reject) => {
      const port = new SerialPort({ path: this.sim, baudRate: 9600 }, (error) => (error ? reject(error) : resolve(port)));
    });
    this.simPort.on('error', () => undefined);
    this.simPort.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.onData?.(chunk);
    });
    renameSync(appearing, this.dev);
  }

  /** Removes the pty pair, as pulling the USB plug removes the tty. */
  async unplug(): Promise<void> {
    const socat = this.socat!;
    this.simPort?.close(() => undefined);
    const exited = new Promise((resolve) => socat.once('exit', resolve));
    socat.kill('SIGTERM');
    await exited;
    rmSync(this.dev, { force: true });
    rmSync(this.sim, { force: true });
  }

  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.simPort!.write(data, (error) => (error ? reject(error) : this.simPort!.drain(() => resolve())));
    });
  }

  /** The device stops reading, as hung firmware does: once the ptys' and socat's buffers are full, outpostd's writes stall. */
  stopReading(): void {
    this.simPort!.pause();
  }

  resumeReading(): void {
    this.simPort!.resume();
  }

  /** Answers every chunk outpostd writes (a device's protocol). */
  respond(handler: (chunk: Buffer) => void): void {
    this.onData = handler;
  }

  async receivedText(pattern: RegExp): Promise<string> {
    return eventually(() => pattern.test(this.received.toString()) && this.received.toString(), 5000);
  }
}

// --- a Modbus RTU slave, written from the spec (not from src/), for the meter on the other end ---

function crc16(bytes: Buffer): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

export function rtu(bytes: number[]): Buffer {
  const body = Buffer.from(bytes);
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16(body));
  return Buffer.concat([body, crc]);
}

export class ModbusSlave {
  readonly holding = new Uint16Array(64);
  readonly input = new Uint16Array(64);
  readonly writes: Array<{ address: number; values: number[] }> = [];
  requests = 0;
  /** The next answer goes out with a broken CRC. */
  corruptNext = false;
  /** The next read is answered with one register less than asked for (its byte count and CRC consistent). */
  shortReadNext = false;
  /** Holding registers this meter has; a read that spans one it does not have gets exception 02. Undefined: all. */
  holdingPresent: Set<number> | undefined;
  /** Sent before every answer, as some RS-485 adapters glitch when they turn the line around. */
  noiseBeforeAnswer = Buffer.alloc(0);
  /** For each request that followed an answer: ms from sending that answer to the request's first bytes (the master's frame gap, at least). */
  readonly gapsMs: number[] = [];
  private answerSentAt: number | undefined;
  private requestStartedAt = 0;
  private buffer = Buffer.alloc(0);

  constructor(private readonly pair: PtyPair, private readonly unitId: number) {
    pair.respond((chunk) => this.onBytes(chunk));
  }

  /**
   * Requests cut from the byte stream. A frame that fails its CRC shifts the search by one byte, not
   * by its length: a stray or lost byte (a request cut short by an unplug) must not misalign every
   * later request, which a real slave's 3.5-character silence between frames would realign too.
   */
  private onBytes(chunk: Buffer): void {
    if (!this.buffer.length) this.requestStartedAt = performance.now();
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 8) {
      const functionCode = this.buffer[1];
      const length = functionCode === 0x10 ? 9 + this.buffer[6] : 8;
      if (this.buffer.length < length) return;
      const request = this.buffer.subarray(0, length);
      if (crc16(request.subarray(0, length - 2)) !== request.readUInt16LE(length - 2)) {
        this.buffer = this.buffer.subarray(1);
        continue;
      }
      this.buffer = this.buffer.subarray(length);
      if (request[0] !== this.unitId) continue;
      this.requests++;
      if (this.answerSentAt !== undefined) this.gapsMs.push(this.requestStartedAt - this.answerSentAt);
      let answer = this.answer(request);
      if (this.corruptNext) {
        answer = Buffer.from(answer);
        answer[answer.length - 1] ^= 0xff;
        this.corruptNext = false;
      }
      this.answerSentAt = performance.now();
      void this.pair.send(Buffer.concat([this.noiseBeforeAnswer, answer]));
    }
  }

  private answer(request: Buffer): Buffer {
    const [unit, functionCode] = request;
    const address = request.readUInt16BE(2);
    if (functionCode === 0x03 || functionCode === 0x04) {
      const count = request.readUInt16BE(4);
      const table = functionCode === 0x03 ? this.holding : this.input;
      if (address + count > table.length) return rtu([unit, functionCode | 0x80, 0x02]);
      const present = functionCode === 0x03 ? this.holdingPresent : undefined;
      if (present && Array.from({ length: count }, (_, index) => address + index).some((register) => !present.has(register))) {
        return rtu([unit, functionCode | 0x80, 0x02]);
      }
      const answered = this.shortReadNext ? count - 1 : count;
      this.shortReadNext = false;
      const data = [...table.subarray(address, address + answered)].flatMap((word) => [word >> 8, word & 0xff]);
      return rtu([unit, functionCode, data.length, ...data]);
    }
    // Holding registers from 50 on are read-only in this meter: writes get exception 02.
    if ((functionCode === 0x06 || functionCode === 0x10) && address >= 50) return rtu([unit, functionCode | 0x80, 0x02]);
    if (functionCode === 0x06) {
      this.holding[address] = request.readUInt16BE(4);
      this.writes.push({ address, values: [request.readUInt16BE(4)] });
      return rtu([...request.subarray(0, 6)]);
    }
    if (functionCode === 0x10) {
      const count = request.readUInt16BE(4);
      const values = Array.from({ length: count }, (_, index) => request.readUInt16BE(7 + 2 * index));
      values.forEach((value, index) => { this.holding[address + index] = value; });
      this.writes.push({ address, values });
      return rtu([...request.subarray(0, 6)]);
    }
    return rtu([unit, functionCode | 0x80, 0x01]);
  }
}

/** `outpost devices ls --json`, by device name. */
export async function listDevices(socket: string): Promise<Record<string, any>> {
  const listed = await outpost(socket, ['devices', 'ls', '--json']);
  expect(listed.code, listed.stderr).toBe(0);
  return Object.fromEntries(JSON.parse(listed.stdout).devices.map((device: any) => [device.name, device]));
}
