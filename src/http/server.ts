import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { trackBody } from './body.js';
import { Router } from './router.js';
import type { Listener } from '../service.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => void | Promise<void>;

/**
 * The daemon's public HTTP port: /healthz and /metrics now; the shadow REST
 * API, data-plane publish and HTTP-triggered functions register routes here.
 */
export class HttpServer {
  readonly routes = new Router<HttpHandler>();
  private server: Server | undefined;
  private boundPort = 0;

  constructor(private readonly host: string, private readonly port: number, private readonly log: Logger) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.serve(req, res, false));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res, true));
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
    closeTimedOutConnectionsAfterReads(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    const found = this.routes.match(req.method ?? 'GET', url.pathname);
    try {
      if (!found) return sendJson(res, 404, { message: `Not Found: ${url.pathname}` });
      if ('allowed' in found) {
        res.setHeader('Allow', found.allowed.join(', '));
        return sendJson(res, 405, { message: `Method ${req.method} not allowed` });
      }
      await found.handler(req, res, found.params, url);
    } catch (error) {
      this.log.error({ err: error, url: req.url }, 'http request failed');
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    }
  }
}

/**
 * Closes a connection whose timeout fired (keep-alive's, or `server.timeout`) only if nothing was
 * read on it meanwhile. Node runs due timers before it reads sockets, so after the event loop was
 * busy (a large write, a collection), a request that reached a keep-alive connection just before its
 * timeout would be found only after the timer closed the connection, and its client would see a
 * reset instead of an answer; the check waits until this turn's reads are done.
 */
export function closeTimedOutConnectionsAfterReads(server: Server): void {
  // a listener of the server's 'timeout' takes over Node's destroy of the socket
  server.on('timeout', (socket: Socket) => {
    const bytesRead = socket.bytesRead;
    setImmediate(() => {
      if (socket.bytesRead === bytesRead) socket.destroy();
    });
  });
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
