// Build step (`npm run build`, after tsc): dist/bin/outpostd.js becomes one bundle of the daemon's
// modules and the packages they load at start, whitespace removed. V8 keeps the source text of every
// module it loaded, and a module record, a namespace and scope data for each: ~470 files at start
// held ~3 MiB of a daemon's heap at rest (on a 64 MB idle budget) that the bundle does not. Names
// are kept, so that stack traces in the logs still say which function failed.
//
// The rest of dist/ stays as tsc wrote it: worker threads, the CLI, function runtimes and packages
// loaded only when used (lazily imported ones are left out of the bundle) come from there.
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const DIST = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = join(DIST, 'bin', 'outpostd.js');

/**
 * Packages not bundled: native addons; those the daemon imports only when a feature is used (a
 * WebSocket listener, schedules, an S3 XML body, serial devices), which would otherwise cost their
 * source text at rest too; and those whose one instance the daemon changes (mqtt-packet's number
 * cache and `debug` loggers, see src/log/quiet-debug.ts): a bundled copy inside aedes would be
 * another instance, unchanged (its number cache alone took 6 MiB under bench/mixed's load).
 */
const EXTERNAL = ['better-sqlite3', 'serialport', '@serialport/*', 'unix-dgram', 'ws', 'node-cron', 'fast-xml-parser', '@aws-sdk/*', 'pino-pretty', 'mqtt-packet', 'mqtt-packet/*', 'debug'];

/**
 * A module's `import.meta.url` stays its own file's URL in the bundle, so that what it finds beside
 * itself (worker threads' entry files, the Python runtime, the shipped device profiles,
 * package.json) is found where tsc put it: each is rewritten as that file's path relative to the
 * bundle.
 */
const ownImportMetaUrl: Plugin = {
  name: 'own-import-meta-url',
  setup(builder) {
    builder.onLoad({ filter: /\.js$/ }, async ({ path }) => {
      if (!path.startsWith(DIST)) return undefined;
      const source = await readFile(path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const fromBundle = relative(dirname(ENTRY), path).split('\\').join('/');
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`), loader: 'js' };
    });
  },
};

await build({
  entryPoints: [ENTRY],
  outfile: ENTRY,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  external: EXTERNAL,
  // CommonJS packages in an ES module bundle call require(): give them Node's
  banner: { js: "import { createRequire as outpostCreateRequire } from 'node:module'; const require = outpostCreateRequire(import.meta.url);" },
  plugins: [ownImportMetaUrl],
  sourcemap: true,
  logLevel: 'warning',
});
