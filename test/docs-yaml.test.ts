import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/daemon.js';

// A reader copies these into outpost.yaml, a template or a device profile: each must be YAML that loads
// (README's sync example did not: `${topic}` unquoted inside a flow mapping).
describe('the YAML examples of README.md and docs/', () => {
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];
  const examples = files.flatMap((file) => [...readFileSync(join(ROOT, file), 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)]
    .map((match, index) => ({ where: `${file} example ${index + 1}`, text: match[1] })));

  it('has examples to check', () => {
    expect(examples.length).toBeGreaterThan(5);
  });

  it('loads each of them as YAML', () => {
    const failing = examples.flatMap(({ where, text }) => {
      try {
        yaml.load(text);
        return [];
      } catch (error) {
        return [`${where}: ${(error as Error).message.split('\n')[0]}`];
      }
    });
    expect(failing).toEqual([]);
  });
});
