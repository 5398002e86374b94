import type { Command } from 'commander';
import { UsageError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { integerOption, nonEmpty } from '../options.js';
import { formatTable } from '../table.js';
import { parseJsonOption, type Json } from '../json-option.js';

interface ShadowSummary { thing: string; name: string | null; version: number; timestamp: number }
interface ShadowDocument {
  state: { desired?: Record<string, Json>; reported?: Record<string, Json>; delta?: Record<string, Json> };
  version: number;
  timestamp: number;
}

// --name '' is sent as it is, for the daemon to refuse: it names no shadow, not the classic one
const shadowPath = (thing: string, name?: string) => `/v1/shadows/${encodeURIComponent(thing)}${name !== undefined ? `?name=${encodeURIComponent(name)}` : ''}`;

/** Leaves of a section as dotted paths; arrays are values, as the delta treats them. */
function leaves(value: Json | undefined, prefix = '', into = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) leaves(child, prefix ? `${prefix}.${key}` : key, into);
  } else if (value !== undefined && prefix) {
    into.set(prefix, JSON.stringify(value));
  }
  return into;
}

function documentTable(document: ShadowDocument): string {
  const sections = (['desired', 'reported', 'delta'] as const).map((section) => leaves(document.state[section]));
  const paths = [...new Set(sections.flatMap((section) => [...section.keys()]))].sort();
  return `version ${document.version}\n` + formatTable(['FIELD', 'DESIRED', 'REPORTED', 'DELTA'],
    paths.map((path) => [path, ...sections.map((section) => section.get(path) ?? '-')]));
}

export function registerShadow(program: Command, cli: CliContext): void {
  const shadow = program.command('shadow').description('device shadows (AWS IoT Device Shadow compatible): classic, or named with --name');

  shadow.command('get <thing>')
    .description("show a shadow's desired, reported and delta fields")
    .option('--name <shadow>', 'a named shadow instead of the classic one', nonEmpty)
    .action(async (thing: string, options: { name?: string }, command: Command) => {
      const document = await cli.call<ShadowDocument>(command, 'GET', shadowPath(thing, options.name));
      cli.print(command, document, () => documentTable(document));
    });

  shadow.command('update <thing>')
    .description('update desired or reported state; a null field deletes it')
    .option('--name <shadow>', 'a named shadow instead of the classic one', nonEmpty)
    .option('--desired <json>', 'fields of the desired state, e.g. \'{"color":"red"}\'')
    .option('--reported <json>', 'fields of the reported state')
    .option('--if-version <n>', 'apply only if the shadow is at this version (else refused: Version conflict)', integerOption(0))
    .action(async (thing: string, options: { name?: string; desired?: string; reported?: string; ifVersion?: number }, command: Command) => {
      if (options.desired === undefined && options.reported === undefined) throw new UsageError('give --desired JSON and/or --reported JSON');
      const state: Record<string, Json> = {};
      if (options.desired !== undefined) state.desired = parseJsonOption('--desired', options.desired);
      if (options.reported !== undefined) state.reported = parseJsonOption('--reported', options.reported);
      const accepted = await cli.call<{ version: number }>(command, 'POST', shadowPath(thing, options.name), { state, ...(options.ifVersion !== undefined ? { version: options.ifVersion } : {}) });
      cli.print(command, accepted, () => `updated ${thing}${options.name ? ` (${options.name})` : ''}: version ${accepted.version}\n`);
    });

  shadow.command('delete <thing>')
    .description('delete a shadow (re-created within 48 hours, it continues its version; later it starts again at 1)')
    .option('--name <shadow>', 'a named shadow instead of the classic one', nonEmpty)
    .action(async (thing: string, options: { name?: string }, command: Command) => {
      const deleted = await cli.call<{ version: number }>(command, 'DELETE', shadowPath(thing, options.name));
      cli.print(command, deleted, () => `deleted ${thing}${options.name ? ` (${options.name})` : ''} at version ${deleted.version}\n`);
    });

  shadow.command('ls [thing]')
    .description("list shadows, all or a thing's")
    .action(async (thing: string | undefined, _options, command: Command) => {
      const body: { shadows: ShadowSummary[] } = { shadows: [] };
      // every shadow comes page by page, `next` naming where the next starts
      for (let after: string | undefined = ''; after !== undefined;) {
        const query = thing ? `?thing=${encodeURIComponent(thing)}` : after ? `?after=${encodeURIComponent(after)}` : '';
        const page: { shadows: ShadowSummary[]; next?: string } = await cli.call(command, 'GET', `/v1/shadows${query}`);
        body.shadows.push(...page.shadows);
        after = page.next;
      }
      cli.print(command, body, () => formatTable(['THING', 'SHADOW', 'VERSION', 'UPDATED'],
        body.shadows.map((s) => [s.thing, s.name ?? '(classic)', s.version, new Date(s.timestamp * 1000).toISOString()])));
    });
}
