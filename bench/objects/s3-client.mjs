// The bench's S3 client, the same for outpostd and s3rver: keep-alive HTTP with SigV4 header
// signing over UNSIGNED-PAYLOAD, so the client costs little next to the server it measures.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

/** The one read buffer of every download (the bench runs one at a time). */
const DOWNLOAD_BUFFER = Buffer.allocUnsafe(1024 * 1024);

const hmac = (key, text) => createHmac('sha256', key).update(text).digest();

export class S3BenchClient {
  constructor({ port, accessKeyId, secretAccessKey, region = 'us-east-1', connections = 16 }) {
    this.port = port;
    this.host = `127.0.0.1:${port}`;
    this.accessKeyId = accessKeyId;
    this.secret = secretAccessKey;
    this.region = region;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    this.keys = new Map();
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

  close() {
    this.agent.destroy();
  }
}
