import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../node-http.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import { trackBody } from './body.js';
import { collectBufferGarbage } from '../buffer-garbage.js';
import { Router } from './router.js';
import { listenOn } from '../listen.js';
import type { Listener } from '../service.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => void | Promise<void>;

/**
 * Serves the requests pipelined on a connection one after another. Node hands them over as it
 * parses them, but RFC 9112 §9.3.2 lets a server run only safe ones in parallel, and a client
 * expects each to see the writes answered before it: a PUT then a DELETE of an object sent back to
 * back left the object there when both ran at once. Each request waits for the one before it; past
 * MAX_WAITING_REQUESTS waiting on a connection it is read no further until half of them are served
 * (a request without a body costs a few KiB, and a flood of them would otherwise be read whole).
 */
export class ConnectionTurns {
  private readonly connections = new WeakMap<Duplex, { last: Promise<void>; res: ServerResponse; waiting: number; paused: boolean }>();

  /** Serves `req` with `serve` once the requests before it on its connection are served. */
  serve(req: IncomingMessage, res: ServerResponse, serve: () => Promise<void>): void {
    const socket = req.socket;
    const turns = this.connections.get(socket);
    if (!turns) {
      const first = { last: serve().finally(() => this.served(socket, first)), res, waiting: 1, paused: false };
      this.connections.set(socket, first);
      return;
    }
    turns.waiting++;
    turns.res = res;
    turns.last = turns.last.then(serve, serve).finally(() => this.served(socket, turns));
    if (turns.waiting > MAX_WAITING_REQUESTS && !turns.paused) {
      turns.paused = true;
      socket.pause();
    }
  }

  /** Resolves once the answers to the requests served or waiting on `socket` are sent (false: the last one was cut off). */
  async answered(socket: Duplex): Promise<boolean> {
    const turns = this.connections.get(socket);
    if (!turns) return true;
    const { last, res } = turns;
    await last;
    return finished(res).then(() => true, () => false);
  }

  /** Whether a request is being served on `socket`. */
  busy(socket: Duplex): boolean {
    return this.connections.has(socket);
  }

  private served(socket: Duplex, turns: { waiting: number; paused: boolean }): void {
    turns.waiting--;
    if (turns.waiting === 0) this.connections.delete(socket);
    if (turns.paused && turns.waiting <= MAX_WAITING_REQUESTS / 2) {
      turns.paused = false;
      socket.resume();
    }
  }
}

/** Requests pipelined on one connection that wait for their turn before it is read further (ConnectionTurns). */
const MAX_WAITING_REQUESTS = 16;

/**
 * The daemon's public HTTP port: /healthz and /metrics now; the shadow REST
 * API, data-plane publish and HTTP-triggered functions register routes here.
 */
export class HttpServer {
  readonly routes = new Router<HttpHandler>();
  private server: Server | undefined;
  private boundPort = 0;
  private readonly turns = new ConnectionTurns();

  constructor(private readonly host: string, private readonly port: number, private readonly maxConnections: number, private readonly log: Logger) {}

  async start(): Promise<void> {
    const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, (req, res) => this.turns.serve(req, res, () => this.serve(req, res, false)));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.turns.serve(req, res, () => this.serve(req, res, true)));
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
    limitConnections(server, this.maxConnections, this.log);
    closeConnectionsCleanly(server);
    await listenOn(server, { host: this.host, port: this.port }, 'http');
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.port;
    this.server = server;
  }

  listeners(): Listener[] {
    return this.server ? [{ name: 'http', protocol: 'http', host: this.host, port: this.boundPort }] : [];
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeServer(server, 2000);
  }

  /** `awaitsContinue`: the client sent `Expect: 100-continue` and waits for it before the body. */
  private async serve(req: IncomingMessage, res: ServerResponse, awaitsContinue: boolean): Promise<void> {
    trackBody(req, res, awaitsContinue);
    try {
      const url = requestUrl(req.url);
      if (!url) return sendJson(res, 400, { message: 'Bad Request: the request target is not a path' });
      // the router finds no route for such a path: a malformed name (a topic, a thing), not a missing endpoint
      if (!isPercentEncoded(url.pathname)) return sendJson(res, 400, { message: `Bad Request: the request path is not valid percent-encoding (UTF-8): ${url.pathname}` });
      const found = this.routes.match(req.method ?? 'GET', url.pathname);
      if (!found) return sendJson(res, 404, { message: `Not Found: ${url.pathname}` });
      if ('allowed' in found) {
        res.setHeader('Allow', found.allowed.join(', '));
        return sendJson(res, 405, { message: `Method ${req.method} not allowed` });
      }
      await found.handler(req, res, found.params, url);
    } catch (error) {
      // the path only: a presigned URL's query is a credential until it expires
      this.log.error({ err: error, path: req.url?.split('?')[0] }, 'http request failed');
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    }
  }
}

/** Whether the path's %-escapes decode (to UTF-8). */
export function isPercentEncoded(path: string): boolean {
  if (!path.includes('%')) return true;
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The request target as a URL, its path as sent: `//x/y` is the path `//x/y` (a URL parser reads a
 * host `x` in it, which the path signed and the path routed must not differ by, and `//[` makes it
 * throw). undefined: not a path (RFC 9112 §3.2: origin-form; the absolute form is for proxies).
 */
export function requestUrl(target = '/'): URL | undefined {
  if (!target.startsWith('/')) return undefined;
  try {
    return new URL(`http://localhost${target}`);
  } catch {
    return undefined;
  }
}

/** How often timed-out header reads are looked for (Node's default, 30 s, lets one hold its socket twice its timeout). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 2_000;

/**
 * At most `max` sockets at once, each holding up to Node's 16 KiB of headers while they arrive: Node
 * closes a socket beyond it as it is accepted. Refusals are logged at most once a minute. A socket
 * that sends nothing within the server's headersTimeout is closed: Node times headers from their
 * first byte, so connections that never send one held their places for good (the port refused all
 * others until they went).
 */
export function limitConnections(server: Server, max: number, log: Logger): void {
  server.maxConnections = max;
  server.on('connection', (socket: Socket) => {
    const silent = setTimeout(() => { if (socket.bytesRead === 0) socket.destroy(); }, server.headersTimeout).unref();
    socket.once('close', () => clearTimeout(silent));
  });
  let refused = 0;
  let loggedAt = -Infinity;
  server.on('drop', () => {
    refused++;
    if (performance.now() - loggedAt < 60_000) return;
    log.warn({ refused, maxConnections: max }, 'connections refused: maxConnections reached');
    loggedAt = performance.now();
    refused = 0;
  });
}

/**
 * How a connection ends, on each of the daemon's HTTP servers: never with a reset its client could
 * have been spared. Call it once the server's own 'checkContinue' listener, if any, is on.
 */
export function closeConnectionsCleanly(server: Server): void {
  closeTimedOutConnectionsAfterReads(server);
  lingerAfterUnreadBodies(server);
}

/**
 * Closes a connection whose timeout fired (keep-alive's, or `server.timeout`) only if nothing was
 * read on it meanwhile. Node runs due timers before it reads sockets, so after the event loop was
 * busy (a large write, a collection), a request that reached a keep-alive connection just before its
 * timeout would be found only after the timer closed the connection, and its client would see a
 * reset instead of an answer; the check waits until this turn's reads are done.
 */
function closeTimedOutConnectionsAfterReads(server: Server): void {
  // a listener of the server's 'timeout' takes over Node's destroy of the socket
  server.on('timeout', (socket: Socket) => {
    const bytesRead = socket.bytesRead;
    setImmediate(() => {
      if (socket.bytesRead === bytesRead) socket.destroy();
    });
  });
}

/** A lingering close reads what the client still sends for at most this long... */
const LINGER_MAX_MS = 30_000;
/** ...and stops once nothing came for this long (Apache's lingering close: 30 s, 2 s). */
const LINGER_IDLE_MS = 2_000;

/** A socket's destroySoon, which Node's HTTP server calls once the last answer on the connection is written. */
type DestroySoon = (this: Socket) => void;

/**
 * A request refused before its body was read (a bad signature, a body over the limit) is answered
 * with `Connection: close`. Closing a socket with unread data resets it, and the reset throws away
 * the answer at a client that sends its whole body before it reads (Python's http.client, most
 * device code): it would see a broken pipe instead of the error. So such a connection is closed as
 * a web server's lingering close does: the answer, then FIN, then what the client still sends is
 * read and dropped until its body ends, it closes, or it goes quiet (LINGER_IDLE_MS, LINGER_MAX_MS).
 */
function lingerAfterUnreadBodies(server: Server): void {
  const current = new WeakMap<Socket, IncomingMessage>();
  const remember = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (!current.has(socket)) {
      const destroySoon = (socket as Socket & { destroySoon?: DestroySoon }).destroySoon;
      if (typeof destroySoon !== 'function') return;
      (socket as Socket & { destroySoon: DestroySoon }).destroySoon = function lingerUnlessRead(this: Socket) {
        const req = current.get(this);
        if (!req || req.complete || req.destroyed) destroySoon.call(this);
        else linger(this, req);
      };
    }
    current.set(socket, req);
    if (!req.complete) res.once('finish', () => drainUnreadBody(req));
  };
  server.prependListener('request', remember);
  // a server that answers Expect: 100-continue itself gets such requests there instead
  if (server.listenerCount('checkContinue') > 0) server.prependListener('checkContinue', remember);
}

/**
 * What is left of an answered request's body is read and dropped, so that the connection goes on
 * (keep-alive) or lingers to its close. Node does that itself only for a body nobody started to
 * read: one piped into a verifying stream that was then left (a request refused after its
 * signature was checked) would stay unread, its connection stalled until its timeout reset it.
 */
function drainUnreadBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  req.unpipe();
  req.on('data', (chunk: Buffer) => collectBufferGarbage(chunk.length));
  req.resume();
}

function linger(socket: Socket, req: IncomingMessage): void {
  if (socket.writable) socket.end();
  let readBefore = socket.bytesRead;
  let lingered = 0;
  const close = () => {
    clearInterval(watch);
    // the answer may still be on its way out: FIN after it, then close
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  };
  const watch = setInterval(() => {
    lingered += LINGER_IDLE_MS;
    if (socket.bytesRead === readBefore || lingered >= LINGER_MAX_MS) close();
    readBefore = socket.bytesRead;
  }, LINGER_IDLE_MS);
  // the rest of the body is read and dropped, whoever was reading it, so that it ends
  req.removeAllListeners('data');
  req.once('end', close);
  drainUnreadBody(req);
  socket.once('close', () => clearInterval(watch));
}

/** Stops accepting and closes idle connections; requests in flight get `graceMs` to finish. */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
