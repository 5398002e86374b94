import { isInexactInteger } from '../../json-integers.js';

/** One parsed frame: flat named values, published as a JSON object and merged into `reported`. */
export type Reading = Record<string, ReadingValue>;
export type ReadingValue = string | number | boolean | null;

/** A frame that does not parse: counted as a parse error and skipped. */
export class ParseError extends Error {
  override name = 'ParseError';
}

/**
 * A decimal number stays a number in the reading, anything else stays text ("007" is a number, "" is
 * null). So does an integer a double would round (a 20-digit serial number): its digits are kept.
 */
export function typedValue(text: string): ReadingValue {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const number = Number(trimmed);
  const decimal = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) && Number.isFinite(number);
  return decimal && !isInexactInteger(trimmed) ? number : trimmed;
}
