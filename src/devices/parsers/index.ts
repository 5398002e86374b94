import type { ParserSpec } from '../profile.js';
import { parseNmea } from './nmea.js';
import type { Reading } from './reading.js';
import { csvParser, parseJsonLine, regexParser } from './text.js';

/** A frame-level text parser: a reading, undefined for frames that are valid but not wanted, or a ParseError. */
export type TextParser = (frame: string) => Reading | undefined;

/** The parser of a text profile (Modbus answers are decoded by the register map instead). */
export function textParser(spec: Exclude<ParserSpec, { type: 'modbus' }>): TextParser {
  switch (spec.type) {
    case 'json': return parseJsonLine;
    case 'csv': return csvParser(spec);
    case 'regex': return regexParser(spec);
    case 'nmea': return (frame) => parseNmea(frame, spec.sentences);
  }
}
