import { createRequire } from 'node:module';

/** The package's version, as outpostd, the CLI and the broker's `$SYS/broker/version` say it. */
export const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
