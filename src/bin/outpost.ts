#!/usr/bin/env node
import { Command, Option } from 'commander';
import { CliError, UsageError } from '../cli/admin-client.js';
import { cliContext } from '../cli/context.js';
import { nonEmpty, refuseEmptyArguments, urlOption } from '../cli/options.js';
import { registerStatus } from '../cli/commands/status.js';
import { registerThings } from '../cli/commands/things.js';
import { registerClients } from '../cli/commands/clients.js';
import { registerShadow } from '../cli/commands/shadow.js';
import { registerFunctions } from '../cli/commands/functions.js';
import { registerObjects } from '../cli/commands/objects.js';
import { registerS3Keys } from '../cli/commands/s3-keys.js';
import { registerSync } from '../cli/commands/sync.js';
import { registerDevices } from '../cli/commands/devices.js';
import { VERSION } from '../version.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
// The reader of stdout went away (`outpost objects get B/K - | head -c 10`): end quietly with
// 128 + SIGPIPE, the status cat, git and the other Unix tools end with there (SIGPIPE kills them;
// Node ignores it), so a `set -o pipefail` script sees outpost as it sees them. The aws CLI has no
// settled answer (it prints "[Errno 32] Broken pipe" and exits 255 or 120; its pending fix: 141).
const EXIT_BROKEN_PIPE = 141;

// a hint, not the whole help: the error stays in sight
const USAGE_HINT = '(add --help for usage)';

const program = new Command('outpost')
  .description('Admin CLI for outpostd, the Outpost IoT edge gateway daemon')
  .version(VERSION)
  .addOption(new Option('--socket <path>', 'admin socket (default, unless --url or $OUTPOST_URL: $OUTPOST_SOCKET, /run/outpost/admin.sock when present, else ./data/admin.sock)')
    .argParser(nonEmpty))
  .addOption(new Option('--url <url>', 'admin API over TCP instead of the socket: http://HOST:PORT (admin.tcp in the daemon config; or $OUTPOST_URL)')
    .argParser(urlOption).conflicts('socket'))
  .option('--token <token>', 'bearer token for --url (or $OUTPOST_TOKEN)')
  .option('--json', 'print JSON for scripts instead of tables')
  .showHelpAfterError(USAGE_HINT)
  .configureHelp({ showGlobalOptions: true })
  // set before the subcommands are added: they inherit it
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE))
  .addHelpText('after', `
Exit status:
  0    done
  ${EXIT_FAILURE}    refused by the daemon, daemon unreachable, function or transfer failed,
       dead letters not retried or replayed, profiles invalid (devices check)
  ${EXIT_USAGE}    wrong command line: unknown command or option, missing, empty or invalid
       argument
  ${EXIT_BROKEN_PIPE}  the reader of the output went away (e.g. \`outpost objects get B/K - | head\`)`);

registerStatus(program, cliContext);
registerThings(program, cliContext);
registerClients(program, cliContext);
registerShadow(program, cliContext);
registerFunctions(program, cliContext);
registerObjects(program, cliContext);
registerS3Keys(program, cliContext);
registerSync(program, cliContext);
registerDevices(program, cliContext);
refuseEmptyArguments(program);

process.stdout.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? process.exit(EXIT_BROKEN_PIPE) : fail(error)));

try {
  await program.parseAsync();
} catch (error) {
  fail(error);
}

function fail(error: unknown): never {
  const message = error instanceof CliError || isSystemError(error) ? (error as Error).message : `unexpected error: ${(error as Error).stack ?? error}`;
  // a wrong command line the command found itself gets the hint commander gives those it finds
  process.stderr.write(`outpost: ${message}\n${error instanceof UsageError ? `${USAGE_HINT}\n` : ''}`);
  process.exit(error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE);
}

/** A file the command was given that cannot be read or written: "ENOENT: no such file or directory, open 'x'". */
function isSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
