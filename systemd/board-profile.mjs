#!/usr/bin/env node
// Reads the board profiles in firmware-configs/boards/*.yaml for systemd/install.sh.
// Plain ESM without a build step: the installer runs it with the Node.js it installs
// for, before (or without) the production dependencies. Its only dependency is the
// `js-yaml` package, looked up in the --modules directories (the install prefix, the
// checkout) and then next to this file.
//
//   node board-profile.mjs list    --boards DIR
//   node board-profile.mjs detect  --boards DIR [--model STRING] [--machine UNAME_M]
//   node board-profile.mjs check   --boards DIR --board NAME
//   node board-profile.mjs config  --boards DIR --board NAME   # outpost.yaml text
//   node board-profile.mjs dropin  --boards DIR --board NAME   # board.conf text
//   node board-profile.mjs arch    --boards DIR --board NAME   # space-separated
//   node board-profile.mjs render  --boards DIR --out DIR (--board NAME | [--model S] [--machine M])
//       all of it in one go (what install.sh uses): writes board, reason, arch,
//       memory (memoryMb), outpost.yaml and board.conf into the --out directory
//
// Errors go to stderr with exit status 1 (2 for bad usage).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FALLBACK_BOARD = 'minimal-128mb';

/** [Service] directives a profile may set in the drop-in; anything else is a typo. */
export const UNIT_DIRECTIVES = new Set([
  'MemoryHigh', 'MemoryMax', 'MemorySwapMax', 'MemoryLow', 'CPUQuota', 'CPUWeight', 'IOWeight',
  'TasksMax', 'Nice', 'OOMScoreAdjust', 'LimitNOFILE', 'WatchdogSec', 'TimeoutStartSec',
]);
const PROFILE_KEYS = new Set([
  'name', 'description', 'memoryMb', 'match', 'arch', 'nodeOptions', 'nodeArgs', 'environment', 'unit',
  'serialPorts', 'config',
]);
const NODE_OPTION = /^--[a-z0-9][a-z0-9-]*(=[A-Za-z0-9._,:/+-]+)?$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const ENV_VALUE = /^[A-Za-z0-9._,:/+=-]*$/;
const UNIT_VALUE = /^[A-Za-z0-9._-]+$/;

class UsageError extends Error {}

function loadYaml(moduleDirs) {
  const here = dirname(fileURLToPath(import.meta.url));
  const dirs = [...moduleDirs, resolve(here, '..'), here, process.cwd()];
  for (const dir of dirs) {
    try {
      return createRequire(join(resolve(dir), 'noop.js'))('js-yaml');
    } catch {
      // not there; try the next directory
    }
  }
  throw new Error(`the "js-yaml" package was not found (looked in ${dirs.join(', ')}); run "npm ci" in the checkout first`);
}

function fail(file, message) {
  throw new Error(`${file}: ${message}`);
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringList(file, value, what) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
    fail(file, `${what}: expected a list of strings`);
  }
  return value;
}

/** Parses and checks one profile; returns it normalised (lists always present). */
export function parseProfile(YAML, file) {
  let raw;
  try {
    raw = YAML.load(readFileSync(file, 'utf8'), { filename: file });
  } catch (error) {
    fail(file, `invalid YAML: ${error.message}`);
  }
  if (!isPlainObject(raw)) fail(file, 'expected a mapping at the top level');
  for (const key of Object.keys(raw)) {
    if (!PROFILE_KEYS.has(key)) fail(file, `${key}: unknown key`);
  }
  const name = basename(file).replace(/\.ya?ml$/, '');
  if (raw.name !== name) fail(file, `name: expected "${name}" (the file name), got ${JSON.stringify(raw.name)}`);
  if (typeof raw.description !== 'string' || raw.description === '') fail(file, 'description: expected a string');
  if (!Number.isInteger(raw.memoryMb) || raw.memoryMb < 64) fail(file, 'memoryMb: expected an integer ≥ 64');
  const match = raw.match ?? {};
  if (!isPlainObject(match)) fail(file, 'match: expected a mapping with "models" and "machines"');
  for (const key of Object.keys(match)) {
    if (key !== 'models' && key !== 'machines') fail(file, `match.${key}: unknown key`);
  }
  const nodeOptions = stringList(file, raw.nodeOptions, 'nodeOptions');
  for (const option of nodeOptions) {
    if (!NODE_OPTION.test(option)) fail(file, `nodeOptions: ${JSON.stringify(option)} is not a --flag[=value] without spaces or quotes`);
  }
  const nodeArgs = stringList(file, raw.nodeArgs, 'nodeArgs');
  for (const option of nodeArgs) {
    if (!NODE_OPTION.test(option)) fail(file, `nodeArgs: ${JSON.stringify(option)} is not a --flag[=value] without spaces or quotes`);
  }
  const environment = raw.environment ?? {};
  if (!isPlainObject(environment)) fail(file, 'environment: expected a mapping of NAME: "value"');
  for (const [key, value] of Object.entries(environment)) {
    if (!ENV_NAME.test(key)) fail(file, `environment.${key}: expected an upper-case variable name`);
    if (key === 'NODE_OPTIONS') fail(file, 'environment.NODE_OPTIONS: use nodeOptions instead');
    if (key === 'OUTPOST_NODE_ARGS') fail(file, 'environment.OUTPOST_NODE_ARGS: use nodeArgs instead');
    if (typeof value !== 'string' || !ENV_VALUE.test(value)) {
      fail(file, `environment.${key}: expected a quoted string without spaces, quotes or "%"`);
    }
  }
  const unit = raw.unit ?? {};
  if (!isPlainObject(unit)) fail(file, 'unit: expected a mapping of systemd [Service] directives');
  for (const [key, value] of Object.entries(unit)) {
    if (!UNIT_DIRECTIVES.has(key)) fail(file, `unit.${key}: not one of ${[...UNIT_DIRECTIVES].join(', ')}`);
    if ((typeof value !== 'string' && typeof value !== 'number') || !UNIT_VALUE.test(String(value))) {
      fail(file, `unit.${key}: expected a value like 100M (no spaces, quotes or "%")`);
    }
  }
  const serialPorts = raw.serialPorts ?? [];
  if (!Array.isArray(serialPorts) || serialPorts.some((port) => !isPlainObject(port)
    || typeof port.path !== 'string' || !port.path.startsWith('/dev/') || typeof port.description !== 'string')) {
    fail(file, 'serialPorts: expected a list of { path: /dev/..., description: ... }');
  }
  if (!isPlainObject(raw.config)) fail(file, 'config: expected a mapping (the daemon configuration)');
  if ('board' in raw.config) fail(file, 'config.board: set by the installer from the profile name; leave it out');
  return {
    name,
    file,
    description: raw.description,
    memoryMb: raw.memoryMb,
    models: stringList(file, match.models, 'match.models'),
    machines: stringList(file, match.machines, 'match.machines'),
    arch: stringList(file, raw.arch, 'arch'),
    nodeOptions,
    nodeArgs,
    environment,
    unit,
    serialPorts,
    config: raw.config,
  };
}

export function loadProfiles(YAML, boardsDir) {
  if (!existsSync(boardsDir)) throw new Error(`board profile directory ${boardsDir} does not exist`);
  const files = readdirSync(boardsDir).filter((entry) => /\.ya?ml$/.test(entry)).sort();
  return files.map((entry) => parseProfile(YAML, join(boardsDir, entry)));
}

/** Longest device-tree model prefix wins, then `uname -m`, then the fallback. */
export function detectBoard(profiles, model, machine) {
  const cleanModel = (model ?? '').replace(/\0/g, '').trim();
  let best = null;
  let bestLength = 0;
  if (cleanModel) {
    for (const profile of profiles) {
      for (const prefix of profile.models) {
        if (cleanModel.startsWith(prefix) && prefix.length > bestLength) {
          best = profile;
          bestLength = prefix.length;
        }
      }
    }
    if (best) return { name: best.name, reason: `device-tree model "${cleanModel}"` };
  }
  if (machine) {
    const byMachine = profiles.find((profile) => profile.machines.includes(machine));
    if (byMachine) {
      const why = cleanModel ? `unknown device-tree model "${cleanModel}", machine ${machine}` : `machine ${machine}`;
      return { name: byMachine.name, reason: why };
    }
  }
  const why = cleanModel ? `unknown device-tree model "${cleanModel}"` : `no device-tree model, machine ${machine || 'unknown'}`;
  return { name: FALLBACK_BOARD, reason: `${why}: fallback` };
}

export function renderConfig(YAML, profile) {
  const header = [
    `# Outpost configuration, written by install.sh from the board profile "${profile.name}"`,
    `# (firmware-configs/boards/${basename(profile.file)}). The installer never overwrites`,
    '# this file: edit it, then `sudo systemctl restart outpost`. To regenerate it, delete',
    '# it and run the installer again. `outpostd --print-config` shows every effective value.',
  ].join('\n');
  return `${header}\n${YAML.dump({ board: profile.name, ...profile.config }, { lineWidth: 120 })}`;
}

export function renderDropin(profile) {
  const lines = [
    `# Board tuning for "${profile.name}" (${profile.description}),`,
    `# written by Outpost's install.sh from firmware-configs/boards/${basename(profile.file)}.`,
    '# The installer rewrites this file on every run: put your own changes in another',
    '# drop-in (`sudo systemctl edit outpost` writes override.conf, which wins).',
    '[Service]',
  ];
  if (profile.nodeOptions.length > 0) lines.push(`Environment="NODE_OPTIONS=${profile.nodeOptions.join(' ')}"`);
  // Flags Node refuses in NODE_OPTIONS go on its command line: ExecStart= has $OUTPOST_NODE_ARGS.
  if (profile.nodeArgs.length > 0) lines.push(`Environment="OUTPOST_NODE_ARGS=${profile.nodeArgs.join(' ')}"`);
  for (const [key, value] of Object.entries(profile.environment)) lines.push(`Environment=${key}=${value}`);
  for (const [key, value] of Object.entries(profile.unit)) lines.push(`${key}=${value}`);
  return `${lines.join('\n')}\n`;
}

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const options = { modules: [] };
  for (let i = 0; i < rest.length; i += 1) {
    const arg = rest[i];
    const value = rest[i + 1];
    if (!['--boards', '--board', '--model', '--machine', '--modules', '--out'].includes(arg)) throw new UsageError(`unknown argument ${arg}`);
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    i += 1;
    if (arg === '--modules') options.modules.push(value);
    else options[arg.slice(2)] = value;
  }
  if (!options.boards) throw new UsageError('--boards DIR is required');
  return { command, options };
}

function main(argv) {
  const { command, options } = parseArgs(argv);
  const YAML = loadYaml(options.modules);
  const profiles = loadProfiles(YAML, options.boards);
  const pick = () => {
    if (!options.board) throw new UsageError(`${command} needs --board NAME`);
    const profile = profiles.find((candidate) => candidate.name === options.board);
    if (!profile) {
      throw new Error(`unknown board "${options.board}"; known boards: ${profiles.map((p) => p.name).join(', ')}`);
    }
    return profile;
  };
  switch (command) {
    case 'list':
      return profiles.map((profile) => `${profile.name}\t${profile.description}`).join('\n') + '\n';
    case 'detect': {
      const { name, reason } = detectBoard(profiles, options.model, options.machine);
      if (!profiles.some((profile) => profile.name === name)) throw new Error(`fallback board profile ${name} is missing`);
      return `${name}\n${reason}\n`;
    }
    case 'check':
      pick();
      return '';
    case 'config':
      return renderConfig(YAML, pick());
    case 'dropin':
      return renderDropin(pick());
    case 'arch':
      return `${pick().arch.join(' ')}\n`;
    case 'render': {
      if (!options.out) throw new UsageError('render needs --out DIR');
      let reason = '--board';
      if (!options.board) {
        const detected = detectBoard(profiles, options.model, options.machine);
        options.board = detected.name;
        reason = detected.reason;
      }
      const profile = pick();
      writeFileSync(join(options.out, 'board'), `${profile.name}\n`);
      writeFileSync(join(options.out, 'reason'), `${reason}\n`);
      writeFileSync(join(options.out, 'arch'), `${profile.arch.join(' ')}\n`);
      writeFileSync(join(options.out, 'memory'), `${profile.memoryMb}\n`);
      writeFileSync(join(options.out, 'outpost.yaml'), renderConfig(YAML, profile));
      writeFileSync(join(options.out, 'board.conf'), renderDropin(profile));
      return '';
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)} (list, detect, check, config, dropin, arch, render)`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.stdout.write(main(process.argv.slice(2)));
  } catch (error) {
    process.stderr.write(`board-profile: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
}
