import { Option, type Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { guessContentType } from '../../objects/content-type.js';
import { EVENT_TYPES } from '../../objects/events.js';
import type { LifecycleRule } from '../../objects/operations/lifecycle-rules.js';
import { CliError, UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { formatBytes, formatTable } from '../table.js';
import { nonEmpty } from '../options.js';

interface Bucket {
  name: string;
  createdAt: number;
  rules: number;
}

interface Rule {
  id: string;
  functionArn: string;
  events: string[];
  prefix?: string;
  suffix?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').filter(Boolean)];
// Progress is drawn for files at least this large, on a terminal only.
const PROGRESS_FROM_BYTES = 8 * 1024 * 1024;

/** outpost buckets … and outpost objects … (issue 5). */
export function registerObjects(program: Command, cli: CliContext): void {
  registerBuckets(program, cli);
  registerObjectCommands(program, cli);
}

function registerBuckets(program: Command, cli: CliContext): void {
  const buckets = program.command('buckets').description('buckets of the S3-compatible object store');

  buckets.command('ls')
    .description('list buckets')
    .action(async (_options, command: Command) => {
      const body = await cli.call<{ buckets: Bucket[] }>(command, 'GET', '/v1/buckets');
      cli.print(command, body, () => formatTable(['NAME', 'CREATED', 'RULES'],
        body.buckets.map((b) => [b.name, new Date(b.createdAt).toISOString(), b.rules])));
    });

  buckets.command('create <name>')
    .description('create a bucket (also a directory of the file share)')
    .action(async (name: string, _options, command: Command) => {
      const body = await cli.call(command, 'POST', '/v1/buckets', { name });
      cli.print(command, body, () => `created bucket ${name}`);
    });

  buckets.command('rm <name>')
    .description('delete an empty bucket')
    .action(async (name: string, _options, command: Command) => {
      const body = await cli.call(command, 'DELETE', `/v1/buckets/${encodeURIComponent(name)}`);
      cli.print(command, body, () => `deleted bucket ${name}`);
    });

  buckets.command('notify <bucket>')
    .description('run a function on object events of the bucket (adds a rule); without --function, list the rules')
    .option('--function <name>', 'function name or arn:aws:lambda:REGION:ACCOUNT:function:NAME', nonEmpty)
    .option('--events <events>', `comma-separated, repeatable: ${EVENT_TYPES.join(', ')} (default s3:ObjectCreated:*)`, collect)
    .option('--prefix <prefix>', 'only keys starting with this')
    .option('--suffix <suffix>', 'only keys ending with this')
    .option('--id <id>', 'rule id (the event record\'s configurationId); a rule with the same id is replaced', nonEmpty)
    // with a rule as well, the rule would be dropped along with every other
    .addOption(new Option('--clear', 'remove every rule of the bucket').conflicts(['function', 'events', 'prefix', 'suffix', 'id']))
    .addHelpText('after', '\nExample:\n  outpost buckets notify camera-uploads --function MakeThumbnail --events s3:ObjectCreated:* --suffix .jpg\n')
    .action(async (bucket: string, options: { function?: string; events?: string[]; prefix?: string; suffix?: string; id?: string; clear?: boolean }, command: Command) => {
      const path = `/v1/buckets/${encodeURIComponent(bucket)}/notification`;
      let body: { rules: Rule[] };
      // given, an option counts even empty: `--function ""` is refused, not taken for no --function (a listing)
      if (options.clear) body = await cli.call(command, 'POST', path, { clear: true });
      else if (options.function !== undefined) body = await cli.call(command, 'POST', path, { function: options.function, events: options.events, prefix: options.prefix, suffix: options.suffix, id: options.id });
      else if ([options.events, options.prefix, options.suffix, options.id].some((given) => given !== undefined)) throw new UsageError('give --function NAME to add a rule (or --clear)');
      else body = await cli.call(command, 'GET', path);
      cli.print(command, body, () => body.rules.length === 0 ? `no notification rules on ${bucket}` : formatTable(['ID', 'FUNCTION', 'EVENTS', 'PREFIX', 'SUFFIX'],
        body.rules.map((r) => [r.id, r.functionArn, r.events.join(','), r.prefix ?? '-', r.suffix ?? '-'])));
    });

  buckets.command('lifecycle <bucket>')
    .description('expire (delete) the bucket\'s objects some days after they were written, as an S3 lifecycle rule (adds a rule); without options, list the rules')
    .option('--expire-days <days>', 'delete objects this many days after their creation, rounded up to the next midnight UTC as S3 does')
    .option('--prefix <prefix>', 'only keys starting with this (default: every object)')
    .option('--id <id>', 'rule id (default "expire PREFIX"); a rule with the same id is replaced', nonEmpty)
    .addOption(new Option('--clear', 'remove every lifecycle rule of the bucket').conflicts(['expireDays', 'prefix', 'id']))
    .addHelpText('after', '\nOther rules (dates, object sizes, aborting uploads) come from `aws s3api put-bucket-lifecycle-configuration`.\n'
      + 'Example:\n  outpost buckets lifecycle camera-uploads --expire-days 30 --prefix 2026/\n')
    .action(async (bucket: string, options: { expireDays?: string; prefix?: string; id?: string; clear?: boolean }, command: Command) => {
      const path = `/v1/buckets/${encodeURIComponent(bucket)}/lifecycle`;
      let body: { rules: LifecycleRule[] };
      if (options.clear) body = await cli.call(command, 'POST', path, { clear: true });
      else if (options.expireDays !== undefined) {
        if (!/^\d+$/.test(options.expireDays) || Number(options.expireDays) < 1) throw new UsageError(`--expire-days takes a whole number of days, at least 1 (got "${options.expireDays}")`);
        body = await cli.call(command, 'POST', path, { expireDays: Number(options.expireDays), prefix: options.prefix, id: options.id });
      } else if (options.prefix !== undefined || options.id !== undefined) throw new UsageError('give --expire-days N to add a rule (or --clear)');
      else body = await cli.call(command, 'GET', path);
      cli.print(command, body, () => body.rules.length === 0 ? `no lifecycle rules on ${bucket}` : formatTable(['ID', 'STATUS', 'FILTER', 'EXPIRES', 'ABORTS UPLOADS'],
        body.rules.map((r) => [r.id, r.enabled ? 'Enabled' : 'Disabled', filterText(r), expiryText(r),
          r.abortIncompleteMultipartUploadDays !== undefined ? `after ${r.abortIncompleteMultipartUploadDays} days` : '-'])));
    });
}

/** A lifecycle rule's filter, in a table cell: its prefix, size bounds and tags. */
function filterText(rule: LifecycleRule): string {
  const parts = [
    rule.prefix ? `prefix ${rule.prefix}` : '',
    rule.objectSizeGreaterThan !== undefined ? `size > ${rule.objectSizeGreaterThan}` : '',
    rule.objectSizeLessThan !== undefined ? `size < ${rule.objectSizeLessThan}` : '',
    ...(rule.tags ?? []).map(([key, value]) => `tag ${key}=${value}`),
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'every object';
}

function expiryText({ expiration }: LifecycleRule): string {
  if (!expiration) return '-';
  if ('days' in expiration) return `after ${expiration.days} days`;
  if ('date' in expiration) return `from ${expiration.date.slice(0, 10)}`;
  return `delete markers: ${expiration.expiredObjectDeleteMarker}`;
}

function registerObjectCommands(program: Command, cli: CliContext): void {
  const objects = program.command('objects').description('objects of the S3-compatible store, over its S3 API');

  objects.command('ls')
    .argument('<bucket>', 'a bucket, BUCKET/PREFIX or s3://BUCKET/PREFIX')
    // its own parser, which refuseEmptyArguments leaves: "" is a prefix (every key), as `"$PREFIX"` in a script gives it, not a missing name
    .argument('[prefix]', 'only keys starting with this', (prefix: string) => prefix)
    .description('list objects (all pages); BUCKET/PREFIX and s3://BUCKET/PREFIX work too')
    .option('--delimiter <delimiter>', 'group keys by this (e.g. "/")')
    .action(async (address: string, prefixArgument: string | undefined, options: { delimiter?: string }, command: Command) => {
      const { bucket, key: prefix = prefixArgument } = objectAddress(address, prefixArgument);
      const { s3, commands } = await s3Of(cli, command);
      const entries: Array<{ key: string; size?: number; lastModified?: string; etag?: string }> = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new commands.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: options.delimiter, ContinuationToken: token }));
        for (const p of page.CommonPrefixes ?? []) entries.push({ key: p.Prefix! });
        for (const o of page.Contents ?? []) entries.push({ key: o.Key!, size: o.Size, lastModified: o.LastModified?.toISOString(), etag: o.ETag });
        token = page.NextContinuationToken;
      } while (token);
      s3.destroy();
      cli.print(command, { objects: entries }, () => formatTable(['KEY', 'SIZE', 'LAST MODIFIED', 'ETAG'],
        entries.map((e) => [e.key, e.size === undefined ? 'PRE' : formatBytes(e.size), e.lastModified ?? '-', e.etag ?? '-'])));
    });

  objects.command('put <file> <bucket> [key]')
    .description('upload a file (key: the file name); "-" reads stdin; BUCKET/KEY and s3://BUCKET/KEY work too, a KEY ending in "/" gets the file name')
    .option('--content-type <type>', 'Content-Type of the object (default: from the key\'s extension, as aws s3 cp and the file share guess it)')
    .option('--tag <key=value>', 'a tag of the object (repeatable, at most 10)', collect)
    .action(async (file: string, address: string, keyArgument: string | undefined, options: { contentType?: string; tag?: string[] }, command: Command) => {
      const { bucket, key: named = keyArgument } = objectAddress(address, keyArgument);
      // as `aws s3 cp FILE s3://BUCKET/DIR/` names it
      const key = named?.endsWith('/') && file !== '-' ? named + basename(file) : named;
      // stdin has no file name for a KEY ending in "/" to take
      if (file === '-' && (!key || key.endsWith('/'))) throw new UsageError('give a KEY (not ending in "/") when reading stdin');
      const upload = file === '-' ? undefined : openUpload(file);
      const { s3, commands } = await s3Of(cli, command);
      // read once the daemon is known to be there
      const { fd, size } = upload ?? await spoolStdin();
      // from the start: a spooled file's offset is at its end
      const source = createReadStream(file, { fd, start: 0 });
      const body = size >= PROGRESS_FROM_BYTES && process.stderr.isTTY ? source.pipe(progress(size)) : source;
      const objectKey = key ?? basename(file);
      // x-amz-tagging: URL query parameters
      const tagging = options.tag ? new URLSearchParams(options.tag.map((tag): [string, string] => {
        const equals = tag.indexOf('=');
        return equals === -1 ? [tag, ''] : [tag.slice(0, equals), tag.slice(equals + 1)];
      })).toString() : undefined;
      const put = await s3.send(new commands.PutObjectCommand({
        Bucket: bucket, Key: objectKey, Body: body, ContentLength: size, ContentType: options.contentType ?? guessContentType(objectKey), Tagging: tagging,
      }))
        .finally(() => s3.destroy());
      cli.print(command, { bucket, key: objectKey, etag: put.ETag }, () => `uploaded ${bucket}/${objectKey} ${put.ETag}`);
    });

  objects.command('get <bucket> [key] [file]')
    .description('download an object (file: the key\'s last segment, in FILE when FILE is a directory); "-" writes stdout; BUCKET/KEY [FILE] and s3://BUCKET/KEY [FILE] work too')
    .action(async (address: string, second: string | undefined, third: string | undefined, _options, command: Command) => {
      const inAddress = objectAddress(address, undefined);
      const bucket = inAddress.bucket;
      // with the key in the address, the next argument is the file
      const [key, file] = inAddress.key === undefined ? [second, third] : [inAddress.key, second];
      if (inAddress.key !== undefined && third !== undefined) throw new UsageError(`too many arguments: the key is in ${address}`);
      if (!key) throw new UsageError('give the KEY of the object');
      const { s3, commands } = await s3Of(cli, command);
      try {
        const got = await s3.send(new commands.GetObjectCommand({ Bucket: bucket, Key: key }));
        const target = downloadTarget(file, key);
        const size = got.ContentLength ?? 0;
        if (target === '-') {
          await pipeline(got.Body as Readable, process.stdout);
          return;
        }
        await download(got.Body as Readable, target, size >= PROGRESS_FROM_BYTES && process.stderr.isTTY ? progress(size) : undefined);
        cli.print(command, { bucket, key, file: target, size }, () => `downloaded ${bucket}/${key} to ${target} (${formatBytes(size)})`);
      } finally {
        s3.destroy();
      }
    });

  objects.command('rm <bucket> [keys...]')
    .description('delete objects: BUCKET KEY..., or BUCKET/KEY... and s3://BUCKET/KEY...')
    .action(async (address: string, more: string[], _options, command: Command) => {
      const first = objectAddress(address, undefined);
      const targets = first.key === undefined
        ? more.map((key) => ({ bucket: first.bucket, key }))
        : [first, ...more.map((other) => objectAddress(other, undefined))].map(({ bucket, key }) => {
          if (key === undefined) throw new UsageError(`no key in ${bucket}: give BUCKET/KEY`);
          return { bucket, key };
        });
      if (targets.length === 0) throw new UsageError('give the KEY of the object');
      const { s3, commands } = await s3Of(cli, command);
      try {
        for (const { bucket, key } of targets) await s3.send(new commands.DeleteObjectCommand({ Bucket: bucket, Key: key }));
      } finally {
        s3.destroy();
      }
      cli.print(command, { deleted: targets.map(({ key }) => key), objects: targets }, () => targets.map(({ bucket, key }) => `deleted ${bucket}/${key}`).join('\n'));
    });
}

/**
 * A bucket, or an object's address as `aws s3` takes it: `s3://BUCKET/KEY` or `BUCKET/KEY` (a bucket
 * name has no "/"). `separateKey`: the key (or prefix) given as an argument of its own as well,
 * refused alongside one in the address.
 */
function objectAddress(address: string, separateKey: string | undefined): { bucket: string; key?: string } {
  const path = address.startsWith('s3://') ? address.slice('s3://'.length) : address;
  const slash = path.indexOf('/');
  // `s3://` or `/KEY`: sent on, the S3 SDK refused it with "No value provided for input HTTP label: Bucket."
  if (slash === 0 || path === '') throw new UsageError(`no bucket in ${address}: give BUCKET, BUCKET/KEY or s3://BUCKET/KEY`);
  if (slash < 0) return { bucket: path };
  if (separateKey !== undefined) throw new UsageError(`give the key either in ${address} or as an argument, not both`);
  const key = path.slice(slash + 1);
  return { bucket: path.slice(0, slash), ...(key ? { key } : {}) };
}

/**
 * A file to upload, opened before anything is sent: one that is missing or unreadable fails with
 * its system error, a directory or device is refused.
 */
function openUpload(file: string): { fd: number; size: number } {
  const fd = openSync(file, 'r');
  const stats = fstatSync(fd);
  if (stats.isFile()) return { fd, size: stats.size };
  closeSync(fd);
  throw new CliError(`${file} is not a regular file`);
}

/**
 * Standard input copied to a temporary file: PutObject is sent with its length, which a pipe has
 * only at its end, and a file holds input of any size where memory would not ($TMPDIR chooses
 * where). The file is unlinked as soon as it is open, so it is gone however the CLI ends.
 */
async function spoolStdin(): Promise<{ fd: number; size: number }> {
  const path = join(tmpdir(), `outpost-stdin-${randomBytes(8).toString('hex')}`);
  const fd = openSync(path, 'wx+', 0o600);
  unlinkSync(path);
  try {
    await pipeline(process.stdin, createWriteStream(path, { fd, autoClose: false }));
    return { fd, size: fstatSync(fd).size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * The file a download goes to, as `aws s3 cp s3://BUCKET/KEY FILE` and cp(1) name it: FILE, or the
 * key's last segment inside FILE when FILE is a directory (or ends in "/"); the key's last segment
 * in the working directory without FILE.
 */
function downloadTarget(file: string | undefined, key: string): string {
  if (file === undefined) return basename(key);
  if (file === '-') return file;
  const isDirectory = file.endsWith('/') || (statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false);
  return isDirectory ? join(file, basename(key)) : file;
}

/**
 * Writes a download to a new file next to TARGET and renames it over TARGET once complete, as
 * `aws s3 cp` does: a failed download leaves a TARGET that existed as it was, and no partial file;
 * TARGET's missing directories are made, as `aws s3 cp` makes them. A file replaced keeps its
 * permissions, as it did when it was written in place. A TARGET that is not a regular file is
 * written to.
 */
async function download(body: Readable, target: string, progressBar: Transform | undefined): Promise<void> {
  const replaced = lstatSync(target, { throwIfNoEntry: false });
  if (!replaced) mkdirSync(dirname(target), { recursive: true });
  // /dev/null, a FIFO, a symlink: written through, as before, not replaced by a file
  if (replaced && !replaced.isFile()) {
    const out = createWriteStream(target);
    await (progressBar ? pipeline(body, progressBar, out) : pipeline(body, out));
    return;
  }
  const partial = `${target}.outpost-${randomBytes(4).toString('hex')}.part`;
  const fd = openNamed(partial, target);
  try {
    if (replaced?.isFile()) fchmodSync(fd, replaced.mode & 0o7777);
    const out = createWriteStream(partial, { fd });
    await (progressBar ? pipeline(body, progressBar, out) : pipeline(body, out));
    renameSync(partial, target);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}

/**
 * Opens the new file of a download; a failure reads as one of the target the user named
 * ("ENOENT: no such file or directory, open 'no-dir/x.log'"), not of a file they never heard of.
 */
function openNamed(partial: string, target: string): number {
  try {
    return openSync(partial, 'wx', 0o644);
  } catch (error) {
    const failure = error as NodeJS.ErrnoException;
    failure.message = failure.message.replace(partial, target);
    failure.path = target;
    throw failure;
  }
}

const silentSdkLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * An S3 client on the daemon's S3 port with the key the daemon keeps for its CLI (handed out on
 * the admin API, which only its operators reach). The SDK is loaded only by these commands.
 */
async function s3Of(cli: CliContext, command: Command): Promise<{ s3: S3Client; commands: typeof import('@aws-sdk/client-s3') }> {
  const endpoint = await cli.call<{ endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }>(command, 'GET', '/v1/s3/endpoint');
  // The SDK's notice that its 2027 releases need Node 22 is for developers, not for each command's stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const commands = await import('@aws-sdk/client-s3');
  const s3 = new commands.S3Client({
    endpoint: endpoint.endpoint, region: endpoint.region, forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey },
    // Without a logger the SDK warns on the console of every refused upload ("An error was encountered
    // in a non-retryable streaming request."); the refusal itself is the one line the CLI prints.
    logger: silentSdkLogger,
  });
  const send = s3.send.bind(s3) as (command: unknown) => Promise<unknown>;
  // S3 errors read as the CLI's other refusals: "outpost: NoSuchKey: The specified key does not exist."
  s3.send = ((command: unknown) => send(command).catch((error: { name?: string; message?: string }) => {
    throw new CliError(`${error.name}: ${error.message}`);
  })) as typeof s3.send;
  return { s3, commands };
}

/** A pass-through that draws `  42%  12.3 MiB / 29.0 MiB` on stderr. */
function progress(total: number): Transform {
  let done = 0;
  let drawn = -1;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      const percent = Math.floor((done / total) * 100);
      if (percent !== drawn) {
        drawn = percent;
        process.stderr.write(`\r  ${String(percent).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(total)}   `);
      }
      callback(null, chunk);
    },
    flush(callback) {
      process.stderr.write('\n');
      callback();
    },
  });
}
