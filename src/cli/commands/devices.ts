import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** outpost devices … (issue 7). */
export function registerDevices(_program: Command, _cli: CliContext): void {}
