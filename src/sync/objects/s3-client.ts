import type { Agent as HttpAgent, ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { http } from '../../node-http.js';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import {
  ALGORITHM, EMPTY_SHA256, canonicalQuery, canonicalRequest, hmacHex, sha256Hex, signingKey, stringToSign, uriEncodeText,
} from '../../auth/sigv4-canonical.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientOptions {
  /** http(s)://host[:port]; default: AWS S3 of `region`. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  credentials: S3Credentials;
  /**
   * The one certificate (PEM) an https endpoint may present, whoever issued it and whatever names it
   * carries: the daemon's own S3 port, reached at a loopback address its certificate need not name.
   */
  onlyCertificate?: string;
  /**
   * Connections at once: one per upload in flight (each makes one request at a time to either side)
   * and one more, for a failed upload's local answer while it is being cut (metered()).
   */
  connections: number;
}

/** An S3 error answer: `name` is its Code (NoSuchBucket, SlowDown…), or the status text of a HEAD. */
export class S3RequestError extends Error {
  constructor(override readonly name: string, message: string, readonly status: number) {
    super(message);
  }
}

export interface ObjectHead {
  contentType?: string;
  /** x-amz-meta-* without the prefix. */
  metadata: Record<string, string>;
  /** x-amz-tagging-count of an answer: how many tags the object has. */
  tagCount?: number;
  /** Tags to send with it (x-amz-tagging). */
  tags?: ObjectTags;
}

/** An object's tags in their order, as [key, value]. */
export type ObjectTags = Array<[key: string, value: string]>;

interface Request {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  bucket: string;
  key: string;
  query?: Record<string, string>;
  headers?: Record<string, string | number | undefined>;
  /**
   * A stream is sent as UNSIGNED-PAYLOAD (S3 allows it); a Buffer is hashed into the signature. A
   * function opens its stream once the connection is made (see OpenBody).
   */
  body?: Readable | Buffer | OpenBody;
  signal?: AbortSignal;
}

/**
 * A body opened only once the connection to the server is up (after TLS's handshake): a stream
 * from another server (the local S3 API) fills its socket buffers as soon as it is asked for, so
 * asked for first it was read from the disk, megabytes of it, at every attempt the cloud refused.
 * Its error fails the request.
 */
export type OpenBody = () => Promise<Readable>;

/** Status texts for answers without a body (HEAD), as the AWS SDK names them. */
const STATUS_NAMES: Record<number, string> = { 304: 'NotModified', 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' };
const CONNECT_TIMEOUT_MS = 10_000;
/** A request whose connection stays silent this long fails and is retried (a bandwidth-capped body still moves every 100 ms). */
const IDLE_TIMEOUT_MS = 45_000;

/**
 * The S3 operations the uploader needs (GetObject, HeadObject, DeleteObject, PutObject and the
 * multipart ones), signed with SigV4 by the same code that verifies signatures for the local S3
 * API. Instead of the AWS SDK, whose client adds about 12 MB to the daemon's RSS once loaded.
 */
export class S3Client {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  /** Server time minus local time, learnt from a RequestTimeTooSkewed answer (a board without RTC). */
  private clockOffsetMs = 0;

  constructor(private readonly options: S3ClientOptions) {
    this.url = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
    const agentOptions = { keepAlive: true, maxSockets: options.connections };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ ...agentOptions, ...(options.onlyCertificate ? pinnedTo(options.onlyCertificate) : {}) }) : new http.Agent(agentOptions);
  }

  /** S3 GetObject; the body streams from the answer. */
  async getObject(bucket: string, key: string, conditions: { ifMatch?: string; range?: string }, signal?: AbortSignal): Promise<ObjectHead & { body: IncomingMessage }> {
    const answer = await this.send({ method: 'GET', bucket, key, headers: { 'if-match': conditions.ifMatch, range: conditions.range }, signal });
    return { ...headOf(answer), body: answer };
  }

  async headObject(bucket: string, key: string, ifMatch: string | undefined, signal?: AbortSignal): Promise<ObjectHead & { etag?: string }> {
    const answer = await this.send({ method: 'HEAD', bucket, key, headers: { 'if-match': ifMatch }, signal });
    answer.resume();
    return { ...headOf(answer), etag: answer.headers.etag };
  }

  /** S3 DeleteObject with If-Match (conditional deletes, 2025). */
  async deleteObject(bucket: string, key: string, ifMatch: string, signal?: AbortSignal): Promise<void> {
    (await this.send({ method: 'DELETE', bucket, key, headers: { 'if-match': ifMatch }, signal })).resume();
  }

  /** S3 PutObject; resolves with the ETag. */
  async putObject(bucket: string, key: string, body: Readable | OpenBody, length: number, head: ObjectHead & { contentMd5?: string }, signal?: AbortSignal): Promise<string | undefined> {
    const answer = await this.send({ method: 'PUT', bucket, key, body, signal, headers: { 'content-length': length, 'content-md5': head.contentMd5, ...headersOf(head) } });
    answer.resume();
    return answer.headers.etag;
  }

  async createMultipartUpload(bucket: string, key: string, head: ObjectHead, signal?: AbortSignal): Promise<string> {
    const xml = await text(await this.send({ method: 'POST', bucket, key, query: { uploads: '' }, headers: headersOf(head), signal }));
    const uploadId = xmlValue(xml, 'UploadId');
    if (!uploadId) throw new S3RequestError('InvalidResponse', 'CreateMultipartUpload answered without an UploadId', 200);
    return uploadId;
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Readable | OpenBody, length: number, signal?: AbortSignal): Promise<string | undefined> {
    const answer = await this.send({
      method: 'PUT', bucket, key, query: { partNumber: String(partNumber), uploadId }, body, headers: { 'content-length': length }, signal,
    });
    answer.resume();
    return answer.headers.etag;
  }

  /** S3 CompleteMultipartUpload; resolves with the object's ETag. An error may come with status 200, in the body. */
  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>, signal?: AbortSignal): Promise<string | undefined> {
    const body = Buffer.from(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.map((part) =>
      `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${escapeXml(part.etag)}</ETag></Part>`).join('')}</CompleteMultipartUpload>`);
    const xml = await text(await this.send({ method: 'POST', bucket, key, query: { uploadId }, body, headers: { 'content-type': 'application/xml' }, signal }));
    const code = xmlValue(xml, 'Code');
    // an error found after the 200 went out is the server's (AWS: retry the request): not the object's
    if (code) throw new S3RequestError(code, xmlValue(xml, 'Message') ?? code, 500);
    return xmlValue(xml, 'ETag');
  }

  /**
   * S3 ListMultipartUploads of the keys starting with `prefix`: the first page (up to 1,000 uploads),
   * each with its key, UploadId and initiation time.
   */
  async listMultipartUploads(bucket: string, prefix: string, signal?: AbortSignal): Promise<Array<{ key: string; uploadId: string; initiated: string }>> {
    const xml = await text(await this.send({ method: 'GET', bucket, key: '', query: { uploads: '', prefix }, signal }));
    return [...xml.matchAll(/<Upload>(.*?)<\/Upload>/gs)].map(([, upload]) => ({
      key: xmlValue(upload, 'Key') ?? '', uploadId: xmlValue(upload, 'UploadId') ?? '', initiated: xmlValue(upload, 'Initiated') ?? '',
    }));
  }

  /** The time requests are signed with: the local clock, set to the server's by a RequestTimeTooSkewed answer. */
  signingTimeMs(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** S3 GetObjectTagging. */
  async getObjectTagging(bucket: string, key: string, signal?: AbortSignal): Promise<ObjectTags> {
    const xml = await text(await this.send({ method: 'GET', bucket, key, query: { tagging: '' }, signal }));
    return [...xml.matchAll(/<Tag>(.*?)<\/Tag>/gs)].map(([, tag]) => [xmlValue(tag, 'Key') ?? '', xmlValue(tag, 'Value') ?? '']);
  }

  /** S3 PutObjectTagging, which replaces the object's tags (an empty set removes them); S3 takes its body only with Content-MD5. */
  async putObjectTagging(bucket: string, key: string, tags: ObjectTags, signal?: AbortSignal): Promise<void> {
    const body = Buffer.from(`<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>${tags.map(([name, value]) =>
      `<Tag><Key>${escapeXml(name)}</Key><Value>${escapeXml(value)}</Value></Tag>`).join('')}</TagSet></Tagging>`);
    const contentMd5 = createHash('md5').update(body).digest('base64');
    (await this.send({ method: 'PUT', bucket, key, query: { tagging: '' }, body, headers: { 'content-type': 'application/xml', 'content-md5': contentMd5 }, signal })).resume();
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    (await this.send({ method: 'DELETE', bucket, key, query: { uploadId }, signal })).resume();
  }

  destroy(): void {
    this.agent.destroy();
  }

  /** Resolves with the answer of a 2xx; rejects with an S3RequestError (the body's Code and Message), or the network's error. */
  private send(request: Request): Promise<IncomingMessage> {
    const { host, path } = this.address(request.bucket, request.key);
    const query = Object.entries(request.query ?? {});
    const search = query.map(([name, value]) => (value === '' ? uriEncodeText(name, false) : `${uriEncodeText(name, false)}=${uriEncodeText(value, false)}`)).join('&');
    const headers = this.signed(request, host, path, canonicalQuery(query));
    return new Promise((resolve, reject) => {
      const send = this.url.protocol === 'https:' ? httpsRequest : http.request;
      const outgoing = send({
        protocol: this.url.protocol, hostname: this.options.forcePathStyle ? this.url.hostname : `${request.bucket}.${this.url.hostname}`, port: this.url.port, method: request.method,
        path: search ? `${path}?${search}` : path, headers, agent: this.agent, signal: request.signal,
      }, (answer) => {
        // A body cut off (the link dropped) errors; whoever reads it sees that, and a body nobody reads must not end the daemon.
        answer.on('error', () => undefined);
        const status = answer.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(answer);
        void this.failure(answer, status).then(reject, reject);
      });
      const connectTimer = setTimeout(() => outgoing.destroy(new Error(`no connection to ${this.url.host} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      outgoing.once('socket', (socket) => {
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once('connect', () => clearTimeout(connectTimer));
      });
      outgoing.once('close', () => clearTimeout(connectTimer));
      outgoing.setTimeout(IDLE_TIMEOUT_MS, () => outgoing.destroy(new Error(`${this.url.host} silent for ${IDLE_TIMEOUT_MS / 1000} s`)));
      outgoing.on('error', reject);
      const { body } = request;
      if (body instanceof Buffer || body === undefined) outgoing.end(body);
      else if (typeof body === 'function') this.sendWhenConnected(outgoing, body);
      else pipeline(body, outgoing, () => undefined);
    });
  }

  private sendWhenConnected(outgoing: ClientRequest, open: OpenBody): void {
    const send = () => {
      open().then((stream) => {
        if (outgoing.destroyed) stream.destroy();
        else pipeline(stream, outgoing, () => undefined);
      }, (error: Error) => outgoing.destroy(error));
    };
    outgoing.once('socket', (socket) => {
      // a kept-alive socket is connected (and past its handshake) already
      if (!socket.connecting) send();
      else socket.once(this.url.protocol === 'https:' ? 'secureConnect' : 'connect', send);
    });
  }

  private async failure(answer: IncomingMessage, status: number): Promise<S3RequestError> {
    const xml = await text(answer);
    const code = xmlValue(xml, 'Code') ?? STATUS_NAMES[status] ?? `Http${status}`;
    if (code === 'RequestTimeTooSkewed' && answer.headers.date) this.clockOffsetMs = Date.parse(answer.headers.date) - Date.now();
    return new S3RequestError(code, xmlValue(xml, 'Message') ?? `HTTP ${status}`, status);
  }

  /** Path-style (endpoint/bucket/key) or virtual-hosted-style (bucket.endpoint/key). */
  private address(bucket: string, key: string): { host: string; path: string } {
    const encodedKey = uriEncodeText(key, true);
    // a request on the bucket itself (ListMultipartUploads) has no key, nor its slash
    if (this.options.forcePathStyle) return { host: this.url.host, path: key === '' ? `/${bucket}` : `/${bucket}/${encodedKey}` };
    return { host: `${bucket}.${this.url.host}`, path: `/${encodedKey}` };
  }

  /** SigV4 (service s3) over every header sent. */
  private signed(request: Request, host: string, path: string, query: string): OutgoingHttpHeaders {
    const timestamp = new Date(this.signingTimeMs()).toISOString().replace(/[-:]|\.\d{3}/g, '');
    const date = timestamp.slice(0, 8);
    const payloadHash = request.body === undefined ? EMPTY_SHA256 : request.body instanceof Buffer ? sha256Hex(request.body) : 'UNSIGNED-PAYLOAD';
    const headers: Record<string, string> = { host, 'x-amz-date': timestamp, 'x-amz-content-sha256': payloadHash };
    if (request.body instanceof Buffer) headers['content-length'] = String(request.body.length);
    if (this.options.credentials.sessionToken) headers['x-amz-security-token'] = this.options.credentials.sessionToken;
    for (const [name, value] of Object.entries(request.headers ?? {})) if (value !== undefined) headers[name] = String(value).trim();
    const names = Object.keys(headers).sort();
    // SigV4 canonical headers: sequential spaces in a value count as one
    const canonicalHeaders = names.map((name) => `${name}:${headers[name].replace(/ {2,}/g, ' ')}\n`).join('');
    const canonical = canonicalRequest(request.method, path, query, canonicalHeaders, names, payloadHash);
    const scope = `${date}/${this.options.region}/s3/aws4_request`;
    const key = signingKey(this.options.credentials.secretAccessKey, date, this.options.region, 's3');
    // Node sends a header value one byte a character (latin1), and S3 hashes the bytes it gets: a
    // value read from the local S3 API (its bytes, one character each) is hashed as those bytes.
    // Metadata that is not US-ASCII comes from it RFC 2047-encoded, which S3 decodes as it stores it.
    const signature = hmacHex(key, stringToSign({ timestamp, scope, key }, Buffer.from(canonical, 'latin1')));
    headers.authorization = `${ALGORITHM} Credential=${this.options.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return headers;
  }
}

function headOf(answer: IncomingMessage): ObjectHead {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') {
      // the name is the object's writer's: x-amz-meta-__proto__ is metadata like any other, not the record's prototype
      Object.defineProperty(metadata, name.slice('x-amz-meta-'.length), { value, writable: true, enumerable: true, configurable: true });
    }
  }
  const tagCount = Number(answer.headers['x-amz-tagging-count'] ?? 0);
  return { contentType: answer.headers['content-type'], metadata, ...(tagCount > 0 ? { tagCount } : {}) };
}

function headersOf(head: ObjectHead): Record<string, string | undefined> {
  return {
    'content-type': head.contentType, ...Object.fromEntries(Object.entries(head.metadata).map(([name, value]) => [`x-amz-meta-${name}`, value])),
    // S3 x-amz-tagging: URL query parameters
    ...(head.tags?.length ? { 'x-amz-tagging': head.tags.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&') } : {}),
  };
}

async function text(answer: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of answer) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const ENTITIES: Record<string, string> = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" };

/** The text of the first <tag> of a small S3 answer (an empty `<tag/>` too), entities decoded. */
function xmlValue(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>|<${tag}/>`).exec(xml);
  return (match?.[1] ?? (match ? '' : undefined))?.replace(/&(quot|amp|lt|gt|apos);/g, (_entity, name: string) => ENTITIES[name]);
}

function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&${Object.keys(ENTITIES).find((name) => ENTITIES[name] === c)};`);
}

/**
 * TLS options that trust exactly `certificate`: it is the only trust anchor, taken as one even when
 * a CA issued it (allowPartialTrustChain, Node ≥ 20.18: older ones trust a self-signed one only), so
 * no other certificate passes, and the host name is not checked against it.
 */
function pinnedTo(certificate: string): object {
  return { ca: certificate, allowPartialTrustChain: true, checkServerIdentity: () => undefined };
}
