import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('source rules', () => {
  it('loads node:http only through src/node-http.ts (an ES import of it loads Node 22+\'s bundled undici: 2.3 MB of heap)', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(100);
    const offending = files.filter((file) => relative(SRC, file) !== 'node-http.ts').flatMap((file) =>
      readFileSync(file, 'utf8').split('\n').flatMap((line, index) =>
        (/^\s*import\s+(?!type\b)[^;]*['"]node:http['"]|await\s+import\(\s*['"]node:http['"]|^\s*export\s+(?!type\b)[^;]*from\s+['"]node:http['"]/.test(line)
          ? [`${relative(SRC, file)}:${index + 1}: ${line.trim()}`] : [])));
    expect(offending).toEqual([]);
  });
});
