import { expect } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { ROOT } from './daemon.js';
import { addThing, outpost } from './mqtt.js';
import { Sha256 } from './sigv4.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures', 'functions');

/** A function package written to a fresh temporary directory: file path → contents. */
export function writePackage(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-fn-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A function (index.js) appending each event it gets, one JSON line, to $OUT. */
export const RECORDER = 'const fs = require("node:fs");\nexports.handler = async (event) => { fs.appendFileSync(process.env.OUT, JSON.stringify(event) + "\\n"); };\n';

/**
 * A package of two RECORDER functions: `target` (for a bucket's notification rules) records its
 * events in events.jsonl, OnBus those the local bus carries on the bucket's event topic in bus.jsonl,
 * through an in-process subscription (MQTT clients may not subscribe to $outpost/objects/ unless a thing policy names it).
 */
export function objectEventRecorders(target: string, bucket: string): { dir: string; remove: () => void } {
  const fn = writePackage({ 'index.js': RECORDER });
  const recorder = (out: string) => ({ Runtime: 'nodejs20.x', Handler: 'index.handler', Environment: { Variables: { OUT: join(fn.dir, out) } } });
  writeFileSync(join(fn.dir, 'template.yaml'), JSON.stringify({ Resources: {
    [target]: { Type: 'AWS::Serverless::Function', Properties: recorder('events.jsonl') },
    OnBus: { Type: 'AWS::Serverless::Function', Properties: { ...recorder('bus.jsonl'), Events: { Objects: { Type: 'MQTT', Properties: { Topic: `$outpost/objects/${bucket}/events` } } } } },
  } }));
  return fn;
}

/** A one-function template.yaml. */
export function template(name: string, properties: Record<string, unknown>): string {
  return JSON.stringify({ Resources: { [name]: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs20.x', ...properties } } } });
}

/** `outpost --json invoke`: the Invoke result, with the CLI's exit code and stderr. */
export async function invoke(socket: string, name: string, payload: unknown = {}): Promise<{ code: number; stderr: string; result: any }> {
  const run = await outpost(socket, ['--json', 'invoke', name, '--payload', JSON.stringify(payload)]);
  return { code: run.code, stderr: run.stderr, result: run.stdout ? JSON.parse(run.stdout) : undefined };
}

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A new thing and an access key bound to it (`outpost s3 keys add --thing`): what signs data plane requests under `http.auth: sigv4`. */
export async function thingKey(socket: string, thing: string): Promise<AccessKey> {
  await addThing(socket, thing, 'unused-password');
  const added = await outpost(socket, ['s3', 'keys', 'add', '--thing', thing, '--json']);
  if (added.code !== 0) throw new Error(`s3 keys add failed: ${added.stderr}`);
  return JSON.parse(added.stdout) as AccessKey;
}

export interface LambdaRequest {
  body?: string;
  headers?: Record<string, string>;
  /** `?Qualifier=…` */
  query?: string;
}

/**
 * Lambda's Invoke API on the daemon's HTTP port, `POST /2015-03-31/functions/NAME/invocations`,
 * signed as the AWS SDK signs it (SigV4, service `lambda`) with `key`; unsigned without one.
 */
export async function lambdaInvoke(port: number, key: AccessKey | undefined, name: string, request: LambdaRequest = {}): Promise<Response> {
  const path = `/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;
  const body = request.body ?? '{}';
  let headers = request.headers ?? {};
  if (key) {
    const signer = new SignatureV4({ credentials: key, region: 'local', service: 'lambda', sha256: Sha256, uriEscapePath: true });
    const query = Object.fromEntries(new URLSearchParams(request.query ?? ''));
    ({ headers } = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port, path, query, headers: { host: `127.0.0.1:${port}`, ...headers }, body }));
  }
  return fetch(`http://127.0.0.1:${port}${path}${request.query ?? ''}`, { method: 'POST', body, headers });
}

/**
 * The faults every execution environment must survive: what the caller gets for each handler mode
 * of the fault fixtures, and whether the environment is kept or replaced afterwards.
 */
export const FAULT_CASES: Array<[mode: string, error: Record<string, unknown>, environment: 'kept' | 'replaced']> = [
  ['throw', { errorType: 'TypeError', errorMessage: 'thrown on purpose' }, 'kept'],
  ['reject', { errorType: 'RangeError', errorMessage: 'rejected on purpose' }, 'kept'],
  ['never', { errorType: 'Sandbox.Timedout', errorMessage: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/) }, 'replaced'],
  ['loop', { errorType: 'Sandbox.Timedout', errorMessage: expect.stringContaining('Task timed out after 1.00 seconds') }, 'replaced'],
  ['exit', { errorType: 'Runtime.ExitError', errorMessage: expect.stringMatching(/^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3$/) }, 'replaced'],
  ['crash', { errorType: 'Error', errorMessage: 'thrown from a timer' }, 'replaced'],
  ['unhandled', { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody awaits this' }, 'replaced'],
];

/** Whether a process runs: not gone, nor a zombie waiting for init to reap it (killed either way). */
export function processRuns(pid: number): boolean {
  return startTime(pid) !== undefined;
}

/**
 * When a running process started (clock ticks since boot, /proc/PID/stat): what tells it apart from
 * a later one given its pid. Undefined when it is gone or a zombie.
 */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ...fields] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state === 'Z' ? undefined : fields[18];
  } catch {
    return undefined;
  }
}
