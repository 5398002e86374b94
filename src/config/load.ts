import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import yaml from 'js-yaml';
import type { ZodErrorMap, ZodIssue } from 'zod/v3';
import { configSchema, embeddedDefaults, type Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/outpost/outpost.yaml';
export const DEFAULT_DATA_DIR = '/var/lib/outpost';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or null for the embedded defaults. */
  source: string | null;
  dataDir: string;
}

export interface LoadOptions {
  configPath?: string;
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** `--config FILE` must exist; otherwise /etc/outpost/outpost.yaml when present, else the embedded defaults. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  // given empty (a script's unset variable), they would name the embedded defaults and the working directory
  if (options.configPath === '') throw new ConfigError('--config: expected a file path, got an empty one');
  if (options.dataDir === '') throw new ConfigError('--data-dir: expected a directory, got an empty one');
  const explicit = options.configPath ?? env.OUTPOST_CONFIG;
  let source: string | null = null;
  let input: unknown = embeddedDefaults;
  if (explicit) {
    source = resolve(explicit);
    if (!existsSync(source)) throw new ConfigError(`config file ${source} does not exist`);
    input = parseYamlFile(source);
  } else if (existsSync(DEFAULT_CONFIG_PATH)) {
    source = DEFAULT_CONFIG_PATH;
    input = parseYamlFile(source);
  }
  const config = validateConfig(input, source ?? 'embedded defaults');
  // an empty STATE_DIRECTORY is unset, as systemd leaves it unset without StateDirectory= (else "" would be the working directory)
  const dataDir = resolve(options.dataDir ?? config.dataDir ?? (env.STATE_DIRECTORY?.split(':')[0] || DEFAULT_DATA_DIR));
  return { config: { ...config, dataDir }, source, dataDir };
}

function parseYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new ConfigError(`${file}: cannot read the config file: ${code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : message}`);
  }
  try {
    // An empty file means "all defaults".
    return yaml.load(text, { filename: file }) ?? {};
  } catch (error) {
    throw new ConfigError(`${file}: invalid YAML: ${(error as Error).message}`);
  }
}

/** Zod's own words for a section given as something else ("Expected object, received array") in the loader's. */
const sectionsNamed: ZodErrorMap = (issue, context) => {
  if (issue.code === 'invalid_type' && issue.expected === 'object') {
    // a scalar given is quoted after the message (formatConfigIssues)
    const received = issue.received === 'array' ? ', got a list' : issue.received === 'null' ? ', got nothing (null)' : '';
    return { message: `expected a mapping of keys${received}` };
  }
  return { message: context.defaultError };
};

export function validateConfig(input: unknown, origin: string): Config {
  const result = configSchema().safeParse(input, { errorMap: sectionsNamed });
  if (result.success) return result.data;
  throw new ConfigError(`${origin}: invalid configuration:\n${formatConfigIssues(result.error.issues, input)}`);
}

/**
 * Keys whose values are secrets (admin.tcp.token, cloud.mqtt.password, cloud.s3.secretAccessKey):
 * not repeated in errors, and printed as <redacted> by --print-config, a troubleshooting command
 * whose output goes into tickets.
 */
const SECRET_KEYS = new Set(['token', 'password', 'secretAccessKey']);

/** One line per problem: `mqtt.port: expected integer 0-65535, got "abc"`. */
export function formatConfigIssues(issues: ZodIssue[], input: unknown): string {
  return issues.map((issue) => {
    const at = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((key) => (issue.path.length ? `${at}.${key}` : key));
      return keys.map((key) => `  ${key}: unknown key`).join('\n');
    }
    const given = valueAt(input, issue.path);
    // a secret is not repeated into logs and terminals
    const secret = SECRET_KEYS.has(String(issue.path.at(-1)));
    const got = given !== undefined && typeof given !== 'object' && !secret ? `, got ${JSON.stringify(given)}` : '';
    return `  ${at}: ${issue.message}${got}`;
  }).join('\n');
}

function valueAt(input: unknown, path: Array<string | number>): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

export function printableConfig(loaded: LoadedConfig): string {
  const redacted = (key: string, value: unknown) => (SECRET_KEYS.has(key) && typeof value === 'string' ? '<redacted>' : value);
  // the paths in the data directory unless set, as the daemon takes them
  const { config, dataDir } = loaded;
  const effective = { ...config, admin: { ...config.admin, socket: adminSocketPath(config, dataDir) }, s3: { ...config.s3, shareRoot: shareRootPath(config, dataDir) } };
  return `# effective configuration (from ${loaded.source ?? 'embedded defaults'})\n${yaml.dump(effective, { lineWidth: 120, replacer: redacted })}`;
}

/** The admin API's socket: `admin.socket`, else `<dataDir>/admin.sock`. */
export function adminSocketPath(config: Config, dataDir: string): string {
  return config.admin.socket ?? join(dataDir, 'admin.sock');
}

/** The file share's root, one directory per bucket: `s3.shareRoot`, else `<dataDir>/share`. */
export function shareRootPath(config: Config, dataDir: string): string {
  return config.s3.shareRoot ?? join(dataDir, 'share');
}
