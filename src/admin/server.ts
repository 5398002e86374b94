import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../node-http.js';
import { chmodSync, chownSync, existsSync, lstatSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { listenOn } from '../listen.js';
import { connect } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { AdminError, type AdminRouter } from './router.js';
import type { Listener } from '../service.js';
import { CONNECTIONS_CHECKING_INTERVAL_MS, closeConnectionsCleanly, ConnectionTurns, isPercentEncoded, limitConnections, requestUrl } from '../http/server.js';
import { inexactIntegers } from '../json-integers.js';
import { isDiskFull } from '../store/storage-errors.js';
import { BodyMemoryFullError, type BodyMemory } from '../http/body-memory.js';

// A synchronous invoke carries up to 6 MB of payload, plus the request around it.
const MAX_BODY_BYTES = 7 * 1024 * 1024;
/** Connections open at once on the admin socket (CLI processes, `outpost logs -f` among them). */
const MAX_SOCKET_CONNECTIONS = 64;
/** A live daemon's socket accepts at once (the kernel does it); one this slow is taken as live too. */
const PROBE_TIMEOUT_MS = 2000;

export interface AdminServerOptions {
  /** Bodies are held whole in this memory, shared with the other listeners. */
  bodyMemory: BodyMemory;
  socketPath: string;
  group?: string;
  tcp?: { host: string; port: number; token: string; maxConnections: number };
}

/**
 * The admin API: JSON over HTTP on a Unix socket that only the owner and its
 * group can open (mode 0660), and optionally on TCP behind a bearer token.
 */
export class AdminServer {
  private readonly servers: Server[] = [];
  private readonly bound: Listener[] = [];
  private readonly turns = new ConnectionTurns();

  constructor(private readonly router: AdminRouter, private readonly options: AdminServerOptions, private readonly log: Logger) {}

  async start(): Promise<void> {
    const { socketPath } = this.options;
    await removeStaleSocket(socketPath);
    const unix = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, (req, res) => this.turns.serve(req, res, () => this.serve(req, res, false)));
    // Only the admin group reaches it, but a script looping over `outpost` must not exhaust the daemon's descriptors
    unix.headersTimeout = 10_000;
    limitConnections(unix, MAX_SOCKET_CONNECTIONS, this.log);
    closeConnectionsCleanly(unix);
    await listenOn(unix, { path: socketPath }, 'admin.socket').catch((error: Error) => {
      // "listen EACCES: permission denied /run/x/admin.sock" names neither the setting nor a missing directory
      const cause = error.cause as Error;
      const why = existsSync(dirname(socketPath)) ? cause.message : `its directory ${dirname(socketPath)} does not exist`;
      throw new Error(`cannot listen on the admin socket ${socketPath} (admin.socket): ${why}`, { cause });
    });
    this.servers.push(unix);
    chmodSync(socketPath, 0o660);
    if (this.options.group) giveToGroup(socketPath, this.options.group);
    this.bound.push({ name: 'admin', protocol: 'http+unix', host: socketPath, port: 0 });

    if (this.options.tcp) {
      const { host, port, maxConnections } = this.options.tcp;
      const tcp = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, (req, res) => this.turns.serve(req, res, () => this.serve(req, res, true)));
      // Whoever reaches the port is served up to its token check: as on the HTTP port, the sockets
      // (each holding up to 16 KiB of headers) are bounded in number and in how long headers may take.
      tcp.headersTimeout = 10_000;
      limitConnections(tcp, maxConnections, this.log);
      closeConnectionsCleanly(tcp);
      await listenOn(tcp, { host, port }, 'admin.tcp');
      const address = tcp.address();
      this.servers.push(tcp);
      this.bound.push({ name: 'admin-tcp', protocol: 'http', host, port: typeof address === 'object' && address ? address.port : port });
    }
  }

  listeners(): Listener[] {
    return this.bound;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    })));
    this.servers.length = 0;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, needsToken: boolean): Promise<void> {
    try {
      if (needsToken && !this.hasToken(req)) throw new AdminError(401, 'missing or wrong bearer token');
      const url = requestUrl(req.url);
      if (!url) throw new AdminError(400, 'the request target is not a path');
      // the router finds no route for such a path: that is a malformed name, not a missing endpoint
      if (!isPercentEncoded(url.pathname)) throw new AdminError(400, `the request path is not valid percent-encoding (UTF-8): ${url.pathname}`);
      // The router skips empty segments, so a name given empty would name another route:
      // `outpost things show ""` asked for /v1/things/, the list of every thing.
      if (hasEmptySegment(url.pathname)) throw new AdminError(400, `the request path ${url.pathname} has an empty segment: a name cannot be empty`);
      const found = this.router.match(req.method ?? 'GET', url.pathname);
      if (!found) throw new AdminError(404, `no such admin endpoint: ${req.method} ${url.pathname}`);
      if ('allowed' in found) {
        res.setHeader('Allow', found.allowed.join(', '));
        throw new AdminError(405, `${req.method} is not allowed on ${url.pathname}`);
      }
      const body = await readJsonBody(req, res, this.options.bodyMemory);
      const result = await found.handler({ method: req.method ?? 'GET', path: url.pathname, params: found.params, query: url.searchParams, body });
      send(res, result.status ?? 200, result.body ?? {});
    } catch (error) {
      if (error instanceof AdminError) {
        send(res, error.status, { error: error.message });
      } else if (isDiskFull(error)) {
        // nothing of the request was kept (the store's transactions and staged files are undone); the operator frees space
        this.log.error({ err: error, url: req.url }, "admin request failed: the gateway's disk is full");
        send(res, 507, { error: `the gateway's disk is full, nothing was changed: ${(error as Error).message}` });
      } else {
        this.log.error({ err: error, url: req.url }, 'admin request failed');
        send(res, 500, { error: `internal error: ${(error as Error).message}` });
      }
    }
  }

  private hasToken(req: IncomingMessage): boolean {
    const expected = Buffer.from(`Bearer ${this.options.tcp?.token ?? ''}`);
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function hasEmptySegment(path: string): boolean {
  return path.includes('//') || (path.length > 1 && path.endsWith('/'));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The request's JSON body (undefined when empty). Past MAX_BODY_BYTES it is refused with 413, and
 * past what `memory` has left with 503; the connection then closes after the answer. Events rather
 * than `for await`: an async iterator costs more than a small body.
 */
function readJsonBody(req: IncomingMessage, res: ServerResponse, memory: BodyMemory): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (error: AdminError) => {
      req.off('data', onData);
      chunks.length = 0;
      // the rest is read and dropped after the answer (closeConnectionsCleanly), not kept
      res.setHeader('Connection', 'close');
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) refuse(new AdminError(413, `request body over ${MAX_BODY_BYTES} bytes`));
      else if (!memory.take(res, chunk.length)) refuse(new AdminError(503, new BodyMemoryFullError(memory.maxBytes).message));
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('error', reject);
    req.once('close', () => {
      if (!req.readableEnded) reject(new Error('request closed before its body ended'));
    });
    req.once('end', () => {
      try {
        resolve(parseJson(chunks, size));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** RFC 8259 §8.1: JSON is UTF-8. Decoded leniently, a stray byte would become U+FFFD in a password or a name. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body as JSON, refused whole when JSON.parse would round one of its integers: a shadow update
 * from `outpost shadow` is then refused as the same update over MQTT is, not stored altered.
 */
function parseJson(chunks: Buffer[], size: number): unknown {
  if (size === 0) return undefined;
  let text: string;
  try {
    text = utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  } catch {
    throw new AdminError(400, 'request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AdminError(400, 'request body is not valid JSON');
  }
  const [inexact] = inexactIntegers(text);
  if (inexact !== undefined) throw new AdminError(400, `Integer ${inexact} is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string`);
  return value;
}

/**
 * A socket file left by a killed daemon would make listen() fail with EADDRINUSE, so it goes; one
 * that answers belongs to a daemon still running (another data directory, the same admin.socket)
 * and is never removed: that daemon would lose its admin API without noticing.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!stats.isSocket()) return;
  if (await answers(path)) throw new Error(`another outpostd is running: its admin socket ${path} answers (admin.socket); stop it first, or give this one another admin.socket`);
  unlinkSync(path);
}

/** Whether something listens on the Unix socket `path`; only a refused connection means nobody does. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const done = (result: boolean | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // EAGAIN: its backlog is full, so something listens; anything else (EACCES) is no answer to act on
      if (error.code === 'ECONNREFUSED') done(false);
      else if (error.code === 'EAGAIN') done(true);
      else done(new Error(`cannot tell whether the admin socket ${path} is still in use: ${error.message}`));
    });
  });
}

/**
 * Gives the socket to admin.group. A socket made by a daemon already running as that group (the
 * unit's Group=outpost) has it: no chown then, which matters because the unit's system call
 * filter (~@privileged, which holds @chown) refuses every chown with EPERM.
 */
function giveToGroup(path: string, group: string): void {
  const gid = groupId(group);
  if (statSync(path).gid === gid) return;
  try {
    chownSync(path, process.getuid!(), gid);
  } catch (error) {
    throw new Error(`cannot give the admin socket ${path} to group ${group} (admin.group): ${(error as Error).message}; `
      + 'run the daemon with that group (Group= in its unit), or leave admin.group unset', { cause: error });
  }
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let entry: string;
  try {
    entry = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (error) {
    // getent exits 2 for a group it does not know
    if ((error as { status?: number }).status === 2) throw new Error(`admin.group ${group}: no such group`);
    throw new Error(`admin.group ${group}: cannot look it up with getent: ${(error as Error).message}`, { cause: error });
  }
  return Number(entry.split(':')[2]);
}
