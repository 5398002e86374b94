import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** outpost sync … (issue 6). */
export function registerSync(_program: Command, _cli: CliContext): void {}
