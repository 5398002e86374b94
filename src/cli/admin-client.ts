import type { ClientRequest } from 'node:http';
import { http } from '../node-http.js';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Socket } from 'node:net';

export const SYSTEMD_SOCKET = '/run/outpost/admin.sock';
export const CHECKOUT_SOCKET = 'data/admin.sock';

/** How long a request may wait for a connection, and an ordinary request for its answer. */
const ANSWER_TIMEOUT_SECONDS = 15;
// A request that waits for its answer without a limit still notices a peer that went away (TCP only).
const KEEPALIVE_IDLE_MS = 30_000;

/** The admin socket, or the admin API over TCP (admin.tcp) with its bearer token. */
export type Connection = { socket: string } | { url: URL; token?: string };

export interface CallOptions {
  /**
   * Wait for the answer however long it takes: an invocation runs up to its function's Timeout
   * (900 s at most) after waiting for an instance, a deploy as long as installing its packages takes.
   */
  waitForAnswer?: boolean;
}

/** Thrown for anything that should end the CLI with a one-line reason and exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

/** A command line the CLI cannot run (exit code 2, as commander's own usage errors). */
export class UsageError extends CliError {
  override name = 'UsageError';
}

/**
 * --socket, then $OUTPOST_SOCKET, then the systemd socket if present, then ./data/admin.sock (npm start).
 * An empty $OUTPOST_SOCKET is unset, as the shell's `${OUTPOST_SOCKET:-…}` takes it: as a path it named no socket.
 */
export function resolveSocket(given: string | undefined): string {
  return given ?? (process.env.OUTPOST_SOCKET || undefined) ?? (systemdSocketPresent() ? SYSTEMD_SOCKET : CHECKOUT_SOCKET);
}

/**
 * Whether the systemd socket is there, seen or not: /run/outpost (0750) hides it from a user outside
 * its group, who is then told so (permissionDenied) rather than sent to ./data/admin.sock.
 */
function systemdSocketPresent(): boolean {
  try {
    statSync(SYSTEMD_SOCKET);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EACCES';
  }
}

/**
 * The admin API's address as --url or $OUTPOST_URL gives it. Only http: the daemon's admin.tcp
 * listener speaks plain HTTP, and an https:// taken as http:// would send the token unencrypted.
 */
export function parseAdminUrl(text: string): URL {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url?.protocol !== 'http:' || !url.hostname) throw new Error('expected http://HOST:PORT (outpostd\'s admin.tcp listener speaks plain HTTP)');
  return url;
}

/** One JSON request to the admin API; refusals become a CliError carrying the daemon's reason. */
export function callAdmin<T = any>(connection: Connection, method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const target = 'url' in connection ? new URL(path, connection.url) : undefined;
  const where = 'url' in connection ? connection.url.origin : connection.socket;
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath: 'socket' in connection ? connection.socket : undefined,
      host: target?.hostname,
      port: target?.port,
      path: target ? target.pathname + target.search : path,
      method,
      headers: {
        ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
        ...('token' in connection && connection.token ? { Authorization: `Bearer ${connection.token}` } : {}),
      },
      // from the start: it bounds the wait for a connection as well
      timeout: ANSWER_TIMEOUT_SECONDS * 1000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          parsed = undefined;
        }
        const status = res.statusCode ?? 500;
        const answer = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as { error?: unknown } : undefined;
        // every answer of the admin API is a JSON object, a refusal's with its reason in "error"
        if (!answer || (status >= 400 && typeof answer.error !== 'string')) return reject(new CliError(notAdminApi(status, where, connection)));
        if (status >= 400) return reject(new CliError(refusal(status, answer.error as string, connection)));
        resolve(answer as T);
      });
    });
    const connected = whenConnected(req, (socket) => {
      if (!options.waitForAnswer) return;
      socket.setTimeout(0);
      socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    });
    req.on('timeout', () => req.destroy(new TimedOut()));
    req.on('error', (error: NodeJS.ErrnoException) => reject(requestFailure(error, where, connected())));
    req.end(payload);
  });
}

/** The daemon's reason for a refusal; a token refused over TCP also says which token it wants and how to give it. */
function refusal(status: number, reason: string, connection: Connection): string {
  if (status !== 401 || !('url' in connection)) return reason;
  return `${reason} for ${connection.url.origin}: give the daemon's admin.tcp.token with --token or $OUTPOST_TOKEN`;
}

/** An answer that is not the admin API's: `--url` given the HTTP or S3 port (8080, 9000) rather than admin.tcp's. */
function notAdminApi(status: number, where: string, connection: Connection): string {
  return `${where} answered HTTP ${status}, not as outpostd's admin API: `
    + ('url' in connection ? "--url takes its admin.tcp listener's address (admin-tcp in outpost status)" : 'is it outpostd\'s admin socket (admin.socket)?');
}

/** The socket's timeout fired: before it connected, or while the request waited for its answer. */
class TimedOut extends Error {}

/** Runs `then` once the request's socket is connected; the returned function tells whether it is. */
function whenConnected(req: ClientRequest, then: (socket: Socket) => void): () => boolean {
  let connected = false;
  req.on('socket', (socket: Socket) => {
    const onConnect = () => {
      connected = true;
      then(socket);
    };
    if (socket.connecting) socket.once('connect', onConnect);
    else onConnect();
  });
  return () => connected;
}

/**
 * Why a request failed, in the user's terms: a daemon that could not be reached is not one that
 * was reached and then did not answer (a timeout then is the daemon's, not the connection's).
 */
function requestFailure(error: NodeJS.ErrnoException, where: string, connected: boolean): CliError {
  if (error instanceof TimedOut) {
    return new CliError(connected ? `outpostd did not answer within ${ANSWER_TIMEOUT_SECONDS} s (at ${where})`
      : `cannot reach outpostd at ${where}: no connection within ${ANSWER_TIMEOUT_SECONDS} s`);
  }
  if (connected) return new CliError(`outpostd at ${where} closed the connection without an answer: ${error.message}`);
  const why = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? `is outpostd running?${notRunningHint(where)}`
    : error.code === 'EACCES' ? permissionDenied(where) : error.message;
  return new CliError(`cannot reach outpostd at ${where}: ${why}`);
}

/** Where to look when a default socket has no daemon: the service, or (no socket given at all) which socket that was. */
function notRunningHint(socket: string): string {
  if (socket === SYSTEMD_SOCKET) return ' (systemctl status outpost)';
  if (socket === CHECKOUT_SOCKET) return ' (no socket given, so npm start\'s in this directory; --socket PATH or $OUTPOST_SOCKET names another)';
  return '';
}

/**
 * EACCES on the admin socket: it is open to its owner and its group only (mode 0660, admin.group),
 * as may be its directory (/run/outpost is 0750). Names that group, read from the socket or, when
 * the directory hides it, from the directory, and how to join it.
 */
function permissionDenied(socket: string): string {
  const group = [socket, dirname(socket)].map(groupOf).find((name) => name !== undefined);
  if (group === undefined) return 'permission denied: the admin socket is only for its owner and its group; run outpost as one of them (or with sudo)';
  // joining root's group is no advice: the daemon's admin.group names the group meant for operators
  if (group === 'root' || group === '0') return 'permission denied: the admin socket is only for its owner and group root; run outpost with sudo, or give the daemon an operators\' group (admin.group)';
  return `permission denied: the admin socket is only for its owner and group ${group}; `
    + `add yourself to the group (sudo usermod -aG ${group} "$USER", then log in again), or run outpost with sudo`;
}

/** The name of a file's group (its number when the system has no name for it), undefined when it cannot be seen. */
function groupOf(path: string): string | undefined {
  let gid: number;
  try {
    gid = statSync(path).gid;
  } catch {
    return undefined;
  }
  try {
    // getent, as the daemon looks up admin.group: /etc/group is not the only source of groups (NSS)
    return execFileSync('getent', ['group', String(gid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).split(':')[0] || String(gid);
  } catch {
    return String(gid);
  }
}

/**
 * A request for several things that the daemon did only in part (dead letters not retried): the
 * command fails with each reason and the things it held back (the first few of each).
 */
export function failIfSkipped(skipped: ReadonlyArray<{ id: number; reason: string }>): void {
  if (skipped.length === 0) return;
  const byReason = new Map<string, number[]>();
  for (const { id, reason } of skipped) {
    const ids = byReason.get(reason) ?? [];
    ids.push(id);
    byReason.set(reason, ids);
  }
  const shown = 10;
  throw new CliError([...byReason].map(([reason, ids]) =>
    `skipped ${ids.slice(0, shown).join(', ')}${ids.length > shown ? ` and ${ids.length - shown} more` : ''}: ${reason}`).join('; '));
}
