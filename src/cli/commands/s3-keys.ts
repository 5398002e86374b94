import type { Command } from 'commander';
import { UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../table.js';

interface AccessKey {
  accessKeyId: string;
  secretAccessKey?: string;
  grants: Array<{ bucket: string; permission: 'read' | 'read-write' }>;
  description?: string;
  thing?: string;
  service?: string;
  createdAt: number;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const grantsText = (key: AccessKey) => key.service ? '* read-write, IoT data plane'
  : [...key.grants.map((g) => `${g.bucket} ${g.permission}`), ...(key.thing ? [`IoT data plane as thing ${key.thing}`] : [])].join(', ');

/** `outpost s3 keys …`: access keys of the S3 API (and the IoT data plane on the HTTP port). */
export function registerS3Keys(program: Command, cli: CliContext): void {
  const keys = program.command('s3').description('the S3-compatible API').command('keys')
    .description('access keys (AWS SigV4 credentials) of the S3 API and the IoT data plane HTTP API');

  keys.command('add')
    .description('create an access key; the secret is printed once. BUCKET may be "*" for every bucket')
    .option('--read <bucket>', 'allow reading BUCKET (repeatable)', collect)
    .option('--read-write <bucket>', 'allow reading and writing the objects of BUCKET (repeatable); "*" also allows deleting buckets and setting their notifications, lifecycle, CORS and tags', collect)
    .option('--thing <name>', "also sign IoT data plane requests (shadows, publish on the HTTP port) as this registered thing, under its broker policy")
    .option('--description <text>', 'what the key is for')
    .addHelpText('after', '\nExamples:\n  outpost s3 keys add --read-write camera-uploads --read "*" --description "yard camera"\n  outpost s3 keys add --thing pump-7    # the AWS SDK\'s IoT Data Plane client, as pump-7\n')
    .action(async (options: { read?: string[]; readWrite?: string[]; thing?: string; description?: string }, command: Command) => {
      const grants = [
        ...(options.readWrite ?? []).map((bucket) => ({ bucket, permission: 'read-write' })),
        ...(options.read ?? []).map((bucket) => ({ bucket, permission: 'read' })),
      ];
      if (grants.length === 0 && !options.thing) throw new UsageError('give at least one --read BUCKET, --read-write BUCKET ("*" for every bucket) or --thing NAME');
      const key = await cli.call<AccessKey>(command, 'POST', '/v1/s3/keys', { grants: options.thing && grants.length === 0 ? undefined : grants, thing: options.thing, description: options.description });
      cli.print(command, key, () => [
        `access key id:      ${key.accessKeyId}`,
        `secret access key:  ${key.secretAccessKey}`,
        `grants:             ${grantsText(key)}`,
        '(the secret is not shown again)',
      ].join('\n'));
    });

  keys.command('ls')
    .description('list access keys (without secrets)')
    .action(async (_options, command: Command) => {
      const body = await cli.call<{ keys: AccessKey[] }>(command, 'GET', '/v1/s3/keys');
      cli.print(command, body, () => formatTable(['ACCESS KEY ID', 'GRANTS', 'DESCRIPTION', 'CREATED'],
        body.keys.map((k) => [k.accessKeyId, grantsText(k), k.description ?? '-', new Date(k.createdAt).toISOString()])));
    });

  keys.command('rm <accessKeyId>')
    .description('delete an access key; requests signed with it are refused at once')
    .action(async (accessKeyId: string, _options, command: Command) => {
      const body = await cli.call(command, 'DELETE', `/v1/s3/keys/${encodeURIComponent(accessKeyId)}`);
      cli.print(command, body, () => `deleted access key ${accessKeyId}`);
    });
}
