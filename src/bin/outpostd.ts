#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, loadConfig, printableConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { Daemon, VERSION } from '../daemon.js';

const STOP_DEADLINE_MS = 5000;

const program = new Command('outpostd')
  .description('Outpost IoT edge gateway daemon: MQTT broker, shadows, functions, objects and cloud sync')
  .version(VERSION)
  .option('-c, --config <file>', 'YAML configuration file (default: /etc/outpost/outpost.yaml when present, else embedded defaults)')
  .option('-d, --data-dir <dir>', 'data directory (default: config "dataDir", $STATE_DIRECTORY, then /var/lib/outpost)')
  .option('--print-config', 'print the effective configuration and exit')
  .showHelpAfterError();

program.parse();
const options = program.opts<{ config?: string; dataDir?: string; printConfig?: boolean }>();

let loaded;
try {
  loaded = loadConfig({ configPath: options.config, dataDir: options.dataDir });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`outpostd: ${error.message}\n`);
  process.exit(2);
}

if (options.printConfig) {
  process.stdout.write(printableConfig(loaded));
  process.exit(0);
}

const log = createLogger(loaded.config.log);
const daemon = new Daemon(loaded, log);

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
  daemon.stop().then(() => process.exit(0), (error) => {
    log.error({ err: error }, 'error while stopping');
    process.exit(1);
  });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception: exiting');
  process.exit(70);
});

try {
  await daemon.start();
} catch (error) {
  log.fatal({ err: error }, `failed to start: ${(error as Error).message}`);
  await daemon.stop().catch(() => undefined);
  process.exit(1);
}
