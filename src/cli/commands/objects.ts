import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** outpost buckets … and outpost objects … (issue 5). */
export function registerObjects(_program: Command, _cli: CliContext): void {}
