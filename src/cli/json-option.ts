import { UsageError } from './admin-client.js';
import { inexactIntegers } from '../json-integers.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The JSON an option gives (`--desired`, `--payload`), else a usage error naming the option. An
 * integer beyond ±(2^53-1) is refused here: parsed, it would reach the daemon already rounded.
 */
export function parseJsonOption(option: string, text: string): Json {
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    throw new UsageError(`${option} is not valid JSON: ${text.slice(0, 200)}`);
  }
  const [inexact] = inexactIntegers(text);
  if (inexact !== undefined) throw new UsageError(`${option}: integer ${inexact} is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string`);
  return value;
}
