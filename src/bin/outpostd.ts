#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, printableConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { Daemon } from '../daemon.js';
import { VERSION } from '../version.js';

const STOP_DEADLINE_MS = 5000;

const USAGE = `Usage: outpostd [options]

Outpost IoT edge gateway daemon: MQTT broker, shadows, functions, objects and cloud sync

Options:
  -c, --config <file>    YAML configuration file (default: $OUTPOST_CONFIG, else /etc/outpost/outpost.yaml
                         when present, else the embedded defaults: loopback only, anonymous clients allowed)
  -d, --data-dir <dir>   data directory (default: config "dataDir", $STATE_DIRECTORY, then /var/lib/outpost)
      --print-config     print the effective configuration and exit
  -V, --version          print the version and exit
  -h, --help             print this help and exit
`;

// node:util's parser rather than commander: the daemon has four flags and
// every module it loads stays resident on a 128 MB board.
let options: { config?: string; 'data-dir'?: string; 'print-config'?: boolean; version?: boolean; help?: boolean };
try {
  options = parseArgs({
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string', short: 'd' },
      'print-config': { type: 'boolean' },
      version: { type: 'boolean', short: 'V' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (error) {
  process.stderr.write(`outpostd: ${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (options.version) {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

let loaded;
try {
  loaded = loadConfig({ configPath: options.config, dataDir: options['data-dir'] });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`outpostd: ${error.message}\n`);
  process.exit(2);
}

if (options['print-config']) {
  process.stdout.write(printableConfig(loaded));
  process.exit(0);
}

const log = createLogger(loaded.config.log);
// Made in the try below: a construction that fails (another daemon holds the data directory, the
// database cannot be opened) is a failed start like any other, logged and exit code 1.
let daemon: Daemon | undefined;

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  log.info({ signal }, 'shutting down');
  setTimeout(() => {
    log.error('did not stop within 5 s: exiting');
    process.exit(1);
  }, STOP_DEADLINE_MS).unref();
  (daemon?.stop() ?? Promise.resolve()).then(() => process.exit(0), (error) => {
    log.error({ err: error }, 'error while stopping');
    process.exit(1);
  });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// As Mosquitto's: re-read what can change without a restart (TLS files); Node would exit on it.
process.on('SIGHUP', () => daemon?.reloadFiles());
process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception: exiting');
  process.exit(70);
});

try {
  daemon = new Daemon(loaded, log);
  await daemon.start();
} catch (error) {
  log.fatal({ err: error }, `failed to start: ${(error as Error).message}`);
  await daemon?.stop().catch(() => undefined);
  process.exit(1);
}
