import type { ModbusRegister } from '../profile.js';
import { ParseError, type Reading } from './reading.js';

// Modbus RTU (Modbus over Serial Line V1.02): ADU = unit id, PDU (function code + data), CRC-16/MODBUS
// sent low byte first. Reads return byte count + 2 bytes per register; an exception sets bit 7 of the
// function code and carries one exception code.
export const READ_HOLDING = 0x03;
export const READ_INPUT = 0x04;
export const WRITE_SINGLE = 0x06;
export const WRITE_MULTIPLE = 0x10;
/** Modbus Application Protocol: at most 125 registers per read. */
const MAX_READ_REGISTERS = 125;

const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function', 2: 'illegal data address', 3: 'illegal data value', 4: 'server device failure',
  5: 'acknowledge', 6: 'server device busy', 8: 'memory parity error', 10: 'gateway path unavailable', 11: 'gateway target device failed to respond',
};

/** Modbus Application Protocol §7: ILLEGAL DATA ADDRESS, e.g. a read that spans an address the device does not have. */
export const ILLEGAL_DATA_ADDRESS = 2;

/** An exception answer: the slave understood the request and refused it. */
export class ModbusException extends ParseError {
  constructor(readonly code: number) {
    super(`Modbus exception ${code} (${EXCEPTIONS[code] ?? 'unknown'})`);
  }
}

/** CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** Appends the CRC, low byte first. */
export function withCrc(frame: number[]): Buffer {
  const crc = crc16(Uint8Array.from(frame));
  return Buffer.from([...frame, crc & 0xff, crc >>> 8]);
}

/** One request and how to tell its complete answer. */
export interface ModbusRequest {
  frame: Buffer;
  unitId: number;
  functionCode: number;
  /** Length of a normal answer (an exception answer is always 5 bytes). */
  responseLength: number;
}

export function readRequest(unitId: number, functionCode: number, address: number, count: number): ModbusRequest {
  return {
    frame: withCrc([unitId, functionCode, address >> 8, address & 0xff, count >> 8, count & 0xff]),
    unitId, functionCode, responseLength: 5 + 2 * count,
  };
}

/** 06 for one register, 16 for two (32-bit values); both answers echo address and value/count in 8 bytes. */
export function writeRequest(unitId: number, address: number, words: number[]): ModbusRequest {
  if (words.length === 1) {
    return { frame: withCrc([unitId, WRITE_SINGLE, address >> 8, address & 0xff, words[0] >> 8, words[0] & 0xff]), unitId, functionCode: WRITE_SINGLE, responseLength: 8 };
  }
  const data = words.flatMap((word) => [word >> 8, word & 0xff]);
  return {
    frame: withCrc([unitId, WRITE_MULTIPLE, address >> 8, address & 0xff, 0, words.length, data.length, ...data]),
    unitId, functionCode: WRITE_MULTIPLE, responseLength: 8,
  };
}

/**
 * How many bytes of `buffer` make the answer to `request`, once they are all there (0: wait for
 * more). A read's answer says its length in its byte count: one of another count than asked for
 * (a device that answers fewer registers) is still found, and refused for its count.
 */
function answerLength(request: ModbusRequest, buffer: Buffer): number {
  if (buffer.length >= 2 && buffer[1] === (request.functionCode | 0x80)) return buffer.length >= 5 ? 5 : 0;
  const isRead = request.functionCode === READ_HOLDING || request.functionCode === READ_INPUT;
  const length = !isRead ? request.responseLength : buffer.length >= 3 ? 5 + buffer[2] : Infinity;
  return buffer.length >= length ? length : 0;
}

const crcMatches = (frame: Buffer) => frame.readUInt16LE(frame.length - 2) === crc16(frame.subarray(0, frame.length - 2));

/**
 * The answer to `request` among the bytes received since it was sent: the first complete frame with
 * the request's unit id and function (or its exception) and a good CRC, wherever it starts. A
 * stray byte before it (an RS-485 transceiver turning the line around, or the tail of an answer
 * that came too late) does not spoil it; Modbus over Serial Line §2.5.1.1 has the receiver
 * discard a frame whose CRC fails. `badCrc`: some complete candidate failed its CRC.
 */
export function findAnswer(request: ModbusRequest, buffer: Buffer): { answer?: Buffer; badCrc: boolean } {
  let badCrc = false;
  for (let start = buffer.indexOf(request.unitId); start >= 0; start = buffer.indexOf(request.unitId, start + 1)) {
    const candidate = buffer.subarray(start);
    if (candidate.length >= 2 && candidate[1] !== request.functionCode && candidate[1] !== (request.functionCode | 0x80)) continue;
    const length = answerLength(request, candidate);
    if (length === 0) continue;
    if (crcMatches(candidate.subarray(0, length))) return { answer: candidate.subarray(0, length), badCrc };
    badCrc = true;
  }
  return { badCrc };
}

/**
 * The unit id of a complete answer to the request's function, with a good CRC, from another unit
 * than the one asked: on a multi-drop line, a unit configured with another's address (or a late
 * answer of another unit) is no answer to this request, and is worth naming when none came.
 */
export function otherUnitAnswering(request: ModbusRequest, buffer: Buffer): number | undefined {
  for (let start = 0; start + 4 < buffer.length; start++) {
    const candidate = buffer.subarray(start);
    if (candidate[0] === request.unitId || (candidate[1] !== request.functionCode && candidate[1] !== (request.functionCode | 0x80))) continue;
    const length = answerLength(request, candidate);
    if (length > 0 && crcMatches(candidate.subarray(0, length))) return candidate[0];
  }
  return undefined;
}

/** The data of an answer `findAnswer` found: the read's data bytes (empty for writes); a ParseError for an exception or a malformed answer. */
export function answerData(request: ModbusRequest, answer: Buffer): Buffer {
  if (answer[1] === (request.functionCode | 0x80)) throw new ModbusException(answer[2]);
  if (request.functionCode === READ_HOLDING || request.functionCode === READ_INPUT) {
    if (answer[2] !== request.responseLength - 5) throw new ParseError(`Modbus byte count ${answer[2]}, expected ${request.responseLength - 5}`);
    return answer.subarray(3, answer.length - 2);
  }
  if (!answer.subarray(2, 6).equals(request.frame.subarray(2, 6))) throw new ParseError('Modbus write answer does not echo the request');
  return Buffer.alloc(0);
}

const width = (register: ModbusRegister) => (register.type === 'uint16' || register.type === 'int16' ? 1 : 2);

/** A read of consecutive registers of one table, and the registers it carries. */
export interface PollBlock {
  functionCode: number;
  address: number;
  count: number;
  registers: ModbusRegister[];
}

/** Groups the register map into as few reads as possible (≤ 125 registers each, gaps included). */
export function pollPlan(registers: ModbusRegister[]): PollBlock[] {
  const blocks: PollBlock[] = [];
  for (const table of ['holding', 'input'] as const) {
    const sorted = registers.filter((register) => register.table === table).sort((a, b) => a.address - b.address);
    let block: PollBlock | undefined;
    for (const register of sorted) {
      const end = register.address + width(register);
      if (block && end - block.address <= MAX_READ_REGISTERS) {
        block.count = Math.max(block.count, end - block.address);
        block.registers.push(register);
      } else {
        block = { functionCode: table === 'holding' ? READ_HOLDING : READ_INPUT, address: register.address, count: width(register), registers: [register] };
        blocks.push(block);
      }
    }
  }
  return blocks;
}

/** A block cut where its registers leave a gap: the reads for a device that refuses to read addresses it does not have. */
export function withoutGaps(block: PollBlock): PollBlock[] {
  const runs: PollBlock[] = [];
  let run: PollBlock | undefined;
  for (const register of block.registers) {
    const end = register.address + width(register);
    if (run && register.address <= run.address + run.count) {
      run.count = Math.max(run.count, end - run.address);
      run.registers.push(register);
    } else {
      run = { functionCode: block.functionCode, address: register.address, count: width(register), registers: [register] };
      runs.push(run);
    }
  }
  return runs;
}

/** The registers of a block, from the data bytes of its answer, scaled. */
export function decodeBlock(block: PollBlock, data: Buffer): Reading {
  const reading: Reading = {};
  for (const register of block.registers) {
    const offset = 2 * (register.address - block.address);
    const bytes = Buffer.from(data.subarray(offset, offset + 2 * width(register)));
    if (width(register) === 2 && register.wordOrder === 'little') bytes.swap32().swap16();
    const raw = register.type === 'uint16' ? bytes.readUInt16BE(0)
      : register.type === 'int16' ? bytes.readInt16BE(0)
      : register.type === 'uint32' ? bytes.readUInt32BE(0)
      : register.type === 'int32' ? bytes.readInt32BE(0)
      : bytes.readFloatBE(0);
    // A float32 holding NaN or ±infinity (many meters' word for "no sensor", 0xFFFFFFFF is a NaN) has
    // no JSON number: it reads as null, no value, as an empty CSV field does.
    reading[register.name] = Number.isFinite(raw) ? scaled(raw, register.scale) : null;
  }
  return reading;
}

/** The words to write for a reading value (value ÷ scale, rounded for integer types); a ParseError when out of range. */
export function encodeValue(register: ModbusRegister, value: unknown): number[] {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ParseError(`${register.name}: expected a number`);
  const raw = value / register.scale;
  const bytes = Buffer.alloc(4);
  const limits = { uint16: [0, 0xffff], int16: [-0x8000, 0x7fff], uint32: [0, 0xffffffff], int32: [-0x80000000, 0x7fffffff] } as const;
  if (register.type === 'float32') {
    bytes.writeFloatBE(raw);
    // beyond float32's range (±3.4e38) the value would be written as ±Infinity
    if (!Number.isFinite(bytes.readFloatBE(0))) throw new ParseError(`${register.name}: ${value} is out of range for float32`);
  } else {
    const integer = Math.round(raw);
    const [min, max] = limits[register.type];
    if (integer < min || integer > max) throw new ParseError(`${register.name}: ${value} is out of range for ${register.type}`);
    if (register.type === 'uint16') bytes.writeUInt16BE(integer);
    else if (register.type === 'int16') bytes.writeInt16BE(integer);
    else if (register.type === 'uint32') bytes.writeUInt32BE(integer);
    else bytes.writeInt32BE(integer);
  }
  if (width(register) === 1) return [bytes.readUInt16BE(0)];
  if (register.wordOrder === 'little') return [bytes.readUInt16BE(2), bytes.readUInt16BE(0)];
  return [bytes.readUInt16BE(0), bytes.readUInt16BE(2)];
}

/** Scaling in decimal: 2301 × 0.1 is 230.1, not 230.10000000000002. */
function scaled(raw: number, scale: number): number {
  const value = raw * scale;
  return Number.isInteger(value) ? value : Number(value.toPrecision(12));
}
