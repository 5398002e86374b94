import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SignatureV4 } from '@smithy/signature-v4';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client, type S3Credentials } from './helpers/objects.js';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { eventually } from './helpers/eventually.js';
import { fuzzSeed, prng } from './helpers/fuzz.js';

/** SHA-256 and HMAC-SHA256 in the shape the SigV4 signer wants. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret ? createHmac('sha256', secret) : createHash('sha256');
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

interface RawRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Sign as if at this time. */
  signingDate?: Date;
  /** Announce this Content-Length whatever the body is (a truncated body). */
  announcedLength?: number;
}

const md5Base64 = (body: string | Buffer) => createHash('md5').update(body).digest('base64');

/** A DeleteObjects of `body`, with the Content-MD5 S3 requires of it. */
const deleteObjects = (body: string, path = '/hostile'): RawRequest => ({ method: 'POST', path, query: { delete: '' }, body, headers: { 'content-md5': md5Base64(body) } });

/** Ten entities each ten times the one before: 10^9 "lol"s if a parser expanded them. */
const BILLION_LAUGHS = '<?xml version="1.0"?><!DOCTYPE Delete [<!ENTITY l0 "lol">'
  + Array.from({ length: 9 }, (_, index) => `<!ENTITY l${index + 1} "${`&l${index};`.repeat(10)}">`).join('')
  + ']><Delete><Object><Key>&l9;</Key></Object></Delete>';

describe('S3 API: hostile and malformed input', () => {
  let daemon: TestDaemon;
  let credentials: S3Credentials;
  let signer: SignatureV4;
  const share = () => join(daemon.dataDir, 'share');

  /** A request signed, as bytes to write: its header section (`connection` as given), then its body. */
  async function signedBytes(request: RawRequest, connection: 'close' | 'keep-alive'): Promise<Buffer[]> {
    const port = daemon.port('s3');
    const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = {
      host: `127.0.0.1:${port}`,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'content-length': String(request.announcedLength ?? body.length),
      ...request.headers,
    };
    const signed = await signer.sign({ method: request.method, protocol: 'http:', hostname: '127.0.0.1', port, path: request.path, query: request.query ?? {}, headers },
      request.signingDate ? { signingDate: request.signingDate } : {});
    const query = new URLSearchParams(request.query ?? {}).toString();
    const head = `${request.method} ${request.path}${query ? `?${query}` : ''} HTTP/1.1\r\n`
      + Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') + `connection: ${connection}\r\n\r\n`;
    return [Buffer.from(head), body];
  }

  /** Signs and sends one request over a raw socket; resolves with the status line's code, the header lines and the body (or 0 when the server closed first). */
  async function send(request: RawRequest, closeAfterBody = false): Promise<{ status: number; head: string; body: string }> {
    const port = daemon.port('s3');
    const [head, body] = await signedBytes(request, 'close');
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => { response += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
        const headEnd = response.indexOf('\r\n\r\n');
        resolve({ status, head: response.slice(0, headEnd), body: response.slice(headEnd + 4) });
      });
      socket.write(head);
      socket.write(body);
      if (closeAfterBody) socket.end();
    });
  }

  beforeAll(async () => {
    // a stalled body is answered after 2 s (S3: about 20 s, the default)
    daemon = await TestDaemon.start({ config: { s3: { bodyIdleTimeoutSeconds: 2 } } });
    credentials = await addKey(daemon);
    signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Sha256 as never, uriEscapePath: false, applyChecksum: false });
    expect((await send({ method: 'PUT', path: '/hostile' })).status).toBe(200);
  });
  afterAll(async () => {
    try {
      expect(daemon.logs.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await daemon.cleanup();
    }
  });

  /** Sends requests back to back on one connection (the last closes it); resolves with the status codes of the answers, in order. */
  async function pipelined(requests: RawRequest[]): Promise<number[]> {
    const bytes = Buffer.concat((await Promise.all(requests.map((request, index) => signedBytes(request, index === requests.length - 1 ? 'close' : 'keep-alive')))).flat());
    return new Promise((resolve) => {
      const socket = connect(daemon.port('s3'), '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => { response += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve([...response.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]))));
      socket.write(bytes);
    });
  }

  it('serves requests pipelined on one connection in order: each sees the writes answered before it', async () => {
    const key = '/hostile/pipelined.bin';
    expect(await pipelined([{ method: 'PUT', path: key, body: 'first' }, { method: 'DELETE', path: key }])).toEqual([200, 204]);
    expect((await send({ method: 'HEAD', path: key })).status).toBe(404);
    // a large body then a small one: the small one, answered last, is the object
    expect(await pipelined([{ method: 'PUT', path: key, body: Buffer.alloc(200_000, 1) }, { method: 'PUT', path: key, body: 'second' }])).toEqual([200, 200]);
    const read = await send({ method: 'GET', path: key });
    expect(read.body).toBe('second');
    expect(await pipelined([{ method: 'PUT', path: key, body: 'third' }, { method: 'GET', path: key }, { method: 'DELETE', path: key }, { method: 'GET', path: key }]))
      .toEqual([200, 200, 204, 404]);
    // more than wait their turn at once (the connection is read no further until half are served): all answered, in order
    const many = [...Array.from({ length: 200 }, (_, index) => ({ method: 'PUT', path: `${key}-${index % 3}`, body: String(index) })),
      ...Array.from({ length: 3 }, (_, index) => ({ method: 'GET', path: `${key}-${index}` }))];
    expect(await pipelined(many)).toEqual(many.map(() => 200));
    for (const [index, last] of [198, 199, 197].entries()) expect((await send({ method: 'GET', path: `${key}-${index}` })).body).toBe(String(last));
  });

  it('reads an absolute-form request target as its path (RFC 9112 §3.2.2) and refuses two Host headers with 400 (§3.2)', async () => {
    expect((await send({ method: 'PUT', path: '/hostile/absolute.txt', body: 'absolute' })).status).toBe(200);
    const port = daemon.port('s3');
    const [head] = await signedBytes({ method: 'GET', path: '/hostile/absolute.txt' }, 'close');
    const raw = (bytes: string) => new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => { response += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(response));
      socket.write(bytes);
    });
    const absolute = await raw(head.toString().replace('GET /hostile/absolute.txt HTTP/1.1', `GET http://127.0.0.1:${port}/hostile/absolute.txt HTTP/1.1`));
    expect(absolute).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(absolute.endsWith('\r\n\r\nabsolute')).toBe(true);
    const twoHosts = await raw(head.toString().replace('\r\n\r\n', `\r\nhost: elsewhere.example\r\n\r\n`));
    expect(twoHosts).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(twoHosts).toContain('<Code>BadRequest</Code>');
  });

  it('answers a request whose body runs past its Content-Length, then refuses the bytes after it as an unreadable request', async () => {
    const [head] = await signedBytes({ method: 'PUT', path: '/hostile/overrun.txt', body: 'exact', headers: { connection: 'keep-alive' } }, 'keep-alive');
    const statuses = await new Promise<number[]>((resolve) => {
      const socket = connect(daemon.port('s3'), '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => { response += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve([...response.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]))));
      socket.write(Buffer.concat([head, Buffer.from('exact and then some bytes that are no request\r\n\r\n')]));
    });
    expect(statuses).toEqual([200, 400]);
    expect((await send({ method: 'GET', path: '/hostile/overrun.txt' })).body).toBe('exact');
  });

  it('writes nothing when the body is shorter than Content-Length and the client goes away', async () => {
    // cut early, and cut once writes and early flushes of a large body are under way
    // (a small body, read from the request itself; a larger one; one larger still, cut mid-writes)
    for (const [sent, announced] of [[1000, 60_000], [1000, 100_000], [12 * 1024 * 1024, 32 * 1024 * 1024]]) {
      const result = await send({ method: 'PUT', path: '/hostile/truncated.bin', body: randomBytes(sent), announcedLength: announced }, true);
      expect([0, 400]).toContain(result.status);
      expect((await send({ method: 'HEAD', path: '/hostile/truncated.bin' })).status).toBe(404);
      expect(existsSync(join(share(), 'hostile', 'truncated.bin'))).toBe(false);
      // the temporary file goes once the server noticed the client left
      await eventually(() => readdirSync(join(share(), '.outpost', 'tmp')).length === 0, 5000);
    }
  });

  it('answers a body that stops coming with RequestTimeout and closes its connection, writing nothing', async () => {
    // a small body read from the request itself, and a file-backed one stalled after 2 MiB
    for (const [sent, announced] of [[1000, 60_000], [2 * 1024 * 1024, 32 * 1024 * 1024]]) {
      const result = await send({ method: 'PUT', path: '/hostile/stalled.bin', body: randomBytes(sent), announcedLength: announced });
      expect(result.status).toBe(400);
      expect(result.body).toContain('<Code>RequestTimeout</Code>');
      expect(result.head).toMatch(/^connection: close$/im);
      expect((await send({ method: 'HEAD', path: '/hostile/stalled.bin' })).status).toBe(404);
      await eventually(() => readdirSync(join(share(), '.outpost', 'tmp')).length === 0, 5000);
    }
  });

  it('refuses a body that does not match its signed SHA-256 (XAmzContentSHA256Mismatch), writing nothing', async () => {
    const result = await send({ method: 'PUT', path: '/hostile/sha.txt', body: 'actual body',
      headers: { 'x-amz-content-sha256': createHash('sha256').update('another body').digest('hex') } });
    expect(result.status).toBe(400);
    expect(result.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    expect((await send({ method: 'HEAD', path: '/hostile/sha.txt' })).status).toBe(404);
  });

  it('refuses a request signed too long ago with RequestTimeTooSkewed', async () => {
    const result = await send({ method: 'GET', path: '/hostile', signingDate: new Date(Date.now() - 3600_000) });
    expect(result.status).toBe(403);
    expect(result.body).toContain('<Code>RequestTimeTooSkewed</Code>');
  });

  it('answers malformed requests with the S3 error of each', async () => {
    const cases: Array<[RawRequest, number, string]> = [
      [{ method: 'PUT', path: '/hostile/md5.txt', body: 'x', headers: { 'content-md5': 'not-base64-md5' } }, 400, 'InvalidDigest'],
      [deleteObjects('<Delete><Object><Key>a</Key></Object>'), 400, 'MalformedXML'],
      [deleteObjects('<Delete></Delete>'), 400, 'MalformedXML'],
      [deleteObjects('<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>'), 400, 'MalformedXML'],
      // entities a DOCTYPE declares are not expanded ("billion laughs"), nor HTML's; a reference to no XML character is refused
      [deleteObjects(BILLION_LAUGHS), 400, 'MalformedXML'],
      [deleteObjects('<Delete><Object><Key>a&nbsp;b</Key></Object></Delete>'), 400, 'MalformedXML'],
      [deleteObjects('<Delete><Object><Key>a&#0;b</Key></Object></Delete>'), 400, 'MalformedXML'],
      [{ method: 'GET', path: '/hostile', query: { 'list-type': '2', 'max-keys': 'many' } }, 400, 'InvalidArgument'],
      [{ method: 'GET', path: '/hostile', query: { 'list-type': '2', 'encoding-type': 'base64' } }, 400, 'InvalidArgument'],
      [{ method: 'GET', path: '/hostile', query: { analytics: '' } }, 501, 'NotImplemented'],
      // S3 takes a CORS configuration only with a digest of it
      [{ method: 'PUT', path: '/hostile', query: { cors: '' }, body: '<CORSConfiguration/>' }, 400, 'InvalidRequest'],
      [{ method: 'PUT', path: '/hostile', query: { acl: '' }, body: '<AccessControlPolicy><Owner>' }, 400, 'MalformedACLError'],
      [{ method: 'PUT', path: '/hostile', query: { acl: '' } }, 400, 'MissingSecurityHeader'],
      [{ method: 'POST', path: '/hostile/key' }, 405, 'MethodNotAllowed'],
      [{ method: 'PUT', path: '/hostile/part', query: { partNumber: '1', uploadId: 'made-up' }, body: 'x' }, 404, 'NoSuchUpload'],
      [{ method: 'PUT', path: '/Invalid_Bucket' }, 400, 'InvalidBucketName'],
      [{ method: 'PUT', path: `/hostile/${'k'.repeat(1025)}`, body: 'x' }, 400, 'KeyTooLongError'],
      [{ method: 'PUT', path: '/hostile/a/%00/b', body: 'x' }, 400, 'InvalidArgument'],
      [{ method: 'PUT', path: '/hostile/renamed', query: { renameObject: '' }, headers: { 'x-amz-rename-source': '/hostile/md5.txt' } }, 501, 'NotImplemented'],
      [{ method: 'GET', path: '/hostile/whole.txt', query: { partNumber: '0' } }, 400, 'InvalidArgument'],
    ];
    expect((await send({ method: 'PUT', path: '/hostile/whole.txt', body: 'whole' })).status).toBe(200);
    for (const [request, status, code] of cases) {
      const result = await send(request);
      expect({ path: request.path, status: result.status, code: /<Code>(\w+)<\/Code>/.exec(result.body)?.[1] }).toEqual({ path: request.path, status, code });
      expect(result.body).toMatch(/<RequestId>[0-9A-F]{16}<\/RequestId>/);
      // XML 1.0 §2.2: no character an XML parser refuses, whatever the request held (a NUL in the key: the SDKs saw "400 Bad Request" only)
      expect({ path: request.path, body: result.body }).not.toEqual({ path: request.path, body: expect.stringMatching(/[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/) });
    }
    expect((await send({ method: 'PUT', path: '/hostile/a/%00%01/b', body: 'x' })).body).toContain('<Resource>/hostile/a/%00%01/b</Resource>');
    const upload = await send({ method: 'POST', path: '/hostile/multi', query: { uploads: '' } });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(upload.body)![1];
    const complete = await send({ method: 'POST', path: '/hostile/multi', query: { uploadId }, body: '<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part>' });
    expect(complete.body).toContain('<Code>MalformedXML</Code>');
    expect((await send({ method: 'HEAD', path: '/hostile/multi' })).status).toBe(404);
    expect((await send({ method: 'HEAD', path: '/hostile/renamed' })).status).toBe(404);
    // each listing's bound names itself (S3 ListMultipartUploads: "Provided max-uploads not an integer or within integer range")
    const uploads = await send({ method: 'GET', path: '/hostile', query: { uploads: '', 'max-uploads': 'many' } });
    expect(uploads.body).toContain('<Message>Provided max-uploads not an integer or within integer range</Message><ArgumentName>max-uploads</ArgumentName>');
  });

  it('refuses a DeleteObjects without Content-MD5 or an x-amz-checksum-*, deleting nothing (S3 DeleteObjects)', async () => {
    expect((await send({ method: 'PUT', path: '/hostile/kept.txt', body: 'kept' })).status).toBe(200);
    const body = '<Delete><Object><Key>kept.txt</Key></Object></Delete>';
    const bare = await send({ method: 'POST', path: '/hostile', query: { delete: '' }, body });
    expect(bare.status).toBe(400);
    expect(bare.body).toContain('<Code>InvalidRequest</Code><Message>Missing required header for this request: Content-MD5</Message>');
    expect((await send({ method: 'HEAD', path: '/hostile/kept.txt' })).status).toBe(200);
    // a checksum (current SDKs send CRC32 instead of Content-MD5) is as good, and is checked against the body
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    const wrongChecksum = await send({ method: 'POST', path: '/hostile', query: { delete: '' }, body, headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } });
    expect(wrongChecksum.status).toBe(400);
    expect((await send({ method: 'HEAD', path: '/hostile/kept.txt' })).status).toBe(200);
    const checksummed = await send({ method: 'POST', path: '/hostile', query: { delete: '' }, body, headers: { 'x-amz-checksum-crc32': crc.toString('base64') } });
    expect([checksummed.status, /<Deleted><Key>kept.txt<\/Key><\/Deleted>/.test(checksummed.body)]).toEqual([200, true]);
    expect((await send({ method: 'HEAD', path: '/hostile/kept.txt' })).status).toBe(404);
    expect((await send(deleteObjects(body))).status).toBe(200);
  });

  it('takes one x-amz-checksum-* header per request, named by x-amz-sdk-checksum-algorithm when sent, refusing others with InvalidRequest and writing nothing', async () => {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32('hello'));
    const sha1 = createHash('sha1').update('hello').digest('base64');
    const refusals: Array<[Record<string, string>, string]> = [
      // even empty: the count is checked before the values
      [{ 'x-amz-checksum-crc32': crc.toString('base64'), 'x-amz-checksum-sha1': sha1 }, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.'],
      [{ 'x-amz-checksum-crc32': '', 'x-amz-checksum-crc32c': '' }, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.'],
      [{ 'x-amz-sdk-checksum-algorithm': 'CRC32' }, 'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.'],
      [{ 'x-amz-sdk-checksum-algorithm': 'SHA256', 'x-amz-checksum-crc32': crc.toString('base64') }, 'Value for x-amz-sdk-checksum-algorithm header is invalid.'],
      [{ 'x-amz-sdk-checksum-algorithm': 'FOO', 'x-amz-checksum-crc32': crc.toString('base64') }, 'Value for x-amz-sdk-checksum-algorithm header is invalid.'],
    ];
    for (const [headers, message] of refusals) {
      const put = await send({ method: 'PUT', path: '/hostile/one-checksum.txt', body: 'hello', headers });
      expect([put.status, put.body]).toEqual([400, expect.stringContaining(`<Code>InvalidRequest</Code><Message>${message}</Message>`)]);
    }
    expect((await send({ method: 'HEAD', path: '/hostile/one-checksum.txt' })).status).toBe(404);
    const agreeing = await send({ method: 'PUT', path: '/hostile/one-checksum.txt', body: 'hello', headers: { 'x-amz-sdk-checksum-algorithm': 'crc32', 'x-amz-checksum-crc32': crc.toString('base64') } });
    expect([agreeing.status, agreeing.head]).toEqual([200, expect.stringContaining(`x-amz-checksum-crc32: ${crc.toString('base64')}`)]);
  });

  it('answers a method the service, a bucket or an object does not take with 405 MethodNotAllowed naming the method, the resource type and, in Allow, the methods it takes', async () => {
    const cases: Array<[RawRequest, string, string]> = [
      [{ method: 'POST', path: '/' }, 'SERVICE', 'GET'],
      [{ method: 'PATCH', path: '/hostile' }, 'BUCKET', 'HEAD, DELETE, POST, GET, PUT'],
      [{ method: 'PATCH', path: '/hostile/key' }, 'OBJECT', 'HEAD, DELETE, POST, GET, PUT'],
      [{ method: 'POST', path: '/hostile/key' }, 'OBJECT', 'HEAD, DELETE, POST, GET, PUT'],
    ];
    for (const [request, resourceType, allowed] of cases) {
      const result = await send(request);
      expect({ request, status: result.status, allow: /^allow: (.*)$/im.exec(result.head)?.[1] }).toEqual({ request, status: 405, allow: allowed });
      expect(result.body).toContain(`<Code>MethodNotAllowed</Code><Message>The specified method is not allowed against this resource.</Message><Method>${request.method}</Method><ResourceType>${resourceType}</ResourceType>`);
    }
    // a sub-resource's: none has a HEAD; ?delete is DeleteObjects, POST only, not a listing; ?versioning is no DeleteBucket
    expect((await send({ method: 'PUT', path: '/hostile/kept-by-sub-resources.txt', body: 'kept' })).status).toBe(200);
    const subResources: Array<[RawRequest, string, string]> = [
      [{ method: 'HEAD', path: '/hostile/kept-by-sub-resources.txt', query: { acl: '' } }, 'ACL', 'GET, PUT'],
      [{ method: 'HEAD', path: '/hostile/kept-by-sub-resources.txt', query: { tagging: '' } }, 'OBJECT_TAGGING', 'DELETE, GET, PUT'],
      [{ method: 'HEAD', path: '/hostile/kept-by-sub-resources.txt', query: { uploadId: 'made-up' } }, 'UPLOAD', 'DELETE, POST, GET'],
      [{ method: 'GET', path: '/hostile/kept-by-sub-resources.txt', query: { uploadId: 'made-up', partNumber: '1' } }, 'PART', 'PUT'],
      [{ method: 'POST', path: '/hostile/kept-by-sub-resources.txt', query: { tagging: '' } }, 'OBJECT_TAGGING', 'DELETE, GET, PUT'],
      [{ method: 'HEAD', path: '/hostile', query: { acl: '' } }, 'ACL', 'GET, PUT'],
      [{ method: 'HEAD', path: '/hostile', query: { location: '' } }, 'LOCATION', 'GET'],
      [{ method: 'HEAD', path: '/hostile', query: { uploads: '' } }, 'UPLOADS', 'POST, GET'],
      [{ method: 'GET', path: '/hostile', query: { delete: '' } }, 'MULTI_OBJECT_DELETE', 'POST'],
      [{ method: 'GET', path: '/no-such-bucket', query: { delete: '' } }, 'MULTI_OBJECT_DELETE', 'POST'],
      [{ method: 'PUT', path: '/hostile', query: { location: '' } }, 'LOCATION', 'GET'],
      [{ method: 'DELETE', path: '/hostile', query: { versioning: '' } }, 'VERSIONING', 'GET, PUT'],
      [{ method: 'DELETE', path: '/hostile', query: { acl: '' } }, 'ACL', 'GET, PUT'],
      [{ method: 'HEAD', path: '/hostile', query: { cors: '' } }, 'CORS', 'DELETE, GET, PUT'],
      [{ method: 'POST', path: '/hostile', query: { publicAccessBlock: '' } }, 'PUBLIC_ACCESS_BLOCK', 'DELETE, GET, PUT'],
      [{ method: 'DELETE', path: '/hostile', query: { logging: '' } }, 'LOGGING', 'GET, PUT'],
      [{ method: 'GET', path: '/hostile/kept-by-sub-resources.txt', query: { restore: '' } }, 'RESTORE', 'POST'],
      [{ method: 'GET', path: '/hostile/kept-by-sub-resources.txt', query: { select: '', 'select-type': '2' } }, 'SELECT', 'POST'],
      [{ method: 'HEAD', path: '/hostile/kept-by-sub-resources.txt', query: { retention: '' } }, 'RETENTION', 'GET, PUT'],
    ];
    for (const [request, resourceType, allowed] of subResources) {
      const result = await send(request);
      expect({ request, status: result.status, allow: /^allow: (.*)$/im.exec(result.head)?.[1] }).toEqual({ request, status: 405, allow: allowed });
      if (request.method !== 'HEAD') expect(result.body).toContain(`<Method>${request.method}</Method><ResourceType>${resourceType}</ResourceType>`);
    }
    expect((await send({ method: 'HEAD', path: '/hostile/kept-by-sub-resources.txt' })).status).toBe(200);
    expect((await send({ method: 'HEAD', path: '/hostile' })).status).toBe(200);
    // a method S3 defines nothing for is a request S3 cannot parse: 400 BadRequest, no Allow
    for (const [method, path] of [['TRACE', '/'], ['PROPFIND', '/hostile'], ['LINK', '/hostile/key']]) {
      const result = await send({ method, path });
      expect({ method, status: result.status, allow: /^allow:/im.test(result.head) }).toEqual({ method, status: 400, allow: false });
      expect(result.body).toContain('<Code>BadRequest</Code><Message>An error occurred when parsing the HTTP request.</Message>');
    }
  });

  it('refuses a request naming two sub-resources with 400 InvalidArgument naming them, as S3 does, and acts on neither', async () => {
    expect((await send({ method: 'PUT', path: '/hostile/two-sub-resources.txt', body: 'kept' })).status).toBe(200);
    const upload = await send({ method: 'POST', path: '/hostile/two-sub-resources.txt', query: { uploads: '' } });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(upload.body)![1];
    // S3 names them alphabetically whatever their order, the first as the ArgumentValue of ResourceType
    const cases: Array<[RawRequest, string]> = [
      [{ method: 'GET', path: '/hostile', query: { versioning: '', acl: '' } }, 'acl, versioning'],
      [{ method: 'GET', path: '/hostile', query: { uploads: '', tagging: '' } }, 'tagging, uploads'],
      [{ method: 'POST', path: '/hostile', query: { uploads: '', uploadId } }, 'uploadId, uploads'],
      [{ method: 'DELETE', path: '/hostile', query: { policy: '', cors: '' } }, 'cors, policy'],
      [{ method: 'PUT', path: '/hostile/two-sub-resources.txt', query: { uploadId, partNumber: '1', acl: '' }, body: 'x' }, 'acl, partNumber, uploadId'],
      [{ method: 'GET', path: '/hostile/two-sub-resources.txt', query: { tagging: '', partNumber: '1' } }, 'partNumber, tagging'],
      [{ method: 'GET', path: '/hostile/two-sub-resources.txt', query: { attributes: '', acl: '' } }, 'acl, attributes'],
      [{ method: 'DELETE', path: '/hostile/two-sub-resources.txt', query: { uploadId, tagging: '' } }, 'tagging, uploadId'],
      // at a key, ?uploads is CreateMultipartUpload's
      [{ method: 'POST', path: '/hostile/two-sub-resources.txt', query: { uploads: '', tagging: '' } }, 'tagging, uploads'],
      [{ method: 'PUT', path: '/hostile/two-sub-resources.txt', query: { uploads: '', tagging: '' }, body: 'x' }, 'tagging, uploads'],
    ];
    for (const [request, named] of cases) {
      const result = await send(request);
      expect({ request, status: result.status }).toEqual({ request, status: 400 });
      expect(result.body).toContain(`<Code>InvalidArgument</Code><Message>Conflicting query string parameters: ${named}</Message>`
        + `<ArgumentName>ResourceType</ArgumentName><ArgumentValue>${named.split(', ')[0]}</ArgumentValue>`);
    }
    // before the credential, as S3 (an unsigned request gets the same 400, not AccessDenied)
    for (const path of ['/hostile?acl&versioning', '/hostile/two-sub-resources.txt?uploads&tagging']) {
      const unsigned = await fetch(`http://127.0.0.1:${daemon.port('s3')}${path}`, { method: 'PUT', body: 'x' });
      expect([path, unsigned.status, /<Code>(\w+)<\/Code>/.exec(await unsigned.text())?.[1]]).toEqual([path, 400, 'InvalidArgument']);
    }
    // neither was acted on: the upload and the object are there, unchanged; one sub-resource alone still works
    const parts = await send({ method: 'GET', path: '/hostile/two-sub-resources.txt', query: { uploadId } });
    expect([parts.status, parts.body.includes('<Part>')]).toEqual([200, false]);
    expect((await send({ method: 'DELETE', path: '/hostile/two-sub-resources.txt', query: { uploadId } })).status).toBe(204);
    expect((await send({ method: 'GET', path: '/hostile/two-sub-resources.txt' })).body).toBe('kept');
  });

  it('announces an empty body as Content-Length: 0, not an empty chunked one, as S3 answers PutObject and UploadPart', async () => {
    const put = await send({ method: 'PUT', path: '/hostile/empty-answer.txt', body: 'x' });
    const upload = await send({ method: 'POST', path: '/hostile/empty-answer.bin', query: { uploads: '' } });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(upload.body)![1];
    const part = await send({ method: 'PUT', path: '/hostile/empty-answer.bin', query: { partNumber: '1', uploadId }, body: 'x' });
    for (const [operation, result] of [['PutObject', put], ['UploadPart', part]] as const) {
      expect({ operation, status: result.status, length: /^content-length: (.*)$/im.exec(result.head)?.[1], chunked: /^transfer-encoding:/im.test(result.head) })
        .toEqual({ operation, status: 200, length: '0', chunked: false });
    }
    expect((await send({ method: 'DELETE', path: '/hostile/empty-answer.bin', query: { uploadId } })).status).toBe(204);
  });

  it('refuses CORS preflights (OPTIONS) as S3 refuses them for a bucket without a CORS configuration, signed or not', async () => {
    const refusal = (body: string) => ({ code: /<Code>(\w+)<\/Code>/.exec(body)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(body)?.[1],
      method: /<Method>(\w+)<\/Method>/.exec(body)?.[1], resourceType: /<ResourceType>(\w+)<\/ResourceType>/.exec(body)?.[1] });
    const origin = { origin: 'https://app.example' };
    const cases: Array<[RawRequest, number, ReturnType<typeof refusal>]> = [
      [{ method: 'OPTIONS', path: '/hostile' }, 400, { code: 'BadRequest', message: 'Insufficient information. Origin request header needed.', method: undefined, resourceType: undefined }],
      [{ method: 'OPTIONS', path: '/hostile/key', headers: { ...origin, 'access-control-request-method': 'PUT' } }, 403,
        { code: 'AccessForbidden', message: 'CORSResponse: CORS is not enabled for this bucket.', method: 'PUT', resourceType: 'BUCKET' }],
      [{ method: 'OPTIONS', path: '/hostile', query: { acl: '' }, headers: origin }, 403,
        { code: 'AccessForbidden', message: 'CORSResponse: CORS is not enabled for this bucket.', method: 'OPTIONS', resourceType: 'BUCKET' }],
      [{ method: 'OPTIONS', path: '/no-such-bucket/key', headers: { ...origin, 'access-control-request-method': 'GET' } }, 403,
        { code: 'AccessForbidden', message: 'CORSResponse: Bucket not found', method: 'GET', resourceType: 'BUCKET' }],
      [{ method: 'OPTIONS', path: '/', headers: origin }, 403, { code: 'AccessForbidden', message: 'CORSResponse: Bucket not found', method: 'OPTIONS', resourceType: 'BUCKET' }],
      [{ method: 'OPTIONS', path: '/hostile/key', headers: { ...origin, 'access-control-request-method': 'put' } }, 400,
        { code: 'BadRequest', message: 'Invalid Access-Control-Request-Method: put', method: undefined, resourceType: undefined }],
    ];
    for (const [request, status, expected] of cases) {
      const result = await send(request);
      expect({ request, status: result.status, ...refusal(result.body) }).toEqual({ request, status, ...expected });
    }
    // browsers send preflights unsigned
    const unsigned = await fetch(`http://127.0.0.1:${daemon.port('s3')}/hostile/key`, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'GET' } });
    expect({ status: unsigned.status, ...refusal(await unsigned.text()) })
      .toEqual({ status: 403, code: 'AccessForbidden', message: 'CORSResponse: CORS is not enabled for this bucket.', method: 'GET', resourceType: 'BUCKET' });
  });

  it('refuses a ListObjects parameter of the other version (v1: continuation-token, start-after; v2: marker) rather than ignoring it', async () => {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ 'start-after': 'b' }, 'start-after', 'startAfter only supported in REST.GET.BUCKET with list-type=2'],
      [{ 'continuation-token': '' }, 'continuation-token', 'continuation-token only supported in REST.GET.BUCKET with list-type=2'],
      [{ 'list-type': '2', marker: 'b' }, 'marker', 'Marker unsupported with REST.GET.BUCKET in list-type=2'],
    ];
    for (const path of ['/hostile', '/no-such-bucket']) {
      for (const [query, name, message] of cases) {
        const result = await send({ method: 'GET', path, query });
        expect({ path, query, status: result.status, body: result.body.replace(/<Resource>.*$/, '') })
          .toEqual({ path, query, status: 400, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code><Message>${message}</Message><ArgumentName>${name}</ArgumentName>` });
      }
    }
    expect((await send({ method: 'GET', path: '/hostile', query: { marker: 'b' } })).status).toBe(200);
    expect((await send({ method: 'GET', path: '/hostile', query: { 'list-type': '2', 'start-after': 'b' } })).status).toBe(200);
  });

  it('echoes the max-keys a listing asked for, uncapped, and reads fetch-owner without case, as S3', async () => {
    expect((await send({ method: 'PUT', path: '/hostile/listed.txt', body: 'x' })).status).toBe(200);
    const v2 = await send({ method: 'GET', path: '/hostile', query: { 'list-type': '2', 'max-keys': '5000', 'fetch-owner': 'True', prefix: 'listed' } });
    expect([v2.status, /<MaxKeys>(\d+)<\/MaxKeys>/.exec(v2.body)?.[1], /<Contents>.*<Owner>.*<\/Contents>/.test(v2.body)]).toEqual([200, '5000', true]);
    const v1 = await send({ method: 'GET', path: '/hostile', query: { 'max-keys': '2000', prefix: 'listed' } });
    expect([v1.status, /<MaxKeys>(\d+)<\/MaxKeys>/.exec(v1.body)?.[1]]).toEqual([200, '2000']);
  });

  it('encodes keys with encoding-type=url as S3 does: Java\'s URLEncoder, a space as +, slashes kept', async () => {
    const key = 'form/a b*~!+é.txt';
    const encoded = 'form/a+b*%7E%21%2B%C3%A9.txt';
    // the path as SigV4 canonicalizes it: every byte but A-Z a-z 0-9 - _ . ~ escaped
    const path = `/hostile/${encodeURIComponent(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
    expect((await send({ method: 'PUT', path, body: 'x' })).status).toBe(200);
    const listed = await send({ method: 'GET', path: '/hostile', query: { 'list-type': '2', prefix: 'form/', 'encoding-type': 'url' } });
    expect(/<Contents><Key>([^<]*)<\/Key>/.exec(listed.body)?.[1]).toBe(encoded);
    const upload = await send({ method: 'POST', path, query: { uploads: '' } });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(upload.body)![1];
    const uploads = await send({ method: 'GET', path: '/hostile', query: { uploads: '', prefix: 'form/', 'encoding-type': 'url' } });
    expect(/<Upload><Key>([^<]*)<\/Key>/.exec(uploads.body)?.[1]).toBe(encoded);
    expect((await send({ method: 'DELETE', path, query: { uploadId } })).status).toBe(204);
  });

  it('answers 304 Not Modified with the validators and the caching headers a 200 would carry, and no body or length (RFC 9110 §15.4.5)', async () => {
    const stored = { 'cache-control': 'max-age=60', expires: 'Thu, 01 Jan 2037 00:00:00 GMT', 'content-disposition': 'inline' };
    const put = await send({ method: 'PUT', path: '/hostile/cached.txt', body: 'cached body', headers: stored });
    const etag = /^etag: (.*)$/im.exec(put.head)![1];
    for (const method of ['GET', 'HEAD']) {
      for (const condition of [{ 'if-none-match': etag }, { 'if-modified-since': new Date().toUTCString() }]) {
        const result = await send({ method, path: '/hostile/cached.txt', headers: condition });
        const headers = Object.fromEntries(result.head.split('\r\n').slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 2)]));
        expect({ method, status: result.status, body: result.body }).toEqual({ method, status: 304, body: '' });
        expect(headers).toMatchObject({ etag, 'cache-control': 'max-age=60', expires: stored.expires });
        expect(headers['last-modified']).toMatch(/GMT$/);
        expect(headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/);
        // a 304 carries no body: neither a length of its own nor a chunked one, nor what only describes a body
        expect([headers['content-length'], headers['transfer-encoding'], headers['content-type'], headers['content-disposition']]).toEqual([undefined, undefined, undefined, undefined]);
      }
    }
    // a control character Node refuses to send: 400, not 500
    for (const value of ['a\u0001b', 'a\u007fb']) {
      const refused = await send({ method: 'GET', path: '/hostile/cached.txt', query: { 'response-cache-control': value } });
      expect(refused.status).toBe(400);
      expect(refused.body).toContain('<Code>InvalidArgument</Code>');
    }
    // response-cache-control is what a 200 to the same request would carry, so the 304 too
    const overridden = await send({ method: 'GET', path: '/hostile/cached.txt', query: { 'response-cache-control': 'no-cache' }, headers: { 'if-none-match': etag } });
    expect([overridden.status, /^cache-control: (.*)$/im.exec(overridden.head)?.[1]]).toEqual([304, 'no-cache']);
  });

  it('limits user metadata to 2 KB of names and values counted in the UTF-8 of what is stored, refusing more with MetadataTooLarge', async () => {
    // 1000 'é' are 2000 bytes of UTF-8 (2668 sent as an RFC 2047 word): with the names and 'n', 2048 bytes fit, 2049 do not
    const word = `=?UTF-8?B?${Buffer.from('é'.repeat(1000)).toString('base64')}?=`;
    const metadata = (filler: number) => ({ 'x-amz-meta-note': word, 'x-amz-meta-n': 'x'.repeat(filler) });
    const fits = await send({ method: 'PUT', path: '/hostile/meta-fits.txt', body: 'x', headers: metadata(2048 - 2000 - 'note'.length - 'n'.length) });
    expect(fits.status).toBe(200);
    const head = await send({ method: 'HEAD', path: '/hostile/meta-fits.txt' });
    expect(/^x-amz-meta-note: (.*)$/im.exec(head.head)![1]).toBe(word);
    const over = await send({ method: 'PUT', path: '/hostile/meta-over.txt', body: 'x', headers: metadata(2049 - 2000 - 'note'.length - 'n'.length) });
    expect([over.status, /<Code>(\w+)<\/Code>/.exec(over.body)?.[1]]).toEqual([400, 'MetadataTooLarge']);
    expect((await send({ method: 'HEAD', path: '/hostile/meta-over.txt' })).status).toBe(404);
  });

  it('decodes RFC 2047 words in user metadata and returns what is not printable US-ASCII as one UTF-8 "B" word, as S3 does', async () => {
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    const cases: Array<[sent: string, returned: string]> = [
      ['plain, as it is', 'plain, as it is'],
      [`=?UTF-8?B?${b64('été')}?=`, `=?UTF-8?B?${b64('été')}?=`],
      ['=?utf-8?q?caf=C3=A9_cr=C3=A8me?=', `=?UTF-8?B?${b64('café crème')}?=`],
      // the space between two words is not text; the one before a word is
      [`tea or =?ISO-8859-1?Q?caf=E9?= =?UTF-8?B?${b64(' ☕')}?=`, `=?UTF-8?B?${b64('tea or café ☕')}?=`],
      // UTF-8 sent raw is read one ISO-8859-1 character a byte, as S3 reads it (and returns it so)
      ['été', `=?UTF-8?B?${b64('Ã©tÃ©')}?=`],
      // a word that cannot be decoded stays as it came
      ['=?x-no-such-charset?B?YQ==?=', '=?x-no-such-charset?B?YQ==?='],
      ['=?UTF-8?B?YQ=?=', '=?UTF-8?B?YQ=?='],
      ['=?UTF-8?B?/w==?=', '=?UTF-8?B?/w==?='],
      // decoded, a line break is text like any other, returned encoded
      [`=?UTF-8?B?${b64('two\r\nlines')}?=`, `=?UTF-8?B?${b64('two\r\nlines')}?=`],
    ];
    for (const [index, [sent, returned]] of cases.entries()) {
      const put = await send({ method: 'PUT', path: `/hostile/meta-word-${index}.txt`, body: 'x', headers: { 'x-amz-meta-v': sent } });
      expect(put.status, sent).toBe(200);
      for (const method of ['HEAD', 'GET']) {
        const answer = await send({ method, path: `/hostile/meta-word-${index}.txt` });
        expect(/^x-amz-meta-v: (.*)$/im.exec(answer.head)?.[1], `${method} ${sent}`).toBe(returned);
      }
    }
    // CopyObject with COPY keeps the stored text, returned the same way
    const copied = await send({ method: 'PUT', path: '/hostile/meta-word-copy.txt', headers: { 'x-amz-copy-source': '/hostile/meta-word-2.txt' } });
    expect(copied.status).toBe(200);
    expect(/^x-amz-meta-v: (.*)$/im.exec((await send({ method: 'HEAD', path: '/hostile/meta-word-copy.txt' })).head)?.[1]).toBe(`=?UTF-8?B?${b64('café crème')}?=`);
  });

  it('answers a header section over its limit with S3\'s RequestHeaderSectionTooLarge, not Node\'s bare 431, writing nothing', async () => {
    // 20 KB of metadata: past the parser's 16 KiB before MetadataTooLarge could be looked at
    const over = await send({ method: 'PUT', path: '/hostile/headers-over.txt', body: 'x', headers: { 'x-amz-meta-big': 'x'.repeat(20_000) } });
    expect(over.status).toBe(400);
    expect(over.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\s*<Error><Code>RequestHeaderSectionTooLarge<\/Code><Message>Your request header section exceeds the maximum allowed size.<\/Message><MaxSizeAllowed>16384<\/MaxSizeAllowed><RequestId>[0-9A-F]{16}<\/RequestId><HostId>[^<]+<\/HostId><\/Error>$/);
    expect(/^x-amz-request-id: (.*)$/im.exec(over.head)?.[1]).toBe(/<RequestId>(\w+)</.exec(over.body)?.[1]);
    // the SDK reads it as the S3 error it is
    const client = s3Client(daemon, credentials);
    try {
      const refused = await client.send(new PutObjectCommand({ Bucket: 'hostile', Key: 'headers-over.txt', Body: 'x', Metadata: { big: 'x'.repeat(20_000) } })).catch((error) => error);
      expect([refused.name, refused.$metadata?.httpStatusCode]).toEqual(['RequestHeaderSectionTooLarge', 400]);
    } finally {
      client.destroy();
    }
    expect((await send({ method: 'HEAD', path: '/hostile/headers-over.txt' })).status).toBe(404);
    // a request line Node cannot read still gets its 400
    const garbled = await new Promise<string>((resolve) => {
      const socket = connect(daemon.port('s3'), '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => { response += chunk; });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(response));
      socket.end('GET /hostile/a b c HTTP/1.1\r\n\r\n');
    });
    expect(garbled).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    // S3's error, with the request's ids
    expect(garbled).toMatch(/^x-amz-request-id: [0-9A-F]{16}\r$/m);
    expect(garbled).toContain('<Code>BadRequest</Code><Message>An error occurred when parsing the HTTP request.</Message>');
  });

  it('copies from a source named in x-amz-copy-source with UTF-8 unencoded, as S3 reads the header\'s bytes', async () => {
    expect((await send({ method: 'PUT', path: `/hostile/${encodeURIComponent('café du matin.txt')}`, body: 'coffee' })).status).toBe(200);
    for (const source of ['/hostile/café du matin.txt', 'hostile/caf%C3%A9%20du%20matin.txt', 'hostile/café%20du matin.txt?versionId=null']) {
      const copied = await send({ method: 'PUT', path: '/hostile/coffee-copy.txt', headers: { 'x-amz-copy-source': source } });
      expect({ source, status: copied.status }).toEqual({ source, status: 200 });
      expect((await send({ method: 'GET', path: '/hostile/coffee-copy.txt' })).body).toBe('coffee');
      expect((await send({ method: 'DELETE', path: '/hostile/coffee-copy.txt' })).status).toBe(204);
    }
  });

  it('ignores ranges it cannot parse and serves the whole object', async () => {
    await send({ method: 'PUT', path: '/hostile/range.txt', body: '0123456789' });
    for (const range of ['bytes=5-2', 'bytes=abc', 'items=0-1', 'bytes=0-1,3-4']) {
      const result = await send({ method: 'GET', path: '/hostile/range.txt', headers: { range } });
      expect({ range, status: result.status, body: result.body }).toEqual({ range, status: 200, body: '0123456789' });
    }
  });

  it('survives random requests without a server error, then works normally', async () => {
    const seed = fuzzSeed();
    const random = prng(seed);
    const methods = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'];
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
    const segments = ['hostile', 'nope', 'a', '..', '%2e%2e', '%ff', 'x'.repeat(300), '', 'k%20y', '%E2%82%AC'];
    const queries = [{}, { uploads: '' }, { uploadId: 'zz' }, { delete: '' }, { 'list-type': '2' }, { versions: '' }, { notification: '' },
      { partNumber: '0', uploadId: 'x' }, { 'max-keys': '-1' }, { location: '' }, { 'continuation-token': '!!!' }, { acl: '' }, { tagging: '' },
      { policy: '' }, { retention: '' }, { 'max-buckets': '0' }];
    const bodies = ['', '<', '<?xml version="1.0"?><Delete><Object><Key>k</Key></Object></Delete>', String.fromCharCode(...Array.from({ length: 64 }, () => Math.floor(random() * 256))),
      '<NotificationConfiguration><TopicConfiguration/></NotificationConfiguration>', '<CompleteMultipartUpload/>',
      '<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>000000000000</ID></Grantee></Grant></AccessControlList></AccessControlPolicy>'];
    for (let i = 0; i < 150; i++) {
      const path = `/${Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(segments)).join('/')}`;
      const result = await send({ method: pick(methods), path, query: pick(queries), body: Buffer.from(pick(bodies), 'binary') });
      // 501 NotImplemented is S3's answer for what the gateway does not do, not a server error
      if (result.status !== 501) expect(result.status, `seed ${seed}, ${path}: ${result.body}`).toBeLessThan(500);
    }
    expect((await send({ method: 'PUT', path: '/hostile/after-fuzz.txt', body: 'still fine' })).status).toBe(200);
    expect((await send({ method: 'GET', path: '/hostile/after-fuzz.txt' })).body).toBe('still fine');
  });
  it('keeps every object whole under concurrent valid requests on a few keys, most with one part replaced by a random one', async () => {
    const seed = fuzzSeed();
    const random = prng(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const keys = ['k1', 'k2', 'dir/k3'];
    // bodies on both sides of the size kept in SQLite (64 KiB), of letters: the raw client reads answers as text
    const content = () => Buffer.from(Array.from({ length: pick([0, 10, 4096, 65_536, 65_537, 200_000]) }, () => 97 + Math.floor(random() * 26)));
    const md5 = (body: Buffer) => createHash('md5').update(body).digest('base64');
    const validCalls = (): RawRequest => {
      const key = pick(keys);
      return pick<() => RawRequest>([
        () => { const body = content(); return { method: 'PUT', path: `/fuzzed/${key}`, body, headers: { 'content-md5': md5(body), 'content-type': 'text/plain', 'x-amz-meta-n': String(body.length) } }; },
        () => ({ method: 'PUT', path: `/fuzzed/${key}`, body: content(), headers: { 'if-none-match': '*' } }),
        () => ({ method: 'GET', path: `/fuzzed/${key}`, headers: pick([{}, { range: 'bytes=0-99' }, { range: 'bytes=-10' }]) }),
        () => ({ method: 'HEAD', path: `/fuzzed/${key}` }),
        () => ({ method: 'DELETE', path: `/fuzzed/${key}` }),
        () => ({ method: 'PUT', path: `/fuzzed/${key}`, headers: { 'x-amz-copy-source': `/fuzzed/${pick(keys)}`, 'x-amz-metadata-directive': pick(['COPY', 'REPLACE']) } }),
        () => ({ method: 'GET', path: '/fuzzed', query: { 'list-type': '2', prefix: pick(['', 'k', 'dir/']), delimiter: pick(['', '/']), 'max-keys': pick(['1', '2', '1000']) } }),
        () => deleteObjects(`<Delete><Object><Key>${pick(keys)}</Key></Object><Object><Key>${pick(keys)}</Key></Object></Delete>`, '/fuzzed'),
      ])();
    };
    const junk = () => pick(['', '*', 'bytes=5-2', 'bytes=abc', '"nope"', 'x'.repeat(3000), '\u00ff', 'COPY', '/fuzzed/../etc', 'null', '-1']);
    const mutated = (call: RawRequest): RawRequest => {
      const headers = Object.keys(call.headers ?? {});
      switch (Math.floor(random() * 5)) {
        case 0: return headers.length ? { ...call, headers: { ...call.headers, [pick(headers)]: junk() } } : call;
        case 1: return { ...call, headers: { ...call.headers, [pick(['content-md5', 'if-match', 'if-none-match', 'range', 'x-amz-copy-source', 'if-modified-since', 'x-amz-checksum-crc32'])]: junk() } };
        // a DELETE of the bucket itself would succeed whenever it is empty and leave nothing to check
        case 2: return { ...call, method: pick(call.path === '/fuzzed' ? ['GET', 'PUT', 'POST', 'HEAD'] : ['GET', 'PUT', 'POST', 'DELETE', 'HEAD']) };
        case 3: return { ...call, body: Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256))) };
        default: return { ...call, query: pick([{}, { uploads: '' }, { uploadId: 'zz', partNumber: '1' }, { acl: '' }, { tagging: '' }, { 'list-type': '2', 'continuation-token': 'zz' }, { versions: '' }]) };
      }
    };

    expect((await send({ method: 'PUT', path: '/fuzzed' })).status).toBe(200);
    const serverErrors: string[] = [];
    let sent = 0;
    const worker = async () => {
      while (sent < 600) {
        sent++;
        const call = random() < 0.5 ? validCalls() : mutated(validCalls());
        const result = await send(call);
        // 501 NotImplemented is S3's answer for what the gateway does not do, not a server error
        if (result.status >= 500 && result.status !== 501) serverErrors.push(`${result.status} ${call.method} ${call.path} ${JSON.stringify(call.query ?? {})} ${JSON.stringify(call.headers ?? {}).slice(0, 200)}: ${result.body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(serverErrors, `seed ${seed}`).toEqual([]);

    // whatever came last, every object listed is whole: its content's MD5 is its ETag
    const client = s3Client(daemon, credentials);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'fuzzed' }));
    for (const { Key, ETag, Size } of listed.Contents ?? []) {
      const object = await client.send(new GetObjectCommand({ Bucket: 'fuzzed', Key }));
      const body = Buffer.from(await object.Body!.transformToByteArray());
      expect({ key: Key, size: body.length, etag: `"${createHash('md5').update(body).digest('hex')}"` }, `seed ${seed}`).toEqual({ key: Key, size: Size, etag: ETag });
      expect(object.ETag, `seed ${seed}`).toBe(ETag);
    }
    client.destroy();
  });

  it('asks for the body (100 Continue) only once a request is allowed: a refused upload is refused before it is sent', async () => {
    const port = daemon.port('s3');
    const body = randomBytes(2 * 1024 * 1024);
    /** A PUT with Expect: 100-continue, its body sent only after a 100: the responses as received, and whether the body went. */
    const putExpecting = async (as: SignatureV4, path: string, headers: Record<string, string> = {}) => {
      const signed = await as.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port, path, query: {}, headers: {
        host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(body.length), expect: '100-continue', ...headers } });
      const head = `PUT ${path} HTTP/1.1\r\n${Object.entries(signed.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}connection: close\r\n\r\n`;
      return new Promise<{ response: string; bodySent: boolean }>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        let response = '';
        let bodySent = false;
        socket.on('data', (chunk) => {
          response += chunk;
          if (!bodySent && response.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
            bodySent = true;
            socket.write(body);
          }
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ response, bodySent }));
        socket.write(head);
      });
    };
    const allowed = await putExpecting(signer, '/hostile/continued.bin');
    expect(allowed.bodySent).toBe(true);
    expect(allowed.response).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    expect(allowed.response.toLowerCase()).toContain(`etag: "${createHash('md5').update(body).digest('hex')}"`);

    const reader = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: await addKey(daemon, ['--read', 'hostile']), sha256: Sha256 as never,
      uriEscapePath: false, applyChecksum: false });
    const wrongSecret = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { ...credentials, secretAccessKey: 'not-the-secret' }, sha256: Sha256 as never,
      uriEscapePath: false, applyChecksum: false });
    for (const [as, code] of [[reader, 'AccessDenied'], [wrongSecret, 'SignatureDoesNotMatch']] as const) {
      const refused = await putExpecting(as, '/hostile/refused-early.bin');
      expect(refused.bodySent).toBe(false);
      expect(refused.response).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(refused.response).toContain(`<Code>${code}</Code>`);
    }
    // refused on its headers by the operation: answered before the body is asked for too
    for (const [path, headers, status, code] of [
      ['/no-such-bucket/refused-early.bin', {}, '404 Not Found', 'NoSuchBucket'],
      ['/hostile/refused-early.bin', { 'content-length': String(5 * 1024 ** 3 + 1) }, '400 Bad Request', 'EntityTooLarge'],
      ['/hostile/refused-early.bin', { 'content-md5': 'xx' }, '400 Bad Request', 'InvalidDigest'],
    ] as const) {
      const refused = await putExpecting(signer, path, headers);
      expect(refused.bodySent, code).toBe(false);
      expect(refused.response).toMatch(new RegExp(`^HTTP/1\\.1 ${status}\r\n`));
      expect(refused.response).toContain(`<Code>${code}</Code>`);
    }
    expect((await send({ method: 'HEAD', path: '/hostile/refused-early.bin' })).status).toBe(404);
  });
});

describe('S3 API: XML bodies of many small elements, on a board-sized heap', () => {
  let daemon: TestDaemon;
  let client: ReturnType<typeof s3Client>;

  beforeAll(async () => {
    // the minimal-128mb board's heap: a parser's tree of a 4 MiB body of tiny elements took all of it
    daemon = await TestDaemon.start({ config: {}, env: { NODE_OPTIONS: '--max-old-space-size=48' } });
    client = s3Client(daemon, await addKey(daemon));
    await client.send(new CreateBucketCommand({ Bucket: 'elements' }));
  });
  afterAll(async () => { await daemon.cleanup(); });

  it('answers MalformedXML to a DeleteObjects or CompleteMultipartUpload with more elements than S3 allows, and stays up', async () => {
    const manyKeys = Array.from({ length: 140_000 }, () => ({ Key: 'a' }));
    await expect(client.send(new DeleteObjectsCommand({ Bucket: 'elements', Delete: { Objects: manyKeys } }))).rejects.toMatchObject({ name: 'MalformedXML' });
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'elements', Key: 'parts.bin' }));
    const manyParts = Array.from({ length: 75_000 }, (_, index) => ({ PartNumber: (index % 10_000) + 1, ETag: '"0"' }));
    await expect(client.send(new CompleteMultipartUploadCommand({ Bucket: 'elements', Key: 'parts.bin', UploadId, MultipartUpload: { Parts: manyParts } })))
      .rejects.toMatchObject({ name: 'MalformedXML' });
    // the largest valid documents still parse: 1,000 keys; 10,000 parts (answered InvalidPart: none was uploaded)
    const deleted = await client.send(new DeleteObjectsCommand({ Bucket: 'elements', Delete: { Objects: Array.from({ length: 1000 }, (_, index) => ({ Key: `k${index}` })) } }));
    expect(deleted.Deleted).toHaveLength(1000);
    const tenThousand = Array.from({ length: 10_000 }, (_, index) => ({ PartNumber: index + 1, ETag: '"0123456789abcdef0123456789abcdef"', ChecksumCRC32: 'AAAAAA==' }));
    await expect(client.send(new CompleteMultipartUploadCommand({ Bucket: 'elements', Key: 'parts.bin', UploadId, MultipartUpload: { Parts: tenThousand } })))
      .rejects.toMatchObject({ name: 'InvalidPart' });
    expect(daemon.process.exitCode).toBeNull();
  }, 60_000);
});
