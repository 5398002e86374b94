// Field builders shared by every section's schema (src/*/config.ts). Schemas are made by
// functions, never kept in a module's top level: the configuration's are made to validate it at
// start and dropped after (see configSchema).
import { resolve } from 'node:path';
import { z } from 'zod/v3';

// Each field carries its own "expected …" message so a bad value reads as
// `mqtt.port: expected integer 0-65535, got "abc"` (see formatConfigError).
export const integer = (expected: string) => z.number({ invalid_type_error: expected, required_error: expected }).int({ message: expected });
export const port = (fallback: number) =>
  integer('expected integer 0-65535').min(0, { message: 'expected integer 0-65535' })
    .max(65535, { message: 'expected integer 0-65535' }).default(fallback);
/** An integer from `min` to `max`, every refusal saying `expected`. */
export const range = (expected: string, min: number, max: number) => integer(expected).min(min, { message: expected }).max(max, { message: expected });
export const text = (expected: string) => z.string({ invalid_type_error: expected, required_error: expected }).min(1, { message: expected });
export const host = (fallback: string) => text('expected a bind address (e.g. "127.0.0.1")').default(fallback);
export const bool = (fallback: boolean) => z.boolean({ invalid_type_error: 'expected true or false' }).default(fallback);
export const positiveInt = (fallback: number, what = 'positive integer') =>
  integer(`expected ${what}`).min(1, { message: `expected ${what}` }).default(fallback);
/** Node's timers hold at most 2^31-1 ms (~24.8 days): a longer one fires after 1 ms, again and again. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
/** A duration a timer waits, in seconds: 1 to what a timer holds. */
export const seconds = () => range(`expected seconds 1-${MAX_TIMER_SECONDS} (about 24 days)`, 1, MAX_TIMER_SECONDS);
/** A duration a timer waits, in milliseconds: `min` (1, or 0 where none is allowed) to what a timer holds. */
export const milliseconds = (min = 1) => range(`expected milliseconds ${min}-${MAX_TIMER_MS} (about 24 days)`, min, MAX_TIMER_MS);
/**
 * A file or directory, made absolute from the working directory at load, where the daemon would
 * open it anyway: `--print-config`, `outpost status` and the logs then say which one it is.
 */
export const path = () => text('expected a file path').transform((given) => resolve(given));
export const list = (expected: string, item: string) => z.array(z.string({ invalid_type_error: item }), { invalid_type_error: expected });
export const oneOf = <const T extends [string, ...string[]]>(values: T, expected: string) =>
  z.enum(values, { errorMap: () => ({ message: expected }) });

