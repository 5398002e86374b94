import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
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
  const dataDir = resolve(options.dataDir ?? config.dataDir ?? env.STATE_DIRECTORY?.split(':')[0] ?? DEFAULT_DATA_DIR);
  return { config: { ...config, dataDir }, source, dataDir };
}

function parseYamlFile(file: string): unknown {
  const doc = YAML.parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${file}: invalid YAML: ${doc.errors[0].message}`);
  }
  // An empty file means "all defaults".
  return doc.toJS() ?? {};
}

export function validateConfig(input: unknown, origin: string): Config {
  const result = configSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(`${origin}: invalid configuration:\n${formatConfigIssues(result.error.issues)}`);
}

/** One line per problem: `mqtt.port: expected integer 0-65535, got "abc"`. */
export function formatConfigIssues(issues: z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const at = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((key) => (issue.path.length ? `${at}.${key}` : key));
      return keys.map((key) => `  ${key}: unknown key`).join('\n');
    }
    const got = 'input' in issue && issue.input !== undefined ? `, got ${JSON.stringify(issue.input)}` : '';
    return `  ${at}: ${issue.message}${got}`;
  }).join('\n');
}

export function printableConfig(loaded: LoadedConfig): string {
  return `# effective configuration (from ${loaded.source ?? 'embedded defaults'})\n${YAML.stringify(loaded.config)}`;
}
