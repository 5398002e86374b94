import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { makeDirectories, syncPath } from '../store/durable-directories.js';
import { apiErrors } from './errors.js';
import type { FunctionSpec } from './template.js';

// AWS's limit for a function's unzipped code; the file count bounds the walk.
export const MAX_CODE_BYTES = 262_144_000;
export const MAX_FILES = 10_000;

export interface StagedCode {
  hash: string;
  /** `<dataDir>/functions/<name>/<hash>`: the version's code, never changed once there. */
  dir: string;
  /** True when this deploy created `dir`, so a failed deploy removes it again. */
  created: boolean;
}

export function functionRoot(dataDir: string, name: string): string {
  return join(dataDir, 'functions', name);
}

/**
 * Copies a function's code into a staging directory while hashing it together with its
 * configuration, then renames it to the hash: a version's directory appears whole or not at all.
 */
export async function stageCode(spec: FunctionSpec, codeDir: string, dataDir: string): Promise<StagedCode> {
  const root = functionRoot(dataDir, spec.name);
  const staging = join(root, `.staging-${randomBytes(6).toString('hex')}`);
  await makeDirectories(staging, 0o750);
  try {
    const hash = createHash('sha256').update(JSON.stringify(spec));
    const files = await listFiles(codeDir);
    const directories = new Set<string>();
    let total = 0;
    for (const file of files) {
      const content = await readFile(join(codeDir, file));
      total += content.length;
      if (total > MAX_CODE_BYTES) throw apiErrors.invalidParameter(`${spec.name}: code is larger than ${MAX_CODE_BYTES} bytes`);
      hash.update(`${file}\0${content.length}\0`).update(content);
      const fileDir = dirname(join(staging, file));
      await mkdir(fileDir, { recursive: true });
      for (let dir = fileDir; dir.startsWith(staging); dir = dirname(dir)) directories.add(dir);
      await writeFile(join(staging, file), content, { mode: 0o644 });
    }
    const digest = hash.digest('hex');
    const dir = join(root, digest);
    if (existsSync(dir)) {
      await rm(staging, { recursive: true, force: true });
      return { hash: digest, dir, created: false };
    }
    // the version is recorded once this returns: a power cut must not leave its code empty or partial
    for (const file of files) await syncPath(join(staging, file));
    for (const stagedDir of directories) await syncPath(stagedDir);
    await rename(staging, dir);
    await syncPath(root);
    return { hash: digest, dir, created: true };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    await removeIfEmpty(root);
    throw error;
  }
}

/** Removes a staged version's code again (a failed deploy), and its function's directory if that was all it held (a new function's). */
export async function unstageCode(staged: StagedCode): Promise<void> {
  await rm(staged.dir, { recursive: true, force: true });
  await removeIfEmpty(dirname(staged.dir));
}

async function removeIfEmpty(dir: string): Promise<void> {
  // ENOTEMPTY: the function's other versions are there
  await rmdir(dir).catch(() => undefined);
}

/**
 * What a deploy or a removal cut short by a crash left under `<dataDir>/functions`: unpacked
 * packages, staging directories, code directories no version records (staged, not yet recorded),
 * and the directories of functions that no longer exist. `hashesOf` gives a function's recorded
 * code hashes, undefined for a function that does not exist. Run before any deploy can start.
 */
export async function sweepLeftoverCode(dataDir: string, hashesOf: (name: string) => Set<string> | undefined): Promise<string[]> {
  const functionsDir = join(dataDir, 'functions');
  const removed: string[] = [];
  const remove = async (path: string) => {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  };
  for (const entry of await readdir(functionsDir, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const path = join(functionsDir, entry.name);
    const hashes = entry.name.startsWith('.') ? undefined : hashesOf(entry.name);
    if (!hashes) {
      await remove(path);
      continue;
    }
    for (const inner of await readdir(path, { withFileTypes: true })) {
      if (inner.isDirectory() && (inner.name.startsWith('.staging-') || (/^[0-9a-f]{64}$/.test(inner.name) && !hashes.has(inner.name)))) {
        await remove(join(path, inner.name));
      }
    }
  }
  return removed;
}

/** Regular files under `dir`, relative and sorted so the hash does not depend on directory order. */
async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      // Symbolic links are left out: they could point outside the package (node_modules/.bin ones are not needed to run).
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) found.push(relative(dir, path));
      if (found.length > MAX_FILES) throw apiErrors.invalidParameter(`${dir}: more than ${MAX_FILES} files`);
    }
  }
  return found.sort();
}

/** The code directory a template names, which must be a directory. */
export async function checkCodeDir(codeDir: string, name: string): Promise<void> {
  const stat = await lstat(codeDir).catch(() => undefined);
  if (!stat?.isDirectory()) throw apiErrors.invalidParameter(`${name}.CodeUri: ${codeDir} is not a directory`);
}
