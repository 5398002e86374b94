import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../node-http.js';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import { AuthError, verifyRequest, type VerifyOptions } from '../auth/sigv4.js';
import { verifyPostSignature } from '../auth/sigv4-post.js';
import type { AccessKeys } from '../auth/access-keys.js';
import type { S3Config } from './config.js';
import { errors, S3Error } from './errors.js';
import { document, el, percentEncodeNotXml } from './xml.js';
import { DISCARDED_BODY_BYTES } from '../http/body.js';
import { closeServer, closeConnectionsCleanly, ConnectionTurns, CONNECTIONS_CHECKING_INTERVAL_MS, limitConnections } from '../http/server.js';
import type { Operation, OperationContext, S3Request } from './operations/context.js';
import { readTlsFiles } from '../tls-files.js';
import { GATEWAY_REGION } from '../gateway-identity.js';
import { isDiskFull } from '../store/storage-errors.js';
import { listenOn } from '../listen.js';
import type { BodyMemory } from '../http/body-memory.js';

/** The S3 API on its own port: addressing, authentication, routing to one operation, errors as S3 renders them. */
export class S3Server {
  private server: Server | undefined;
  private boundPort = 0;
  /** The operations, loaded on the first request: a gateway nobody stores objects on pays nothing for them. */
  private routes: Promise<typeof import('./routes.js')> | undefined;
  private readonly verifyOptions: VerifyOptions;
  private readonly context: OperationContext;
  private readonly turns = new ConnectionTurns();

  constructor(private readonly config: S3Config, private readonly accessKeys: AccessKeys, services: Omit<OperationContext, 'authorize' | 'formSigner'>,
    private readonly bodyMemory: BodyMemory, private readonly log: Logger, private readonly requests: (operation: string, status: number) => void) {
    this.verifyOptions = { service: 's3', secretOf: (id) => accessKeys.secretOf(id), region: config.region, regionAlias: GATEWAY_REGION };
    this.context = {
      ...services,
      authorize: (request, bucket, action) => this.authorize(request, bucket, action),
      formSigner: (fields) => verifyPostSignature(fields, this.verifyOptions),
    };
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.turns.serve(req, res, () => this.serve(req, res, false));
    const options = { connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS };
    const server = this.config.tls.enabled ? createHttpsServer({ ...options, ...this.tlsFiles() }, handler) : http.createServer(options, handler);
    // Expect: 100-continue (the AWS CLI and boto3 send it with bodies over 1 MB): the body is asked
    // for only once the request is authenticated, authorized and routed, so a refused upload is
    // refused before it is sent, as S3 does, rather than after (Node would answer 100 at once).
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.turns.serve(req, res, () => this.serve(req, res, true)));
    // after the answers to the requests before it, which the unreadable one must not cut off
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!this.turns.busy(socket)) answerUnreadableRequest(error, socket, false);
      else void this.turns.answered(socket).then((sent) => (sent ? answerUnreadableRequest(error, socket, true) : socket.destroy()));
    });
    // Large uploads take as long as they take; an idle socket does not.
    server.requestTimeout = 0;
    server.headersTimeout = 10_000;
    server.timeout = 120_000;
    limitConnections(server, this.config.maxConnections, this.log);
    closeConnectionsCleanly(server);
    await listenOn(server, { host: this.config.host, port: this.config.port }, 's3');
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.config.port;
    this.server = server;
  }

  /** Reads the TLS certificate and key again for the handshakes from now on; false without TLS. */
  reloadTls(): boolean {
    if (!this.server || !this.config.tls.enabled) return false;
    (this.server as HttpsServer).setSecureContext(this.tlsFiles());
    return true;
  }

  private tlsFiles(): { cert: Buffer; key: Buffer } {
    return readTlsFiles('s3.tls', { cert: this.config.tls.cert!, key: this.config.tls.key! }, tls);
  }

  /** Stops accepting; requests in flight get up to `graceMs` to finish. */
  async stop(graceMs = 5000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeServer(server, graceMs);
  }

  /** One request; `awaitsContinue`: its client waits for 100 Continue before it sends the body. */
  private async serve(req: IncomingMessage, res: ServerResponse, awaitsContinue: boolean): Promise<void> {
    const requestId = nextRequestId();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', hostId(requestId));
    res.setHeader('Server', 'Outpost');
    this.bodyMemory.serves(res);
    let operationName = 'Unknown';
    let resource = '/';
    let bodyAsked = !awaitsContinue;
    try {
      readTarget(req);
      const address = this.address(req);
      resource = `/${address.bucket}${address.bucket && address.key ? `/${address.key}` : ''}`;
      const { route, checkExpectedOwners, crossOriginHeaders, withHoistedHeaders } = await (this.routes ??= import('./routes.js'));
      // a page's request: its answer, an error too, carries what the bucket's CORS rules allow (a preflight is OptionsObject's)
      const { origin } = req.headers;
      if (origin !== undefined && address.bucket && req.method !== 'OPTIONS') {
        for (const [name, value] of Object.entries(crossOriginHeaders(this.context.objects, address.bucket, origin, req.method ?? 'GET'))) res.setHeader(name, value);
      }
      const headers = withHoistedHeaders(req.headers, address.query);
      const found = route(req.method ?? 'GET', address.bucket, address.key, address.query, headers);
      operationName = found.name;
      const verified = verifyRequest(req, found.objectChecksumHeaders ? { ...this.verifyOptions, bodyChecksums: false } : this.verifyOptions);
      const request: S3Request = {
        method: req.method ?? 'GET', bucket: address.bucket, key: address.key, query: address.query, headers,
        body: verified.body, contentLength: verified.contentLength, checksums: verified.checksums, accessKeyId: verified.accessKeyId,
        requestId, sourceIp: req.socket.remoteAddress ?? '', origin: address.origin,
      };
      if (found.access === 'read' || found.access === 'write') {
        try {
          this.authorize(request, address.bucket, found.access, found.notPublic === true);
        } catch (error) {
          // S3 answers NoSuchBucket for a bucket that does not exist, to whoever asks (but CreateBucket)
          if (address.bucket && found.name !== 'CreateBucket' && !this.context.objects.bucket(address.bucket)) throw errors.noSuchBucket(address.bucket);
          throw error;
        }
      }
      else if (found.access === 'administer' && !(request.accessKeyId && this.accessKeys.administersBuckets(request.accessKeyId))) throw errors.accessDenied();
      else if (found.access === 'signed' && !request.accessKeyId) throw errors.accessDenied();
      checkExpectedOwners(request);
      // asked for once the operation reads it: one its checks refuse on the headers alone (NoSuchBucket,
      // EntityTooLarge, InvalidDigest) is answered before the client sends the body (S3: "if the message
      // is rejected based on the headers, the body of the message is not sent")
      if (!bodyAsked) {
        onFirstRead(request.body, () => {
          if (bodyAsked || res.headersSent) return;
          res.writeContinue();
          bodyAsked = true;
        });
      }
      const stopWatching = this.watchForStall(req, res, resource, requestId, () => bodyAsked);
      try {
        await (found.operation as Operation)(request, res, this.context);
      } finally {
        stopWatching();
      }
    } catch (error) {
      await this.fail(req, res, error, resource, requestId, bodyAsked);
    } finally {
      this.requests(operationName, res.statusCode);
    }
  }

  /**
   * S3 RequestTimeout: a body that stops coming for `bodyIdleTimeoutSeconds` is answered, then its
   * connection closed, which fails the operation as a client that went away does (nothing written;
   * the connection's lingering close would only leave the operation waiting for the rest of the
   * body). Only the client's silence counts: while bytes received wait for the operation (a slow
   * disk holding it back), the wait is the gateway's.
   */
  private watchForStall(req: IncomingMessage, res: ServerResponse, resource: string, requestId: string, bodyAsked: () => boolean): () => void {
    if (req.complete) return () => undefined;
    const idleMs = this.config.bodyIdleTimeoutSeconds * 1000;
    let bytesRead = req.socket.bytesRead;
    let heardAt = performance.now();
    const timer = setInterval(() => {
      if (req.complete || res.headersSent) return clearInterval(timer);
      // a client waiting for 100 Continue is silent by right
      if (req.socket.bytesRead !== bytesRead || req.readableLength > 0 || !bodyAsked()) {
        bytesRead = req.socket.bytesRead;
        heardAt = performance.now();
        return;
      }
      if (performance.now() - heardAt < idleMs) return;
      clearInterval(timer);
      this.log.info({ method: req.method, resource, idleSeconds: this.config.bodyIdleTimeoutSeconds }, 's3 request body stalled; answered RequestTimeout');
      res.once('finish', () => req.destroy());
      void this.fail(req, res, errors.requestTimeout(), resource, requestId, false);
    }, Math.min(1000, idleMs / 4));
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * A bucket configured public-read may be read by anyone (not its configuration, nor its uploads in
   * progress): anonymous callers and, as S3's policy for Principal "*" lets them, callers whose key has
   * no grant for it. Otherwise the signer needs a grant.
   */
  private authorize(request: S3Request, bucket: string, action: 'read' | 'write', notPublic = false): void {
    if (action === 'read' && !notPublic && this.config.publicReadBuckets.includes(bucket)) return;
    if (request.accessKeyId === undefined || !this.accessKeys.allows(request.accessKeyId, bucket, action)) throw errors.accessDenied();
  }

  /**
   * Path-style `/bucket/key` or virtual-host-style `bucket.<domain>/key` (domains from
   * `s3.domains`); the key is the rest of the path, percent-decoded.
   */
  private address(req: IncomingMessage): { bucket: string; key: string; query: URLSearchParams; origin: string } {
    const target = req.url ?? '/';
    const questionMark = target.indexOf('?');
    const rawPath = questionMark < 0 ? target : target.slice(0, questionMark);
    const query = new URLSearchParams(questionMark < 0 ? '' : target.slice(questionMark + 1));
    const host = req.headers.host ?? 'localhost';
    const origin = `${this.config.tls.enabled ? 'https' : 'http'}://${host}`;
    const hostname = host.replace(/:\d+$/, '').toLowerCase();
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.", { URI: rawPath });
    }
    const domain = this.config.domains.find((name) => hostname.endsWith(`.${name}`));
    if (domain) return { bucket: hostname.slice(0, -domain.length - 1), key: path.slice(1), query, origin };
    const slash = path.indexOf('/', 1);
    if (slash < 0) return { bucket: path.slice(1), key: '', query, origin };
    return { bucket: path.slice(1, slash), key: path.slice(slash + 1), query, origin };
  }

  /** Renders an error as S3 does: XML with Code, Message, the resource and the request id; HEAD gets only the status. */
  private async fail(req: IncomingMessage, res: ServerResponse, error: unknown, resource: string, requestId: string, bodyAsked: boolean): Promise<void> {
    const s3 = toS3Error(error);
    // the resource, not the URL: a presigned URL's query is a credential until it expires
    if (s3.code === 'InternalError') this.log.error({ err: error, method: req.method, resource }, 's3 request failed');
    else if (s3.code === 'InsufficientStorage') this.log.warn({ err: error, method: req.method, resource }, 's3 request refused: the disk is full');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A large unread body would be read and thrown away to keep the connection; close it instead.
    // A body never asked for (no 100 Continue) is not coming: the connection closes, as the client
    // may still send it (RFC 9110 §10.1.1).
    if (!bodyAsked || !(await discardSmallBody(req))) res.setHeader('Connection', 'close');
    for (const [name, value] of Object.entries(s3.headers)) res.setHeader(name, value);
    if (req.method === 'HEAD' || s3.status === 304) {
      res.writeHead(s3.status);
      res.end();
      return;
    }
    const body = errorDocument([['Code', s3.code], ['Message', s3.message], ...Object.entries(s3.extra), ['Resource', resource]], requestId);
    res.writeHead(s3.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/** Runs `onRead` as `body` is first read (its first `_read`: a consumer wants its bytes). */
function onFirstRead(body: Readable, onRead: () => void): void {
  const read = body._read;
  body._read = function firstRead(this: Readable, size: number) {
    body._read = read;
    onRead();
    return read.call(this, size);
  };
}

/**
 * A request Node's parser could not read gets S3's answer, an S3 error a client's SDK knows (Node's
 * own are bare): RequestHeaderSectionTooLarge for a header section over its limit (Node: 431),
 * BadRequest for the rest; headers that stopped coming keep Node's 408, with the request ids.
 */
function answerUnreadableRequest(error: NodeJS.ErrnoException, socket: Duplex, afterAnswers: boolean): void {
  // a partial answer already written cannot be followed by another
  if (error.code === 'ECONNRESET' || !socket.writable || (!afterAnswers && (socket as Socket).bytesWritten > 0)) {
    socket.destroy();
    return;
  }
  const requestId = nextRequestId();
  const ids = `x-amz-request-id: ${requestId}\r\nx-amz-id-2: ${hostId(requestId)}\r\n`;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end(`HTTP/1.1 408 Request Timeout\r\n${ids}Connection: close\r\n\r\n`);
    return;
  }
  const body = error.code === 'HPE_HEADER_OVERFLOW'
    // S3: RequestHeaderSectionTooLarge, 400, with the limit (Node's, --max-http-header-size: 16 KiB unless set)
    ? errorDocument([['Code', 'RequestHeaderSectionTooLarge'], ['Message', 'Your request header section exceeds the maximum allowed size.'],
      ['MaxSizeAllowed', String(http.maxHeaderSize)]], requestId)
    // S3's answer to bytes that are no HTTP request
    : errorDocument([['Code', 'BadRequest'], ['Message', 'An error occurred when parsing the HTTP request.']], requestId);
  socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${ids}Connection: close\r\n\r\n${body}`);
}

/**
 * RFC 9112 §3.2: a request with more than one Host header is refused (400); §3.2.2: an
 * absolute-form target (`GET http://host/bucket/key`, as a client talking to a proxy sends it) is
 * read as its path and query, its host standing for the Host header.
 */
function readTarget(req: IncomingMessage): void {
  let hosts = 0;
  for (let index = 0; index < req.rawHeaders.length; index += 2) if (req.rawHeaders[index].length === 4 && req.rawHeaders[index].toLowerCase() === 'host') hosts++;
  if (hosts > 1) throw new S3Error('BadRequest', 400, 'An error occurred when parsing the HTTP request.');
  const target = req.url ?? '/';
  if (!/^https?:\/\//i.test(target)) return;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.", { URI: target });
  }
  req.url = `${url.pathname}${url.search}`;
  req.headers.host = url.host;
}

/** S3's error document: its fields in order, then the request's ids; no namespace, as S3 sends it. */
function errorDocument(fields: Array<[string, string]>, requestId: string): string {
  return document('Error', [...fields.map(([name, value]) => el(name, percentEncodeNotXml(value))), el('RequestId', requestId), el('HostId', hostId(requestId))])
    .replace(` xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`, '');
}

function hostId(requestId: string): string {
  return Buffer.from(`outpost/${requestId}`).toString('base64');
}

/**
 * Request ids as S3's look (16 upper-case hex digits): a random prefix per run and a counter, unique
 * without drawing random bytes for every request.
 */
const REQUEST_ID_PREFIX = randomBytes(4).toString('hex').toUpperCase();
let requestCounter = 0;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) >>> 0;
  return REQUEST_ID_PREFIX + requestCounter.toString(16).toUpperCase().padStart(8, '0');
}

/**
 * Reads what is left of a small request body (a form refused after its fields, a PUT refused
 * before its body): closing a socket with unread data resets it, and the client would see the
 * reset instead of the error. Resolves false when the body is too large or does not come.
 */
async function discardSmallBody(req: IncomingMessage): Promise<boolean> {
  if (req.complete) return true;
  const length = Number(req.headers['content-length']);
  if (!(length <= DISCARDED_BODY_BYTES) || req.destroyed) return false;
  req.unpipe();
  return new Promise<boolean>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      req.off('end', done).off('close', done).off('error', done);
      resolve(req.complete);
    };
    const timer = setTimeout(done, 5000);
    req.on('end', done).on('close', done).on('error', done);
    req.resume();
  });
}

function toS3Error(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof AuthError) return new S3Error(error.code, error.status, error.message, error.details);
  const code = (error as NodeJS.ErrnoException).code;
  // the client went away mid-body, or sent less than it announced
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error)?.message === 'aborted') return errors.incompleteBody();
  if (isDiskFull(error)) return errors.insufficientStorage();
  return errors.internalError();
}
