// Starting outpostd for a bench: dist/bin/outpostd.js with a generated config in
// a directory of the bench's, ready once its admin API answers (the admin socket
// opens after every listener), with the ports it bound read from /v1/status.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { boardBenchConfig, REPO_ROOT } from './brokers.mjs';
import { tail, track } from './proc.mjs';

/**
 * One request to the admin API over its Unix socket, `body` sent as JSON; resolves with {status,
 * body} (the JSON answer, or {raw} when it is not JSON), rejects when nothing answers.
 */
export function adminRequest(socketPath, method, path, body, timeoutMs = 30000) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath, path, method, timeout: timeoutMs,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        let parsed;
        try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { raw: text }; }
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Starts outpostd with `config` (JSON is YAML) in `dir`; `nodeArgs` go before the
 * script (e.g. --cpu-prof). NODE_OPTIONS is cleared so the bench's own flags
 * don't leak into the daemon. With `board` (loadBoardProfile), the daemon runs as
 * that profile sets it up: its NODE_OPTIONS, node flags, environment, and `config`
 * over the profile's config section. The daemon runs in `dir`, so that what node flags write
 * into the working directory (--perf-prof's jit-*.dump, a --cpu-prof without a directory) goes
 * with the bench's temporary files, not into the repository.
 */
export async function spawnOutpostd({ dir: given, config, nodeArgs = [], board = null, dist = join(REPO_ROOT, 'dist'), timeoutMs = 30000 }) {
  const dir = resolve(given);
  const configFile = join(dir, 'outpost.yaml');
  writeFileSync(configFile, `${JSON.stringify(boardBenchConfig(board, config), null, 2)}\n`);
  const dataDir = join(dir, 'data');
  const socket = join(dataDir, 'admin.sock');
  const env = { ...process.env, NOTIFY_SOCKET: '' };
  delete env.NODE_OPTIONS;
  if (board) {
    Object.assign(env, board.environment);
    if (board.nodeOptions.length) env.NODE_OPTIONS = board.nodeOptions.join(' ');
  }
  // tracked: killed when the bench exits, also on an uncaught error (installExitHooks)
  const child = track(spawn(process.execPath, [...(board?.nodeArgs ?? []), ...nodeArgs, join(resolve(dist), 'bin', 'outpostd.js'), '--config', configFile, '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir }));
  const logs = [tail(child.stdout), tail(child.stderr)];
  let exited = null;
  child.once('exit', (code, signal) => { exited = signal ?? `code ${code}`; });
  const output = () => logs.map((t) => t()).join('').trim();

  let listeners;
  const deadline = Date.now() + timeoutMs;
  while (!listeners) {
    if (exited !== null) throw new Error(`outpostd exited (${exited}) before it was ready:\n${output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`outpostd not ready in ${timeoutMs} ms:\n${output()}`);
    }
    const status = await adminRequest(socket, 'GET', '/v1/status', undefined, 2000).catch(() => undefined);
    if (status?.status === 200) listeners = status.body.listeners;
    else await sleep(100);
  }
  const port = (name) => listeners.find((listener) => listener.name === name)?.port;
  /** The JSON body of a GET of the admin API (e.g. '/v1/s3/endpoint': the key the daemon keeps for its CLI). */
  const admin = async (path) => (await adminRequest(socket, 'GET', path)).body;
  return { child, pid: child.pid, dir, dataDir, socket, listeners, port, admin, output, exited: () => exited };
}
