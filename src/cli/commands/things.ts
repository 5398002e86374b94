import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CliError, UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../table.js';
import { nonEmpty } from '../options.js';

interface Thing {
  name: string;
  hasPassword: boolean;
  certFingerprint: string | null;
  policy: { clientIds: string[]; publish: string[]; subscribe: string[] } | null;
  createdAt: number;
}

// an empty filter or pattern names nothing: a wrong command line, as an empty argument is
const collect = (value: string, previous: string[] = []) => [...previous, nonEmpty(value)];
const utf8 = new TextDecoder('utf-8', { fatal: true });

async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin reads the password from a pipe, e.g. printf %s "$PASS" | outpost things add NAME --password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let text: string;
  try {
    text = utf8.decode(Buffer.concat(chunks));
  } catch {
    // decoded leniently, the byte would be registered as U+FFFD, which the device never sends
    throw new CliError('the password on standard input is not valid UTF-8');
  }
  const password = text.replace(/\r?\n$/, '');
  if (!password) throw new CliError('no password on standard input');
  return password;
}

function credentialsOf(thing: Thing): string {
  return [thing.hasPassword ? 'password' : '', thing.certFingerprint ? 'certificate' : ''].filter(Boolean).join('+') || '-';
}

export function registerThings(program: Command, cli: CliContext): void {
  const things = program.command('things').description('the registry of things (devices) that may connect, with credentials and policies');

  things.command('ls')
    .description('list things')
    .action(async (_options, command: Command) => {
      const body = await cli.call<{ things: Thing[] }>(command, 'GET', '/v1/things');
      cli.print(command, body, () => formatTable(['NAME', 'CREDENTIALS', 'POLICY', 'CREATED'],
        body.things.map((t) => [t.name, credentialsOf(t), t.policy ? 'own' : 'default', new Date(t.createdAt).toISOString()])));
    });

  things.command('show <name>')
    .description("show a thing, its credentials and its policy")
    .action(async (name: string, _options, command: Command) => {
      const thing = await cli.call<Thing>(command, 'GET', `/v1/things/${encodeURIComponent(name)}`);
      cli.print(command, thing, () => [
        `name:         ${thing.name}`,
        `credentials:  ${credentialsOf(thing)}`,
        ...(thing.certFingerprint ? [`fingerprint:  ${thing.certFingerprint}`] : []),
        `policy:       ${thing.policy ? 'own' : 'default (from the configuration)'}`,
        ...(thing.policy ? [`  client ids: ${thing.policy.clientIds.join(' ')}`, `  publish:    ${thing.policy.publish.join(' ')}`, `  subscribe:  ${thing.policy.subscribe.join(' ')}`] : []),
      ].join('\n') + '\n');
    });

  things.command('add <name>')
    .description('register a thing with a password (--password-stdin) and/or a client certificate (--cert, --fingerprint)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--cert <file>', "the thing's client certificate (PEM); its SHA-256 fingerprint identifies the thing over TLS")
    .addOption(new Option('--fingerprint <sha256>', 'register a client certificate by its SHA-256 fingerprint instead of the file').conflicts('cert'))
    .action(async (name: string, options: { passwordStdin?: boolean; cert?: string; fingerprint?: string }, command: Command) => {
      if (!options.passwordStdin && !options.cert && !options.fingerprint) throw new UsageError('give --password-stdin, --cert FILE or --fingerprint SHA256');
      const password = options.passwordStdin ? await readPasswordFromStdin() : undefined;
      let certificatePem: string | undefined;
      if (options.cert) {
        try {
          certificatePem = readFileSync(options.cert, 'utf8');
        } catch (error) {
          throw new CliError(`cannot read ${options.cert}: ${(error as Error).message}`);
        }
      }
      const thing = await cli.call<Thing>(command, 'POST', '/v1/things', { name, password, certificatePem, fingerprint: options.fingerprint });
      cli.print(command, thing, () => `added thing ${thing.name} (${credentialsOf(thing)})\n`);
    });

  things.command('passwd <name>')
    .description("set a thing's password (read from stdin)")
    .requiredOption('--password-stdin', 'read the password from standard input')
    .action(async (name: string, _options, command: Command) => {
      const password = await readPasswordFromStdin();
      const body = await cli.call(command, 'PUT', `/v1/things/${encodeURIComponent(name)}/password`, { password });
      cli.print(command, body, () => `password of ${name} updated\n`);
    });

  things.command('rm <name>')
    .description('remove a thing: its connections are closed, and its persistent sessions and the access keys bound to it (s3 keys add --thing) deleted')
    .action(async (name: string, _options, command: Command) => {
      const body = await cli.call(command, 'DELETE', `/v1/things/${encodeURIComponent(name)}`) as { accessKeysDeleted?: string[]; persistentSessionsDeleted?: string[] };
      const keys = body.accessKeysDeleted ?? [];
      const sessions = body.persistentSessionsDeleted ?? [];
      cli.print(command, body, () => `removed thing ${name}${sessions.length ? `, its persistent sessions ${sessions.join(', ')}` : ''}${keys.length ? `, and its access keys ${keys.join(', ')}` : ''}\n`);
    });

  things.command('policy <name>')
    .description("set a thing's policy; lists not given keep their current values. ${thing} and ${clientid} are substituted")
    .option('--publish <filter>', 'topic filter the thing may publish to (repeatable)', collect)
    .option('--subscribe <filter>', 'topic filter the thing may subscribe to (repeatable)', collect)
    .option('--client-id <pattern>', 'client id the thing may connect with; a trailing * matches any suffix (repeatable)', collect)
    // with a list as well, the list would be dropped along with the own policy
    .addOption(new Option('--default', 'drop the own policy and use the configured default policy').conflicts(['publish', 'subscribe', 'clientId']))
    .action(async (name: string, options: { publish?: string[]; subscribe?: string[]; clientId?: string[]; default?: boolean }, command: Command) => {
      const changes = { publish: options.publish, subscribe: options.subscribe, clientIds: options.clientId };
      if (!options.default && Object.values(changes).every((list) => list === undefined)) {
        throw new UsageError('give --publish, --subscribe, --client-id or --default');
      }
      const thing = await cli.call<Thing>(command, 'PUT', `/v1/things/${encodeURIComponent(name)}/policy`, { policy: options.default ? null : changes });
      cli.print(command, thing, () => thing.policy
        ? `policy of ${name}:\n  client ids: ${thing.policy.clientIds.join(' ')}\n  publish:    ${thing.policy.publish.join(' ')}\n  subscribe:  ${thing.policy.subscribe.join(' ')}\n`
        : `${name} uses the default policy\n`);
    });
}
