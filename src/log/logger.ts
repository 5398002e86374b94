import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Config } from '../config/schema.js';

/** JSON lines on stdout for journald; readable lines when a person is watching a TTY. */
export function createLogger(config: Config['log']): Logger {
  const pretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: config.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!pretty) return pino(options, pino.destination({ fd: 1, sync: true }));
  // pino-pretty is loaded only for a TTY so a headless board never pays for it.
  const prettyStream = createRequire(import.meta.url)('pino-pretty')({ sync: true, colorize: process.stdout.isTTY === true, destination: 1 });
  return pino(options, prettyStream);
}
