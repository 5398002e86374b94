import { existsSync, readFileSync } from 'node:fs';

/**
 * The JSON lines a handler has appended to `file` so far. Only lines ending in a newline are read: a handler may be
 * part-way through a write while a test polls, and the file may exist before its first line does.
 */
export function jsonLines<T = any>(file: string): T[] {
  if (!existsSync(file)) return [];
  const complete = readFileSync(file, 'utf8').split('\n').slice(0, -1);
  return complete.filter(Boolean).map((line) => JSON.parse(line) as T);
}
