import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** outpost s3 keys … (issue 5). */
export function registerS3Keys(_program: Command, _cli: CliContext): void {}
