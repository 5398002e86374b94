#!/usr/bin/env node
import { Command } from 'commander';
import { CliError } from '../cli/admin-client.js';
import { cliContext } from '../cli/context.js';
import { registerStatus } from '../cli/commands/status.js';
import { registerThings } from '../cli/commands/things.js';
import { registerClients } from '../cli/commands/clients.js';
import { registerShadow } from '../cli/commands/shadow.js';
import { registerFunctions } from '../cli/commands/functions.js';
import { registerObjects } from '../cli/commands/objects.js';
import { registerS3Keys } from '../cli/commands/s3-keys.js';
import { registerSync } from '../cli/commands/sync.js';
import { registerDevices } from '../cli/commands/devices.js';
import { VERSION } from '../daemon.js';

const program = new Command('outpost')
  .description('Admin CLI for outpostd, the Outpost IoT edge gateway daemon')
  .version(VERSION)
  .option('--socket <path>', 'admin socket (default: $OUTPOST_SOCKET, /run/outpost/admin.sock when present, else ./data/admin.sock)')
  .option('--url <url>', 'admin API over TCP instead of the socket (admin.tcp in the daemon config; or $OUTPOST_URL)')
  .option('--token <token>', 'bearer token for --url (or $OUTPOST_TOKEN)')
  .option('--json', 'print JSON for scripts instead of tables')
  .showHelpAfterError()
  .configureHelp({ showGlobalOptions: true });

registerStatus(program, cliContext);
registerThings(program, cliContext);
registerClients(program, cliContext);
registerShadow(program, cliContext);
registerFunctions(program, cliContext);
registerObjects(program, cliContext);
registerS3Keys(program, cliContext);
registerSync(program, cliContext);
registerDevices(program, cliContext);

try {
  await program.parseAsync();
} catch (error) {
  const message = error instanceof CliError || isSystemError(error) ? (error as Error).message : `unexpected error: ${(error as Error).stack ?? error}`;
  process.stderr.write(`outpost: ${message}\n`);
  process.exit(1);
}

/** A file the command was given that cannot be read or written: "ENOENT: no such file or directory, open 'x'". */
function isSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
