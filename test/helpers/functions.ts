import { expect } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './daemon.js';
import { outpost } from './mqtt.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures', 'functions');

/** A function package written to a fresh temporary directory: file path → contents. */
export function writePackage(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-fn-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A one-function template.yaml. */
export function template(name: string, properties: Record<string, unknown>): string {
  return JSON.stringify({ Resources: { [name]: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', ...properties } } } });
}

/** `outpost --json invoke`: the Invoke result, with the CLI's exit code and stderr. */
export async function invoke(socket: string, name: string, payload: unknown = {}): Promise<{ code: number; stderr: string; result: any }> {
  const run = await outpost(socket, ['--json', 'invoke', name, '--payload', JSON.stringify(payload)]);
  return { code: run.code, stderr: run.stderr, result: run.stdout ? JSON.parse(run.stdout) : undefined };
}

/**
 * The faults every execution environment must survive: what the caller gets for each handler mode
 * of the fault fixtures, and whether the environment is kept or replaced afterwards.
 */
export const FAULT_CASES: Array<[mode: string, error: Record<string, unknown>, environment: 'kept' | 'replaced']> = [
  ['throw', { errorType: 'TypeError', errorMessage: 'thrown on purpose' }, 'kept'],
  ['reject', { errorType: 'RangeError', errorMessage: 'rejected on purpose' }, 'kept'],
  ['never', { errorType: 'Sandbox.Timedout', errorMessage: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/) }, 'replaced'],
  ['loop', { errorType: 'Sandbox.Timedout', errorMessage: expect.stringContaining('Task timed out after 1.00 seconds') }, 'replaced'],
  ['exit', { errorType: 'Runtime.ExitError', errorMessage: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3$/) }, 'replaced'],
  ['crash', { errorType: 'Error', errorMessage: 'thrown from a timer' }, 'replaced'],
  ['unhandled', { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody awaits this' }, 'replaced'],
];
