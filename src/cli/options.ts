import { InvalidArgumentError } from 'commander';
import { parseAdminUrl } from './admin-client.js';

/**
 * Parsers of option values for commander: a bad value is a usage error naming the flag
 * ("option '-n, --lines <count>' argument 'abc' is invalid. expected an integer 1-10000"),
 * found before anything is sent to the daemon.
 */
export function integerOption(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const number = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(number >= min && number <= max)) throw new InvalidArgumentError(`expected an integer ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `${min}-${max}`}`);
    return number;
  };
}

export function urlOption(value: string): URL {
  try {
    return parseAdminUrl(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
