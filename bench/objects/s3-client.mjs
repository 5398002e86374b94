// The bench's S3 client, the same for outpostd and s3rver: keep-alive HTTP with SigV4 header
// signing over UNSIGNED-PAYLOAD, so the client costs little next to the server it measures. Small
// requests go over its own keep-alive connections (`KeepAliveConnection`): Node's HTTP client costs
// ~120 µs of CPU per request here, as much as the server spends on a 4 KiB GET, and the bench
// shares the machine's two cores with the server.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

/** The one read buffer of every download (the bench runs one at a time). */
const DOWNLOAD_BUFFER = Buffer.allocUnsafe(1024 * 1024);

const hmac = (key, text) => createHmac('sha256', key).update(text).digest();

/**
 * A request body of `size` bytes written as `chunk` repeated (the last one cut), waiting for
 * `drain` when the socket is full: a large object streamed without holding it in memory.
 */
export function streamedBody(size, chunk) {
  return (req) => {
    let written = 0;
    const more = () => {
      while (written < size) {
        const piece = written + chunk.length <= size ? chunk : chunk.subarray(0, size - written);
        written += piece.length;
        if (!req.write(piece)) return req.once('drain', more);
      }
      req.end();
    };
    more();
  };
}

export class S3BenchClient {
  constructor({ port, accessKeyId, secretAccessKey, region = 'us-east-1', connections = 16 }) {
    this.port = port;
    this.host = `127.0.0.1:${port}`;
    this.accessKeyId = accessKeyId;
    this.secret = secretAccessKey;
    this.region = region;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    this.keys = new Map();
    this.connections = connections;
    /** Idle keep-alive connections, and requests waiting for one. */
    this.idle = [];
    this.open = 0;
    this.waiting = [];
  }

  signingKey(date) {
    let key = this.keys.get(date);
    if (!key) {
      key = hmac(hmac(hmac(hmac(`AWS4${this.secret}`, date), this.region), 's3'), 'aws4_request');
      this.keys.set(date, key);
    }
    return key;
  }

  /** Headers of a signed request; `path` is already URI-encoded, `query` canonical (sorted, encoded). */
  sign(method, path, query = '') {
    const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const date = amzDate.slice(0, 8);
    const headers = { host: this.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-date': amzDate };
    const names = Object.keys(headers).sort();
    const canonical = [method, path, query, names.map((name) => `${name}:${headers[name]}\n`).join(''), names.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
    const scope = `${date}/${this.region}/s3/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const signature = createHmac('sha256', this.signingKey(date)).update(toSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${this.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return headers;
  }

  /**
   * One request; `body` is a Buffer or a function writing the body to the request (large bodies);
   * resolves with the status and the number of response bytes (the body itself is discarded
   * unless `keep`).
   */
  request(method, path, { query = '', body, length, keep = false } = {}) {
    if (typeof body !== 'function') return this.small(method, path, query, body, keep);
    const headers = this.sign(method, path, query);
    if (body !== undefined) headers['content-length'] = String(length ?? body.length);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path: query ? `${path}?${query}` : path, headers, agent: this.agent }, (res) => {
        let bytes = 0;
        const chunks = [];
        res.on('data', (chunk) => {
          bytes += chunk.length;
          if (keep) chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes, body: keep ? Buffer.concat(chunks).toString() : undefined }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (typeof body === 'function') body(req);
      else req.end(body);
    });
  }

  /**
   * A GET whose body is only counted, on a connection of its own read into one reused buffer: Node's
   * HTTP client copies every read of a body into a new buffer, which costs the bench more CPU than
   * the server spends sending a large object. Resolves with the status and the body's byte count.
   */
  download(path) {
    const headers = this.sign('GET', path);
    const head = [`GET ${path} HTTP/1.1`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`), 'connection: close', '', ''].join('\r\n');
    return new Promise((resolve, reject) => {
      let header = '';
      let status = 0;
      let length = -1;
      let bytes = 0;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        socket.destroy();
        if (bytes !== length) reject(new Error(`GET ${path}: ${bytes} of ${length} body bytes`));
        else resolve({ status, bytes });
      };
      const socket = net.connect({
        host: '127.0.0.1', port: this.port,
        onread: {
          buffer: DOWNLOAD_BUFFER,
          callback: (read, buffer) => {
            let body = read;
            if (length < 0) {
              header += buffer.toString('latin1', 0, read);
              const end = header.indexOf('\r\n\r\n');
              if (end < 0) return;
              status = Number(header.slice(9, 12));
              // a body without Content-Length (chunked) would be miscounted: refused
              const announced = /\r\ncontent-length: *(\d+)/i.exec(header);
              if (!announced) return finish();
              length = Number(announced[1]);
              body = header.length - end - 4;
            }
            bytes += body;
            if (bytes >= length) finish();
          },
        },
      }, () => socket.write(head));
      socket.on('error', reject);
      socket.on('end', finish);
    });
  }

  /** A request with a Buffer body (or none) on a keep-alive connection of the pool. */
  async small(method, path, query, body, keep) {
    const headers = this.sign(method, path, query);
    let head = `${method} ${query ? `${path}?${query}` : path} HTTP/1.1\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    head += `content-length: ${body ? body.length : 0}\r\n\r\n`;
    for (let attempt = 1; ; attempt++) {
      const connection = await this.connection();
      try {
        return await connection.exchange(head, body, method === 'HEAD', keep);
      } catch (error) {
        // the server closed the idle connection as the request went out: once more on a new one
        if (attempt === 2 || !connection.unanswered) throw error;
      } finally {
        if (connection.usable) this.release(connection);
        else this.open--;
      }
    }
  }

  connection() {
    let idle = this.idle.pop();
    // closed by the server while idle (its keep-alive timeout)
    while (idle && !idle.usable) {
      this.open--;
      idle = this.idle.pop();
    }
    if (idle) return Promise.resolve(idle);
    if (this.open < this.connections) {
      this.open++;
      return Promise.resolve(new KeepAliveConnection(this.port));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(connection) {
    const next = this.waiting.shift();
    if (next) next(connection);
    else this.idle.push(connection);
  }

  close() {
    this.agent.destroy();
    for (const connection of this.idle) connection.socket.destroy();
    this.idle = [];
  }
}

/**
 * One HTTP/1.1 connection, one request at a time: writes the head and body, parses the status,
 * Content-Length or chunked framing, and counts (or keeps) the body.
 */
class KeepAliveConnection {
  constructor(port) {
    this.socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.usable = true;
    this.pending = undefined;
    this.socket.on('data', (data) => this.pending?.data(data));
    const fail = (error) => {
      this.usable = false;
      this.pending?.fail(error ?? new Error('connection closed'));
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail());
  }

  exchange(head, body, headOnly, keep) {
    this.unanswered = true;
    return new Promise((resolve, reject) => {
      if (!this.usable) return reject(new Error('connection closed'));
      let buffered = Buffer.alloc(0);
      let status = 0;
      let remaining = -1; // body bytes left (Content-Length), -2 chunked
      let chunkLeft = 0;
      let bytes = 0;
      const kept = [];
      const done = () => {
        this.pending = undefined;
        resolve({ status, bytes, body: keep ? Buffer.concat(kept).toString() : undefined });
      };
      const take = (data) => {
        bytes += data.length;
        if (keep) kept.push(data);
      };
      this.pending = {
        fail: (error) => { this.pending = undefined; reject(error); },
        data: (data) => {
          this.unanswered = false;
          buffered = buffered.length ? Buffer.concat([buffered, data]) : data;
          if (remaining === -1) {
            const end = buffered.indexOf('\r\n\r\n');
            if (end < 0) return;
            const header = buffered.toString('latin1', 0, end);
            buffered = buffered.subarray(end + 4);
            status = Number(header.slice(9, 12));
            if (/\r\nconnection: *close/i.test(header)) this.usable = false;
            const length = /\r\ncontent-length: *(\d+)/i.exec(header);
            if (headOnly || status === 204 || status === 304) remaining = 0;
            else if (length) remaining = Number(length[1]);
            else if (/\r\ntransfer-encoding: *chunked/i.test(header)) remaining = -2;
            else return this.pending.fail(new Error(`${status} answer without a length`));
          }
          if (remaining >= 0) {
            const part = buffered.subarray(0, remaining);
            take(part);
            remaining -= part.length;
            buffered = buffered.subarray(part.length);
            if (remaining === 0) done();
            return;
          }
          // chunked: size line, data, CRLF; a 0 size line and CRLF end it (no trailers expected)
          for (;;) {
            if (chunkLeft > 0) {
              const part = buffered.subarray(0, chunkLeft - 2 > 0 ? chunkLeft - 2 : 0);
              take(part);
              chunkLeft -= part.length;
              buffered = buffered.subarray(part.length);
              if (chunkLeft > 2 || buffered.length < 2) return;
              buffered = buffered.subarray(2);
              chunkLeft = 0;
            }
            const line = buffered.indexOf('\r\n');
            if (line < 0) return;
            const size = parseInt(buffered.toString('latin1', 0, line), 16);
            buffered = buffered.subarray(line + 2);
            if (size === 0) {
              if (buffered.length >= 2) done();
              else this.pending.data = () => done();
              return;
            }
            chunkLeft = size + 2;
          }
        },
      };
      this.socket.cork();
      this.socket.write(head, 'latin1');
      if (body && body.length) this.socket.write(body);
      this.socket.uncork();
    });
  }
}
