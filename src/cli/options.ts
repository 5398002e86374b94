import { InvalidArgumentError, type Command } from 'commander';
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

/**
 * Gives every positional argument of `command` and its subcommands that has no parser of its own
 * one that refuses an empty value as a usage error: a name or path given empty names nothing, and
 * sent on, `shadow ls ""` listed every shadow, `dlq purge ""` named a function "", `deploy ""`
 * deployed the working directory. An argument for which "" means something has its own parser.
 */
export function refuseEmptyArguments(command: Command): void {
  for (const argument of command.registeredArguments) {
    if (argument.parseArg) continue;
    if (argument.variadic) argument.argParser((value: string, previous: string[] = []) => [...previous, nonEmpty(value)]);
    else argument.argParser(nonEmpty);
  }
  for (const subcommand of command.commands) refuseEmptyArguments(subcommand);
}

/** A value that names something (a path, a name): "" is refused. */
export function nonEmpty(value: string): string {
  if (value === '') throw new InvalidArgumentError('it cannot be empty');
  return value;
}
