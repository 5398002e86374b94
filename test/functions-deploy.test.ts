import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDaemon } from './helpers/daemon.js';
import { outpost } from './helpers/mqtt.js';
import { invoke, template, writePackage } from './helpers/functions.js';

/** Python's zipfile (Debian's /usr/bin/python3) writes the archives, hostile ones included. */
function writeZip(file: string, entries: Record<string, string>, options: { method?: 'stored' | 'deflated' } = {}): void {
  const script = 'import json, sys, zipfile\n'
    + 'entries = json.loads(sys.argv[2])\n'
    + 'method = zipfile.ZIP_STORED if sys.argv[3] == "stored" else zipfile.ZIP_DEFLATED\n'
    + 'with zipfile.ZipFile(sys.argv[1], "w", method) as z:\n'
    + '    for name, content in entries.items(): z.writestr(name, content)\n';
  execFileSync('/usr/bin/python3', ['-c', script, file, JSON.stringify(entries), options.method ?? 'deflated']);
}

describe('functions: .zip packages', () => {
  let daemon: TestDaemon;
  const work = writePackage({});
  const cli = (...args: string[]) => outpost(daemon.socket, args);

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} }); // free ports: the defaults (e.g. S3 on 9000) may be taken on a shared machine
  });

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await daemon.cleanup();
    work.remove();
  });

  it('deploys a .zip with the template at its top and the code under CodeUri, deflated or stored', async () => {
    const zip = join(work.dir, 'zipped.zip');
    writeZip(zip, {
      'template.yaml': template('Zipped', { Handler: 'app.handler', CodeUri: 'src/' }),
      'src/app.js': 'const { answer } = require("./lib/answer.js");\nexports.handler = async (event) => ({ answer, event });\n',
      'src/lib/answer.js': 'exports.answer = 42;\n',
      'src/empty.txt': '',
    });
    const deployed = await cli('deploy', zip);
    expect(deployed, deployed.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Zipped: deployed version 1 \([0-9a-f]{12}\)\n$/) });
    expect((await invoke(daemon.socket, 'Zipped', { q: 1 })).result.payload).toEqual({ answer: 42, event: { q: 1 } });

    // The same content stored instead of deflated is the same version.
    const stored = join(work.dir, 'stored.zip');
    writeZip(stored, {
      'template.yaml': template('Zipped', { Handler: 'app.handler', CodeUri: 'src/' }),
      'src/app.js': 'const { answer } = require("./lib/answer.js");\nexports.handler = async (event) => ({ answer, event });\n',
      'src/lib/answer.js': 'exports.answer = 42;\n',
      'src/empty.txt': '',
    }, { method: 'stored' });
    expect((await cli('deploy', stored)).stdout).toMatch(/^Zipped: unchanged at version 1 /);
    // Nothing of the unpacking is left behind.
    expect(execFileSync('ls', ['-a', join(daemon.dataDir, 'functions')], { encoding: 'utf8' })).not.toContain('.unpack-');
  });

  it('refuses hostile or unusable archives with a clear error and deploys nothing', async () => {
    const cases: Array<[string, (file: string) => void, string]> = [
      ['escape.zip', (file) => writeZip(file, { 'template.yaml': template('Evil', { Handler: 'a.handler' }), '../outside.js': 'x' }), '../outside.js: entry names must stay inside the package'],
      ['absolute.zip', (file) => writeZip(file, { 'template.yaml': template('Evil', { Handler: 'a.handler' }), '/etc/evil.js': 'x' }), 'entry names must stay inside the package'],
      ['no-template.zip', (file) => writeZip(file, { 'index.js': 'x' }), 'no-template.zip: no template.yaml (or template.yml)'],
      ['not-a.zip', (file) => writeFileSync(file, 'this is not a zip archive at all'), 'not a zip archive'],
      ['clash.zip', (file) => writeZip(file, { 'template.yaml': template('Evil', { Handler: 'a.handler' }), 'lib': 'a file', 'lib/a.js': 'x' }), 'lib/a.js: '],
      ['bad-key.zip', (file) => writeZip(file, { 'template.yaml': template('Evil', { Handler: 'a.handler', Layers: ['x'] }) }), 'Resources.Evil.Properties.Layers: unsupported key'],
    ];
    for (const [name, write, message] of cases) {
      const file = join(work.dir, name);
      write(file);
      const refused = await cli('deploy', file);
      expect(refused.code, name).toBe(1);
      expect(refused.stderr, name).toContain('InvalidParameterValueException');
      expect(refused.stderr, name).toContain(message);
    }
    expect((await cli('functions', 'info', 'Evil')).code).toBe(1);
    expect((await cli('deploy', join(work.dir, 'missing.zip'))).stderr).toContain('missing.zip: cannot read');
  });
});

describe('functions: what a deploy cut short by a crash leaves behind', () => {
  it('is removed at the next start: staging and unpacking directories, code no version records, a function that does not exist', async () => {
    let daemon = await TestDaemon.start({ config: {} });
    const code = writePackage({ 'template.yaml': template('Kept', { Handler: 'app.handler' }), 'app.js': 'exports.handler = async () => "kept";\n' });
    try {
      expect((await outpost(daemon.socket, ['deploy', code.dir])).code).toBe(0);
      await daemon.kill();
      const functions = join(daemon.dataDir, 'functions');
      const [recorded] = readdirSync(join(functions, 'Kept')).filter((name) => /^[0-9a-f]{64}$/.test(name));
      const leftovers = [join(functions, 'Kept', '.staging-0a1b2c'), join(functions, 'Kept', 'f'.repeat(64)), join(functions, '.unpack-x1y2z3'), join(functions, 'Gone', 'e'.repeat(64))];
      for (const dir of leftovers) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'app.js'), 'left behind');
      }
      daemon = await TestDaemon.start({ config: {}, dataDir: daemon.dataDir });
      for (const dir of leftovers) expect(existsSync(dir), dir).toBe(false);
      expect(existsSync(join(functions, 'Gone'))).toBe(false);
      expect(existsSync(join(functions, 'Kept', recorded))).toBe(true);
      expect((await invoke(daemon.socket, 'Kept')).result.payload).toBe('kept');
    } finally {
      await daemon.cleanup();
      code.remove();
    }
  });
});
