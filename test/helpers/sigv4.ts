import { createHash, createHmac } from 'node:crypto';

/** The hash @smithy/signature-v4 asks for (its `sha256` option), on node:crypto: SHA-256, or HMAC-SHA-256 with a secret. */
export class Sha256 {
  private hash;
  constructor(secret?: string | Uint8Array) { this.hash = secret ? createHmac('sha256', secret) : createHash('sha256'); }
  update(data: string | Uint8Array): void { this.hash.update(data); }
  async digest(): Promise<Uint8Array> { return new Uint8Array(this.hash.digest()); }
  reset(): void {}
}
