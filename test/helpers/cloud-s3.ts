// The stand-in cloud S3 of the sync tests: s3rver (npm) behind a small HTTP proxy on a fixed free
// loopback port. The proxy is the cloud's front door: it records every request (to observe what
// the gateway sent), can be taken down and brought back (the link), can return a wrong ETag
// for chosen keys (a cloud that stored something else), can lose chosen answers, hold chosen
// requests back (a slow link) and refuse chosen ones (a bucket policy).
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './cloud.js';

/** s3rver checks SigV4 signatures against this fixed key. */
// (a copy goes to the SDK, which marks the credentials object it is given)
export const S3RVER_KEY = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface CloudRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  status?: number;
  /** performance.now() when the request arrived, and when its answer was sent (or cut). */
  arrived: number;
  answered?: number;
}

export class CloudS3 {
  readonly requests: CloudRequest[] = [];
  /** Keys whose PutObject / UploadPart answers get a wrong ETag. */
  corruptEtag: (key: string) => boolean = () => false;
  /** Requests carried out whose answer is then lost: the connection is cut instead (a link that fails at the worst moment). */
  loseAnswer: (request: CloudRequest) => boolean = () => false;
  /** Milliseconds a request waits before it goes to the store (0: at once). */
  holdMs: (request: CloudRequest) => number = () => 0;
  /** Requests answered 403 AccessDenied without reaching the store, as a bucket policy's deny. */
  deny: (request: CloudRequest) => boolean = () => false;
  private proxy: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly client: S3Client;

  private constructor(private readonly server: S3rver | undefined, private readonly dir: string | undefined, private readonly backendPort: number, readonly port: number) {
    this.client = new S3Client({ endpoint: `http://127.0.0.1:${backendPort}`, region: 'us-east-1', forcePathStyle: true, credentials: { ...S3RVER_KEY } });
  }

  static async create(buckets: string[]): Promise<CloudS3> {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-cloud-s3-'));
    const backendPort = await freePort();
    const server = new S3rver({ port: backendPort, address: '127.0.0.1', directory: dir, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
    await server.run();
    return new CloudS3(server, dir, backendPort, await freePort());
  }

  /**
   * The proxy alone, in front of another S3 server on loopback (an outpostd's S3 API, which has the
   * multipart listing s3rver lacks); `keys` and `body` are s3rver's and do not apply.
   */
  static async inFrontOf(backendPort: number): Promise<CloudS3> {
    return new CloudS3(undefined, undefined, backendPort, await freePort());
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The link comes up: the proxy listens (again) on its port. */
  async up(): Promise<void> {
    if (this.proxy) return;
    const proxy = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://cloud');
      const entry: CloudRequest = { method: req.method ?? '', path: decodeURIComponent(url.pathname), query: url.searchParams, headers: req.headers, arrived: performance.now() };
      this.requests.push(entry);
      res.once('close', () => {
        entry.answered = performance.now();
      });
      if (this.deny(entry)) {
        entry.status = 403;
        req.resume();
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      const held = this.holdMs(entry);
      if (held === 0) this.forward(req, res, entry);
      else setTimeout(() => this.forward(req, res, entry), held);
    });
    proxy.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => proxy.listen(this.port, '127.0.0.1', resolve));
    this.proxy = proxy;
  }

  /** The most requests matching `filter` that were in the cloud's hands at one moment. */
  mostAtOnce(filter: (request: CloudRequest) => boolean): number {
    const events = this.requests.filter(filter).flatMap((request) => [[request.arrived, 1], [request.answered ?? Infinity, -1]])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let most = 0;
    for (const [, change] of events) most = Math.max(most, (now += change));
    return most;
  }

  private forward(req: IncomingMessage, res: ServerResponse, entry: CloudRequest): void {
    const upstream = request({ host: '127.0.0.1', port: this.backendPort, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      entry.status = answer.statusCode;
      if (this.loseAnswer(entry)) {
        answer.resume();
        answer.once('end', () => res.destroy());
        return;
      }
      const headers = { ...answer.headers };
      const key = entry.path.split('/').slice(2).join('/');
      if (headers.etag && req.method === 'PUT' && this.corruptEtag(key)) headers.etag = '"00000000000000000000000000000000"';
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  /** The link goes down: connections are refused and the open ones cut. */
  async down(): Promise<void> {
    const proxy = this.proxy;
    this.proxy = undefined;
    if (!proxy) return;
    const closed = new Promise((resolve) => proxy.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Requests of one operation on one key, e.g. ('PUT', 'cloud/a.txt'). */
  requestsFor(method: string, path: string): CloudRequest[] {
    return this.requests.filter((entry) => entry.method === method && entry.path === `/${path}`);
  }

  async keys(bucket: string): Promise<string[]> {
    const listing = await this.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (listing.Contents ?? []).map((object) => object.Key!);
  }

  async body(bucket: string, key: string): Promise<Buffer> {
    const object = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await object.Body!.transformToByteArray());
  }

  async destroy(): Promise<void> {
    await this.down();
    this.client.destroy();
    if (!this.server) return;
    const closed = this.server.close();
    (this.server as unknown as { httpServer: Server }).httpServer.closeAllConnections();
    await closed;
    rmSync(this.dir!, { recursive: true, force: true });
  }
}
