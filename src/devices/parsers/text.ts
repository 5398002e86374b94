import { quoteInexactIntegers } from '../../json-integers.js';
import type { ParserSpec } from '../profile.js';
import { ParseError, typedValue, type Reading, type ReadingValue } from './reading.js';

type Spec<T extends ParserSpec['type']> = Extract<ParserSpec, { type: T }>;

/**
 * JSON lines: each frame one JSON object; nested objects and arrays are kept as their JSON text,
 * integers a double would round (64-bit counters, serial numbers) as the text of their digits.
 */
export function parseJsonLine(frame: string): Reading {
  let value: unknown;
  try {
    value = JSON.parse(quoteInexactIntegers(frame));
  } catch {
    throw new ParseError('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ParseError('not a JSON object');
  // made with fromEntries, which defines each field: a device's "__proto__" is a field like any other
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, typeof field === 'object' && field !== null ? nestedText(field) : field as ReadingValue]));
}

/** A nested value as its JSON text. JSON.parse takes any depth, JSON.stringify recurses: a line of thousands of "[" (maxFrameBytes allows 64 KiB) overflows its stack. */
function nestedText(field: object): string {
  try {
    return JSON.stringify(field);
  } catch {
    throw new ParseError('JSON nested too deeply');
  }
}

/** CSV with named columns: exactly as many fields as columns (no quoting: sensors print plain values). */
export function csvParser(spec: Spec<'csv'>): (frame: string) => Reading {
  return (frame) => {
    const fields = frame.replace(/\r$/, '').split(spec.separator);
    if (fields.length !== spec.columns.length) throw new ParseError(`expected ${spec.columns.length} fields, got ${fields.length}`);
    return Object.fromEntries(spec.columns.map((column, index) => [column, typedValue(fields[index])]));
  };
}

/** A regular expression whose named groups become the reading; a frame that does not match is a parse error. */
export function regexParser(spec: Spec<'regex'>): (frame: string) => Reading {
  const pattern = new RegExp(spec.pattern);
  return (frame) => {
    const groups = pattern.exec(frame)?.groups;
    if (!groups) throw new ParseError('no match');
    return Object.fromEntries(Object.entries(groups).map(([key, value]) => [key, value === undefined ? null : typedValue(value)]));
  };
}
