import { lstat, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { GroupCommit } from '../store/group-commit.js';
import { checkCodeDir, MAX_CODE_BYTES, MAX_FILES, stageCode, unstageCode, type StagedCode } from './bundle.js';
import { apiErrors } from './errors.js';
import { InitError } from './runtime/node-worker.js';
import { checkCron } from './schedules.js';
import type { FunctionStore, FunctionVersion } from './store.js';
import { parseTemplate, type FunctionSpec } from './template.js';

export interface DeployOutcome {
  name: string;
  version: number;
  hash: string;
  /** The same code and configuration as `$LATEST`: no new version. */
  unchanged: boolean;
}

export interface DeploySteps {
  dataDir: string;
  functions: FunctionStore;
  commit: GroupCommit;
  /** Loads a version's handler without giving it traffic; rejects with an InitError. */
  check: (version: FunctionVersion) => Promise<void>;
  /** Refuses reservations that would leave too little of functions.maxConcurrency unreserved (reservations.ts). */
  checkReservations: (specs: FunctionSpec[]) => void;
  /** Removes what a function the failed deploy would have created left: its check's environment and log. */
  discardNew: (name: string) => Promise<void>;
}

interface Candidate {
  spec: FunctionSpec;
  staged: StagedCode;
}

/**
 * Deploys a package: a directory with template.yaml, or a .zip of one (template.yaml at its top),
 * unpacked into a private directory under the data directory for the deploy and removed after.
 */
export async function deployPackage(path: string, steps: DeploySteps): Promise<{ outcomes: DeployOutcome[]; versions: FunctionVersion[] }> {
  if (!isAbsolute(path)) throw apiErrors.invalidParameter(`${path}: expected an absolute path`);
  if (!path.endsWith('.zip')) return deployDirectory(path, steps);
  const { unzip } = await import('./zip.js');
  await mkdir(join(steps.dataDir, 'functions'), { recursive: true, mode: 0o750 });
  const unpacked = await mkdtemp(join(steps.dataDir, 'functions', '.unpack-'));
  try {
    await unzip(path, unpacked, { maxBytes: MAX_CODE_BYTES, maxEntries: MAX_FILES });
    return await deployDirectory(unpacked, steps, basename(path));
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}

/**
 * Deploys every function of a directory's template.yaml, all or none: parse and validate, stage
 * each function's code under its content hash, load each changed handler in a fresh environment,
 * and only then record the new versions in one commit. Any failure removes what was staged and
 * leaves every function on the version it had.
 */
async function deployDirectory(path: string, steps: DeploySteps, shownAs = path): Promise<{ outcomes: DeployOutcome[]; versions: FunctionVersion[] }> {
  const specs = await readTemplate(path, shownAs);
  steps.checkReservations(specs);
  // node-cron is loaded only for a template with a cron schedule.
  for (const spec of specs) {
    for (const schedule of spec.schedules ?? []) {
      await checkCron(schedule.expression).catch((error: Error) => { throw apiErrors.invalidParameter(`${spec.name}: ${error.message}`); });
    }
  }
  const candidates: Candidate[] = [];
  try {
    for (const spec of specs) {
      const codeDir = resolve(path, spec.codeUri);
      await checkCodeDir(codeDir, spec.name);
      candidates.push({ spec, staged: await stageCode(spec, codeDir, steps.dataDir) });
    }
    const changed = candidates.filter(({ spec, staged }) => steps.functions.latest(spec.name)?.hash !== staged.hash);
    for (const candidate of changed) await checkCandidate(candidate, steps);
    const now = Date.now();
    const numbers = await steps.commit.run(() => changed.map(({ spec, staged }) => steps.functions.addVersion(spec, staged.hash, now)));
    const versions = changed.map(({ spec, staged }, i) => ({ name: spec.name, version: numbers[i], hash: staged.hash, spec, createdAt: now }));
    const outcomes = candidates.map(({ spec, staged }) => {
      const added = versions.find((version) => version.name === spec.name);
      return { name: spec.name, version: added?.version ?? steps.functions.latest(spec.name)!.version, hash: staged.hash, unchanged: !added };
    });
    return { outcomes, versions };
  } catch (error) {
    await Promise.all(candidates.filter(({ staged }) => staged.created).map(({ staged }) => unstageCode(staged)));
    for (const { spec } of candidates) if (!steps.functions.latest(spec.name)) await steps.discardNew(spec.name);
    throw error;
  }
}

/** `path` is a directory holding template.yaml (or .yml); errors name it as `shownAs`. */
async function readTemplate(path: string, shownAs: string): Promise<FunctionSpec[]> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat?.isDirectory()) throw apiErrors.invalidParameter(`${shownAs}: not a directory or .zip the daemon can read`);
  for (const name of ['template.yaml', 'template.yml']) {
    const file = join(path, name);
    const source = await readFile(file, 'utf8').catch(() => undefined);
    if (source === undefined) continue;
    const specs = parseTemplate(source, name);
    const names = specs.map((spec) => spec.name);
    const duplicate = names.find((name, i) => names.indexOf(name) !== i);
    if (duplicate) throw apiErrors.invalidParameter(`${name}: function ${duplicate} is defined twice`);
    return specs;
  }
  throw apiErrors.invalidParameter(`${shownAs}: no template.yaml (or template.yml)`);
}

function checkCandidate({ spec, staged }: Candidate, steps: DeploySteps): Promise<void> {
  return checkVersion({ name: spec.name, version: 0, hash: staged.hash, spec, createdAt: Date.now() }, steps.functions.latest(spec.name), steps.check);
}

/** Loads a version's handler before it takes traffic; a failure says why and that `previous` keeps running. */
export async function checkVersion(version: FunctionVersion, previous: FunctionVersion | undefined, check: (version: FunctionVersion) => Promise<void>): Promise<void> {
  try {
    await check(version);
  } catch (error) {
    if (!(error instanceof InitError)) throw error;
    const kept = previous ? `version ${previous.version} keeps running` : 'nothing was deployed';
    throw apiErrors.invalidParameter(`${version.name}: the handler does not load (${kept}): ${error.message}`);
  }
}
