import { ParseError, type Reading } from './reading.js';

// NMEA 0183: "$" talker+type "," fields "*" two hex digits of the XOR of every byte between "$"
// and "*"; at most 82 characters including "$" and CR LF.
const MAX_SENTENCE = 82;

export type NmeaSentence = 'GGA' | 'RMC';

/** A sentence of the selected types as a reading, undefined for other (valid) sentences; a ParseError otherwise. */
export function parseNmea(frame: string, selected: readonly NmeaSentence[]): Reading | undefined {
  const sentence = frame.replace(/\r$/, '');
  if (sentence.length > MAX_SENTENCE - 2) throw new ParseError('sentence longer than 82 characters');
  const match = /^[$!]([A-Z][A-Z0-9]{4,5}(?:,[^*$!]*)?)\*([0-9A-Fa-f]{2})$/.exec(sentence);
  if (!match) throw new ParseError('not an NMEA sentence with checksum');
  const [, body, checksum] = match;
  if (xorChecksum(body) !== parseInt(checksum, 16)) throw new ParseError('NMEA checksum mismatch');
  const fields = body.split(',');
  // The address is a two-letter talker (GP, GN, GL, …) and the type; proprietary ones (P…) are skipped.
  const type = fields[0].slice(-3);
  if (fields[0].startsWith('P') || !selected.includes(type as NmeaSentence)) return undefined;
  return type === 'GGA' ? gga(fields) : rmc(fields);
}

export function xorChecksum(body: string): number {
  let sum = 0;
  for (let index = 0; index < body.length; index++) sum ^= body.charCodeAt(index);
  return sum;
}

// GGA: time, lat, N/S, lon, E/W, quality, satellites, HDOP, altitude, M, geoid separation, M, age, station.
function gga(fields: string[]): Reading {
  if (fields.length < 15) throw new ParseError(`GGA: expected 14 fields, got ${fields.length - 1}`);
  return {
    sentence: 'GGA',
    time: utcTime(fields[1]),
    latitude: coordinate(fields[2], fields[3], 2, 'N', 'S'),
    longitude: coordinate(fields[4], fields[5], 3, 'E', 'W'),
    fixQuality: integerField(fields[6], 'fix quality'),
    satellites: integerField(fields[7], 'satellites'),
    hdop: numberField(fields[8], 'HDOP'),
    altitude: numberField(fields[9], 'altitude'),
    geoidSeparation: numberField(fields[11], 'geoid separation'),
  };
}

// RMC: time, status A/V, lat, N/S, lon, E/W, speed (knots), course, date ddmmyy, variation, E/W[, mode[, nav status]].
function rmc(fields: string[]): Reading {
  if (fields.length < 12) throw new ParseError(`RMC: expected at least 11 fields, got ${fields.length - 1}`);
  if (fields[2] !== 'A' && fields[2] !== 'V') throw new ParseError('RMC: expected status A or V');
  return {
    sentence: 'RMC',
    time: utcTime(fields[1]),
    valid: fields[2] === 'A',
    latitude: coordinate(fields[3], fields[4], 2, 'N', 'S'),
    longitude: coordinate(fields[5], fields[6], 3, 'E', 'W'),
    speedKnots: numberField(fields[7], 'speed'),
    course: numberField(fields[8], 'course'),
    date: date(fields[9]),
  };
}

/** ddmm.mmmm (latitude) or dddmm.mmmm (longitude) and a hemisphere → signed decimal degrees; empty → null (no fix). */
function coordinate(value: string, hemisphere: string, degreeDigits: number, positive: string, negative: string): number | null {
  if (value === '' && hemisphere === '') return null;
  const match = new RegExp(`^(\\d{${degreeDigits}})(\\d{2}(?:\\.\\d+)?)$`).exec(value);
  if (!match || (hemisphere !== positive && hemisphere !== negative)) throw new ParseError(`bad coordinate "${value},${hemisphere}"`);
  const minutes = Number(match[2]);
  if (minutes >= 60) throw new ParseError(`bad coordinate "${value}"`);
  const degrees = Number(match[1]) + minutes / 60;
  return Number((hemisphere === negative ? -degrees : degrees).toFixed(7));
}

function utcTime(value: string): string | null {
  if (value === '') return null;
  const match = /^(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$/.exec(value);
  if (!match) throw new ParseError(`bad time "${value}"`);
  return `${match[1]}:${match[2]}:${match[3]}`;
}

/** ddmmyy → YYYY-MM-DD (NMEA years 80-99 are 1980-1999). */
function date(value: string): string | null {
  if (value === '') return null;
  const match = /^(\d{2})(\d{2})(\d{2})$/.exec(value);
  if (!match) throw new ParseError(`bad date "${value}"`);
  const year = Number(match[3]);
  return `${year >= 80 ? 1900 + year : 2000 + year}-${match[2]}-${match[1]}`;
}

function numberField(value: string, what: string): number | null {
  if (value === '') return null;
  const number = Number(value);
  if (!/^-?\d+(\.\d+)?$/.test(value)) throw new ParseError(`bad ${what} "${value}"`);
  return number;
}

function integerField(value: string, what: string): number | null {
  if (value === '') return null;
  if (!/^\d+$/.test(value)) throw new ParseError(`bad ${what} "${value}"`);
  return Number(value);
}
