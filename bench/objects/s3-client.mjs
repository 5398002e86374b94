// The bench's S3 client, the same for outpostd and s3rver: keep-alive HTTP with SigV4 header
// signing over UNSIGNED-PAYLOAD, so the client costs little next to the server it measures.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';

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

  close() {
    this.agent.destroy();
  }
}
