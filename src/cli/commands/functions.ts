import type { Command } from 'commander';
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, failIfSkipped, UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { integerOption } from '../options.js';
import { formatTable } from '../table.js';

interface FunctionSummary {
  name: string; version: number; hash: string; runtime: string; handler: string; memorySize: number; timeout: number;
  reservedConcurrency: number | null; topics: string[]; schedules?: string[]; updatedAt: number;
}
interface FunctionInfo extends FunctionSummary {
  environment: Record<string, string>;
  instances: { busy: number; idle: number; queued: number; initFailures?: number; initError?: string; initVersion?: string; backoffUntil?: number };
  asyncEvents?: number;
  versions: Array<{ version: number; hash: string; createdAt: number }>;
  aliases?: Array<{ alias: string; version: number; additionalVersionWeights?: Record<string, number>; updatedAt: number }>;
}
interface LogChunk { text: string; offset: number }
interface DeployOutcome { name: string; version: number; hash: string; unchanged: boolean }
interface InvokeResult { statusCode: number; executedVersion?: string; functionError?: string; payload?: unknown; payloadText?: string; eventId?: number; logResult?: string }
interface DeadLetter {
  id: number; function: string; event: unknown; source: string; enqueuedAt: number; failedAt: number; attempts: number;
  reason: string; errorType: string; errorMessage: string;
}
interface DeadLetterPage { deadLetters: DeadLetter[]; total: number; next?: number }
interface ReplayOutcome { replayed: Array<{ id: number; eventId: number }>; skipped: Array<{ id: number; reason: string }> }

const functionPath = (name: string) => `/v1/functions/${encodeURIComponent(name)}`;
const shortHash = (hash: string) => hash.slice(0, 12);

/**
 * `--payload JSON` or `--payload @file`, as text: sent as it is, as Lambda's Invoke takes its payload's
 * bytes. What is no JSON is a wrong command line (exit 2), as `shadow update --desired` has it.
 */
function readPayload(option: string | undefined): string | undefined {
  const text = payloadText(option);
  if (text !== undefined) {
    try {
      JSON.parse(text);
    } catch {
      throw new UsageError(`--payload is not valid JSON: ${text.slice(0, 200)}`);
    }
  }
  return text;
}

function payloadText(option: string | undefined): string | undefined {
  if (option === undefined || !option.startsWith('@')) return option;
  const file = option.slice(1);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  // Lambda: bytes that are not UTF-8 are no JSON; read leniently, they would become U+FFFD
  if (!isUtf8(bytes)) throw new UsageError(`--payload: ${file} is not UTF-8 text`);
  return bytes.toString('utf8');
}

function infoText(info: FunctionInfo): string {
  const rows: Array<[string, string | number]> = [
    ['name', info.name], ['version', `${info.version} ($LATEST)`], ['hash', info.hash], ['runtime', info.runtime], ['handler', info.handler],
    ['memory', `${info.memorySize} MB`], ['timeout', `${info.timeout} s`], ['concurrency', info.reservedConcurrency ?? 'default'],
    ['topics', info.topics.join(' ') || '-'], ['schedules', info.schedules?.join(' ') || '-'], ['environment', Object.keys(info.environment).join(' ') || '-'],
    ['instances', `${info.instances.busy} busy, ${info.instances.idle} idle, ${info.instances.queued} queued`],
    ['async events', info.asyncEvents ?? 0],
    ...(info.instances.initFailures ? [['init failures', `${info.instances.initFailures} in a row${info.instances.initVersion && info.instances.initVersion !== '$LATEST' ? ` (version ${info.instances.initVersion})` : ''}${info.instances.backoffUntil ? `, next attempt after ${new Date(info.instances.backoffUntil).toISOString()}` : ''}: ${info.instances.initError}`] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n') + '\n\n'
    + formatTable(['VERSION', 'HASH', 'CREATED', 'ALIASES'], info.versions.map((v) => [v.version, shortHash(v.hash), new Date(v.createdAt).toISOString(),
      [...(v.version === info.version ? ['$LATEST'] : []), ...(info.aliases ?? []).flatMap((a) => aliasLabels(a, v.version))].join(' ') || '-']));
}

/** How an alias shows next to a version: `live`, or with routing `live (90%)` and `live (10%)` next to the other. */
function aliasLabels(alias: { alias: string; version: number; additionalVersionWeights?: Record<string, number> }, version: number): string[] {
  const [additional] = Object.entries(alias.additionalVersionWeights ?? {});
  if (!additional) return alias.version === version ? [alias.alias] : [];
  const percent = (share: number) => `${alias.alias} (${Number((share * 100).toFixed(2))}%)`;
  if (alias.version === version) return [percent(1 - additional[1])];
  return Number(additional[0]) === version ? [percent(additional[1])] : [];
}

export function registerFunctions(program: Command, cli: CliContext): void {
  program.command('deploy <path>')
    .description('deploy the functions of a directory with a SAM template.yaml, or a .zip of one (all or none; a failed deploy keeps the old versions)')
    .action(async (path: string, _options, command: Command) => {
      const body = await cli.call<{ deployed: DeployOutcome[] }>(command, 'POST', '/v1/functions', { path: resolve(path) }, { waitForAnswer: true });
      cli.print(command, body, () => body.deployed.map((d) => d.unchanged
        ? `${d.name}: unchanged at version ${d.version} (${shortHash(d.hash)})`
        : `${d.name}: deployed version ${d.version} (${shortHash(d.hash)})`).join('\n'));
    });

  const functions = program.command('functions').description('deployed functions (local Lambda runtime)');

  functions.command('ls')
    .description('list functions at their $LATEST version')
    .action(async (_options, command: Command) => {
      const body = await cli.call<{ functions: FunctionSummary[] }>(command, 'GET', '/v1/functions');
      cli.print(command, body, () => formatTable(['NAME', 'VERSION', 'RUNTIME', 'HANDLER', 'MEMORY', 'TIMEOUT', 'TOPICS'],
        body.functions.map((f) => [f.name, f.version, f.runtime, f.handler, `${f.memorySize} MB`, `${f.timeout} s`, f.topics.join(' ') || '-'])));
    });

  functions.command('info <name>')
    .description("a function's configuration, instances and versions")
    .action(async (name: string, _options, command: Command) => {
      const info = await cli.call<FunctionInfo>(command, 'GET', functionPath(name));
      cli.print(command, info, () => infoText(info));
    });

  functions.command('alias <name> <alias> [version]')
    .description('point an alias at a version (invoke it as NAME:ALIAS), or remove it with --rm')
    .option('--weight <version=weight>', 'also route this share (0-1) of the invocations to another version, e.g. 4=0.1 (Lambda\'s RoutingConfig)',
      // one additional version at most, as Lambda's RoutingConfig: a second is refused, not taken over the first
      (weight: string, previous: string | undefined) => {
        if (previous !== undefined) throw new UsageError('--weight: one additional version at most (Lambda\'s RoutingConfig)');
        return weight;
      })
    .option('--rm', 'remove the alias')
    .action(async (name: string, alias: string, version: string | undefined, options: { rm?: boolean; weight?: string }, command: Command) => {
      const path = `${functionPath(name)}/aliases/${encodeURIComponent(alias)}`;
      if (options.rm && (version !== undefined || options.weight !== undefined)) throw new UsageError('--rm removes the alias: give no version or --weight with it');
      if (options.rm) {
        const body = await cli.call(command, 'DELETE', path);
        return cli.print(command, body, () => `removed alias ${name}:${alias}`);
      }
      if (version === undefined || !/^\d+$/.test(version)) throw new UsageError('expected a version number (or --rm)');
      let additionalVersionWeights: Record<string, number> | undefined;
      if (options.weight !== undefined) {
        const match = /^(\d+)=([0-9.]+)$/.exec(options.weight);
        if (!match || Number.isNaN(Number(match[2]))) throw new UsageError(`--weight: expected VERSION=WEIGHT (e.g. 4=0.1), got ${options.weight}`);
        additionalVersionWeights = { [match[1]]: Number(match[2]) };
      }
      const body = await cli.call<{ version: number; additionalVersionWeights?: Record<string, number> }>(command, 'PUT', path,
        { version: Number(version), ...(additionalVersionWeights ? { additionalVersionWeights } : {}) });
      const [additional] = Object.entries(body.additionalVersionWeights ?? {});
      cli.print(command, body, () => `${name}:${alias} -> version ${body.version}${additional ? ` (${additional[0]} gets ${additional[1]})` : ''}`);
    });

  functions.command('rollback <name>')
    .description('point $LATEST back at the previous version, or at --to V (checked like a deploy first)')
    .option('--to <version>', 'the version to go back to', integerOption(1))
    .action(async (name: string, options: { to?: number }, command: Command) => {
      const body = await cli.call<{ from: number; to: number }>(command, 'POST', `${functionPath(name)}/rollback`, options.to === undefined ? {} : { to: options.to });
      cli.print(command, body, () => `${name}: $LATEST is version ${body.to} (was ${body.from})`);
    });

  functions.command('rm <name>')
    .description('remove a function with all its versions and logs')
    .action(async (name: string, _options, command: Command) => {
      const body = await cli.call(command, 'DELETE', functionPath(name));
      cli.print(command, body, () => `removed ${name}`);
    });

  program.command('logs <name>')
    .description("a function's log: console output and the START/END/REPORT lines of each invocation")
    .option('-n, --lines <count>', 'how many of the last lines to print (at most 10000)', integerOption(1, 10_000), 100)
    .option('-f, --follow', 'keep printing new lines as they are written (Ctrl-C to stop)')
    .action(async (name: string, options: { lines: number; follow?: boolean }, command: Command) => {
      // --json: the first read, then each that brings lines when followed, as one line of JSON {"text", "offset"} (JSON Lines)
      const json = command.optsWithGlobals<{ json?: boolean }>().json;
      const print = (read: LogChunk) => process.stdout.write(json ? `${JSON.stringify(read)}\n` : read.text);
      let chunk = await cli.call<LogChunk>(command, 'GET', `${functionPath(name)}/logs?lines=${options.lines}`);
      print(chunk);
      while (options.follow) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        chunk = await cli.call<LogChunk>(command, 'GET', `${functionPath(name)}/logs?offset=${chunk.offset}`);
        if (chunk.text) print(chunk);
      }
    });

  program.command('invoke <name>')
    .description('invoke a function (NAME runs $LATEST; NAME:ALIAS or NAME:VERSION that version) and print its response; exits 1 when the function fails')
    .option('--payload <json>', 'the event as JSON, or @FILE to read it from a file, sent as it is (default {})')
    .option('--async', 'invocation type Event: queue it and return at once')
    .option('--log-type <type>', 'Tail: also print the end of the invocation\'s log (its last 4 KB) to stderr; --json gives it as logResult, base64', 'None')
    .action(async (name: string, options: { payload?: string; async?: boolean; logType: string }, command: Command) => {
      const payloadText = readPayload(options.payload);
      if (options.logType !== 'None' && options.logType !== 'Tail') throw new UsageError(`--log-type: expected None or Tail, got ${options.logType}`);
      if (options.logType === 'Tail' && options.async) throw new UsageError('--log-type Tail: only for synchronous invocations, not with --async');
      const result = await cli.call<InvokeResult>(command, 'POST', `${functionPath(name)}/invocations`,
        { ...(payloadText !== undefined ? { payloadText } : {}), invocationType: options.async ? 'Event' : 'RequestResponse', ...(options.logType === 'Tail' ? { logType: 'Tail' } : {}) },
        { waitForAnswer: !options.async });
      cli.print(command, result, () => (options.async ? `queued as event ${result.eventId} (${result.statusCode})` : result.payloadText ?? JSON.stringify(result.payload)));
      if (result.logResult !== undefined && !command.optsWithGlobals<{ json?: boolean }>().json) process.stderr.write(Buffer.from(result.logResult, 'base64').toString('utf8'));
      if (result.functionError) {
        const error = result.payload as { errorType?: string; errorMessage?: string };
        throw new CliError(`${name} failed (${result.functionError}): ${error.errorType}: ${error.errorMessage}`);
      }
    });

  registerDeadLetters(program, cli);
}

const dlqQuery = (name: string | undefined) => (name === undefined ? '' : `?function=${encodeURIComponent(name)}`);
const oneLine = (text: string, max: number) => {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

/** `outpost dlq ls|replay|purge`: asynchronous events that failed all their attempts or grew too old. */
function registerDeadLetters(program: Command, cli: CliContext): void {
  const dlq = program.command('dlq').description('the dead-letter queue of asynchronous function events');

  dlq.command('ls [function]')
    .description('list dead letters, oldest first, with the last error')
    .action(async (name: string | undefined, _options, command: Command) => {
      const json = command.optsWithGlobals<{ json?: boolean }>().json;
      // Page by page, each let go once printed (JSON) or cut to its table row: a function's 1,000 letters may hold 1 GiB of events.
      const rows: Array<Array<string | number>> = [];
      let printed = 0;
      let total: number | undefined;
      let after: number | undefined = 0;
      if (json) process.stdout.write('{\n  "deadLetters": [');
      while (after !== undefined) {
        const query = [...(name === undefined ? [] : [`function=${encodeURIComponent(name)}`]), ...(after ? [`after=${after}`] : [])];
        const page: DeadLetterPage = await cli.call<DeadLetterPage>(command, 'GET', `/v1/dlq${query.length ? `?${query.join('&')}` : ''}`);
        for (const d of page.deadLetters) {
          if (json) process.stdout.write(`${printed++ === 0 ? '' : ','}\n    ${JSON.stringify(d, null, 2).replaceAll('\n', '\n    ')}`);
          else rows.push([d.id, d.function, new Date(d.failedAt).toISOString(), d.attempts, d.reason, oneLine(`${d.errorType}: ${d.errorMessage}`, 60), oneLine(JSON.stringify(d.event), 40)]);
        }
        total ??= page.total;
        after = page.next;
      }
      if (json) process.stdout.write(`${printed === 0 ? '' : '\n  '}],\n  "total": ${total}\n}\n`);
      else process.stdout.write(formatTable(['ID', 'FUNCTION', 'FAILED', 'ATTEMPTS', 'REASON', 'ERROR', 'EVENT'], rows));
    });

  dlq.command('replay [id-or-function]')
    .description('queue a dead letter again by ID, or with --all every one (of FUNCTION)')
    .option('--all', 'replay every dead letter, or every one of the function given')
    .action(async (target: string | undefined, options: { all?: boolean }, command: Command) => {
      let request: Record<string, unknown>;
      if (options.all) request = { all: true, ...(target !== undefined ? { function: target } : {}) };
      else if (target !== undefined && /^\d+$/.test(target)) request = { id: Number(target) };
      else throw new UsageError('expected a dead-letter ID, or --all [FUNCTION]');
      const body = await cli.call<ReplayOutcome>(command, 'POST', '/v1/dlq/replay', request);
      cli.print(command, body, () => [
        `replayed ${body.replayed.length}`,
        ...body.replayed.map((r) => `  ${r.id} -> event ${r.eventId}`),
      ].join('\n'));
      failIfSkipped(body.skipped);
    });

  dlq.command('purge [function]')
    .description('delete the dead letters (of FUNCTION)')
    .action(async (name: string | undefined, _options, command: Command) => {
      const body = await cli.call<{ purged: number }>(command, 'DELETE', `/v1/dlq${dlqQuery(name)}`);
      cli.print(command, body, () => `purged ${body.purged}`);
    });
}
