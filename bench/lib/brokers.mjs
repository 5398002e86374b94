// Starting and stopping the brokers the benches compare: outpostd (auth and
// durability on, as shipped), mosquitto (Debian's /usr/sbin/mosquitto) and a
// bare aedes as a third reference point.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, onExit, spawnPinned, stopChild, tail, waitForPort } from './proc.mjs';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BROKERS = ['outpostd', 'mosquitto', 'aedes-bare'];
export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

let OUTPOSTD = join(REPO_ROOT, 'dist', 'bin', 'outpostd.js');
let OUTPOST_CLI = join(REPO_ROOT, 'dist', 'bin', 'outpost.js');

/** Measure another build of outpostd (its dist/ directory) instead of the repository's. */
export function useOutpostDist(distDir) {
  OUTPOSTD = join(resolve(distDir), 'bin', 'outpostd.js');
  OUTPOST_CLI = join(resolve(distDir), 'bin', 'outpost.js');
}

function run(cmd, args, { input, timeoutMs = 20000, cwd = REPO_ROOT } = {}) {
  return new Promise((resolveRun) => {
    const child = execFile(cmd, args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (err, stdout, stderr) => resolveRun({ ok: !err, code: err?.code ?? 0, stdout, stderr, err }));
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

function newestMtime(dir) {
  let newest = 0;
  const walk = (d, depth) => {
    if (depth > 12) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile() && p.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  if (existsSync(dir)) walk(dir, 0);
  return newest;
}

/** Whether dist/ is there and not older than src/ (a warning, not an error, if stale). */
export function outpostdBuildState() {
  if (!existsSync(OUTPOSTD) || !existsSync(OUTPOST_CLI)) return { built: false, stale: true };
  const stale = newestMtime(join(REPO_ROOT, 'src')) > statSync(OUTPOSTD).mtimeMs;
  return { built: true, stale };
}

export async function buildOutpost(log) {
  log('building: npm run build');
  const r = await run('npm', ['run', 'build'], { timeoutMs: 300000 });
  if (!r.ok) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
}

function makeTmp(name) {
  return mkdtempSync(join(tmpdir(), `outpost-bench-${name}-`));
}

function attachLogs(child, tmp, name) {
  const logFile = join(tmp, `${name}.log`);
  const out = createWriteStream(logFile);
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const tailErr = tail(child.stderr);
  const tailOut = tail(child.stdout);
  return { logFile, logTail: () => `${tailOut()}${tailErr()}`.trim() };
}

function handle({ name, child, port, host, tmp, logs, username, password, clientIdPrefix, keepTmp }) {
  let exited = null;
  // On an abrupt exit (Ctrl-C) the directory goes too; the broker is SIGKILLed by then.
  const forget = keepTmp ? () => {} : onExit(() => rmSync(tmp, { recursive: true, force: true }));
  child.once('exit', (code, sig) => { exited = sig ?? `code ${code}`; });
  return {
    name, child, pid: child.pid, port, host, username, password, clientIdPrefix, tmp,
    logFile: logs.logFile,
    logTail: logs.logTail,
    isDead: () => exited !== null,
    exitedHow: () => exited,
    async stop() {
      const how = await stopChild(child, 5000);
      forget();
      if (!keepTmp) rmSync(tmp, { recursive: true, force: true });
      return how;
    },
  };
}

async function ready(h, timeoutMs) {
  try {
    await waitForPort(h.port, { host: h.host, timeoutMs, isDead: h.isDead });
  } catch (err) {
    const logs = h.logTail();
    await h.stop().catch(() => {});
    throw new Error(`${h.name}: ${err.message}${h.exitedHow() ? ` (exited: ${h.exitedHow()})` : ''}${logs ? `\n--- ${h.name} output ---\n${logs}` : ''}`);
  }
}

async function startMosquitto({ cpus, keepTmp }) {
  if (!existsSync(MOSQUITTO_BIN)) throw new Error(`mosquitto not found at ${MOSQUITTO_BIN} (apt-get install mosquitto, or set MOSQUITTO_BIN)`);
  const tmp = makeTmp('mosquitto');
  const port = await freePort();
  const conf = join(tmp, 'mosquitto.conf');
  writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'max_queued_messages 0',
    'persistence false',
    '',
  ].join('\n'));
  const child = spawnPinned(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }, cpus);
  const h = handle({ name: 'mosquitto', child, port, host: '127.0.0.1', tmp, logs: attachLogs(child, tmp, 'mosquitto'), clientIdPrefix: 'bench-', keepTmp });
  await ready(h, 15000);
  return h;
}

async function startAedesBare({ cpus, keepTmp }) {
  const tmp = makeTmp('aedes');
  const port = await freePort();
  const script = join(REPO_ROOT, 'bench', 'broker', 'aedes-bare.mjs');
  const child = spawnPinned(process.execPath, [script, String(port), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT }, cpus);
  const h = handle({ name: 'aedes-bare', child, port, host: '127.0.0.1', tmp, logs: attachLogs(child, tmp, 'aedes-bare'), clientIdPrefix: 'bench-', keepTmp });
  await ready(h, 15000);
  return h;
}

/** Block-style YAML for plain data (objects, arrays, strings, numbers, booleans). */
export function toYaml(value, indent = '') {
  const scalar = (v) => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    const str = String(v);
    return /^[A-Za-z0-9_./@-][A-Za-z0-9_./@ -]*$/.test(str) && !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.]+(e[-+]?[0-9]+)?)$/i.test(str) && !str.endsWith(' ')
      ? str : JSON.stringify(str);
  };
  const lines = [];
  if (Array.isArray(value)) {
    for (const v of value) {
      if (isObject(v) || Array.isArray(v)) lines.push(`${indent}-\n${toYaml(v, `${indent}  `)}`);
      else lines.push(`${indent}- ${scalar(v)}`);
    }
  } else {
    for (const [k, v] of Object.entries(value)) {
      if (isObject(v)) lines.push(Object.keys(v).length ? `${indent}${k}:\n${toYaml(v, `${indent}  `)}` : `${indent}${k}: {}`);
      else if (Array.isArray(v)) lines.push(v.length ? `${indent}${k}:\n${toYaml(v, `${indent}  `)}` : `${indent}${k}: []`);
      else lines.push(`${indent}${k}: ${scalar(v)}`);
    }
  }
  return lines.join('\n');
}

/** Parses YAML with whichever YAML package the repository has installed. */
async function parseYaml(text) {
  try {
    const { parse } = await import('yaml');
    return parse(text);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    const jsYaml = await import('js-yaml');
    return (jsYaml.load ?? jsYaml.default.load)(text);
  }
}

/**
 * A board profile (firmware-configs/boards/<name>.yaml) as the daemon would get it from
 * systemd/install.sh: its NODE_OPTIONS, node command-line flags, environment and config section.
 */
export async function loadBoardProfile(name) {
  const file = join(REPO_ROOT, 'firmware-configs', 'boards', `${name}.yaml`);
  if (!existsSync(file)) throw new Error(`no board profile ${file}`);
  const profile = (await parseYaml(readFileSync(file, 'utf8'))) ?? {};
  return {
    name,
    nodeOptions: Array.isArray(profile.nodeOptions) ? profile.nodeOptions.map(String) : [],
    nodeArgs: Array.isArray(profile.nodeArgs) ? profile.nodeArgs.map(String) : [],
    environment: Object.fromEntries(Object.entries(profile.environment ?? {}).map(([k, v]) => [k, String(v)])),
    config: profile.config ?? {},
  };
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
function deepMerge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(base[k]) ? deepMerge(base[k], v) : v;
  return out;
}

/** The outpostd config the bench runs: the board profile's (if any) with the bench's listener, auth and log level. */
export function outpostdBenchConfig(port, board) {
  return boardBenchConfig(board, {
    mqtt: { host: '127.0.0.1', port, allowAnonymous: false },
    http: { port: 0 },
    log: { level: 'warn' },
  });
}

/** A bench's outpostd config (`bench`) over the board profile's config section, when there is a profile. */
export function boardBenchConfig(board, bench) {
  if (!board) return bench;
  const base = structuredClone(board.config);
  // The profile's admin socket (/run/outpost) and group belong to an installed system: use <data-dir>/admin.sock.
  if (isObject(base.admin)) { delete base.admin.socket; delete base.admin.group; }
  // TLS/WebSocket listeners would need certificates or fixed ports: the benches measure plain MQTT only.
  if (isObject(base.mqtt)) { delete base.mqtt.tls; delete base.mqtt.ws; }
  return { ...deepMerge(base, bench), board: board.name };
}

async function startOutpostd({ cpus, keepTmp, log, board }) {
  const state = outpostdBuildState();
  if (!state.built) {
    throw new Error(`outpostd is not built: ${OUTPOSTD} or ${OUTPOST_CLI} is missing (run \`npm run build\`, or pass --build)`);
  }
  if (state.stale) log('warning: dist/ is older than src/ — measuring the last build (pass --build to rebuild first)');
  const tmp = makeTmp('outpostd');
  const port = await freePort();
  const dataDir = join(tmp, 'data');
  const config = join(tmp, 'outpost.yaml');
  writeFileSync(config, `${toYaml(outpostdBenchConfig(port, board))}\n`);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (board) {
    Object.assign(env, board.environment);
    if (board.nodeOptions.length) env.NODE_OPTIONS = board.nodeOptions.join(' ');
  }
  const child = spawnPinned(process.execPath, [...(board?.nodeArgs ?? []), OUTPOSTD, '--config', config, '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT, env }, cpus);
  const username = 'bench';
  const password = randomBytes(18).toString('base64url');
  const h = handle({ name: 'outpostd', child, port, host: '127.0.0.1', tmp, logs: attachLogs(child, tmp, 'outpostd'), username, password, clientIdPrefix: 'bench-', keepTmp });
  await ready(h, 30000);

  // Provision the bench thing through the admin CLI, as an operator would.
  const sock = join(dataDir, 'admin.sock');
  const cli = async (args, input) => {
    let last;
    for (let attempt = 0; attempt < 5; attempt++) { // bounded: the admin socket may trail the MQTT port
      if (h.isDead()) break;
      last = await run(process.execPath, [OUTPOST_CLI, ...args, '--socket', sock], { input });
      if (last.ok) return last;
      await sleep(500);
    }
    const logs = h.logTail();
    await h.stop().catch(() => {});
    throw new Error(`outpost ${args.join(' ')} failed: ${last?.err?.message ?? 'outpostd exited'}\n${last?.stdout ?? ''}${last?.stderr ?? ''}${logs ? `\n--- outpostd output ---\n${logs}` : ''}`);
  };
  await cli(['things', 'add', username, '--password-stdin'], password);
  await cli(['things', 'policy', username, '--publish', 'bench/#', '--subscribe', 'bench/#', '--client-id', 'bench-*']);
  return h;
}

/** Starts one broker; `cpus` pins it with taskset (e.g. "0"). */
export function startBroker(name, opts) {
  switch (name) {
    case 'mosquitto': return startMosquitto(opts);
    case 'aedes-bare': return startAedesBare(opts);
    case 'outpostd': return startOutpostd(opts);
    default: throw new Error(`unknown broker "${name}" (expected one of ${BROKERS.join(', ')})`);
  }
}
