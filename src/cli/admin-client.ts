import { request } from 'node:http';
import { existsSync } from 'node:fs';

export const SYSTEMD_SOCKET = '/run/outpost/admin.sock';
export const CHECKOUT_SOCKET = 'data/admin.sock';

export interface Connection {
  socket?: string;
  url?: string;
  token?: string;
}

/** Thrown for anything that should end the CLI with a one-line reason and exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

/** --socket, then $OUTPOST_SOCKET, then the systemd socket if present, then ./data/admin.sock (npm start). */
export function resolveSocket(given: string | undefined): string {
  return given ?? process.env.OUTPOST_SOCKET ?? (existsSync(SYSTEMD_SOCKET) ? SYSTEMD_SOCKET : CHECKOUT_SOCKET);
}

/** One JSON request to the admin API; refusals become a CliError carrying the daemon's reason. */
export function callAdmin<T = any>(connection: Connection, method: string, path: string, body?: unknown): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const target = connection.url ? new URL(path, connection.url) : undefined;
  const socketPath = target ? undefined : resolveSocket(connection.socket);
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath,
      host: target?.hostname,
      port: target?.port,
      path: target ? target.pathname + target.search : path,
      method,
      headers: {
        ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
        ...(connection.token ? { Authorization: `Bearer ${connection.token}` } : {}),
      },
      timeout: 15_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: any;
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          return reject(new CliError(`unexpected answer from the daemon (HTTP ${res.statusCode})`));
        }
        if ((res.statusCode ?? 500) >= 400) return reject(new CliError(parsed.error ?? `request refused (HTTP ${res.statusCode})`));
        resolve(parsed as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 15 s')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const where = socketPath ?? connection.url;
      const why = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? 'is outpostd running?'
        : error.code === 'EACCES' ? 'permission denied: are you in the outpost group?' : error.message;
      reject(new CliError(`cannot reach outpostd at ${where}: ${why}`));
    });
    req.end(payload);
  });
}
