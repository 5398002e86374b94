import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { AuthError } from './sigv4.js';

/**
 * The S3 additional checksums (`x-amz-checksum-crc32|crc32c|crc64nvme|sha1|sha256`), computed incrementally
 * over a body and compared with what the client sent in a header or an aws-chunked trailer.
 */

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

export interface RunningChecksum {
  update(data: Buffer): void;
  /** base64, as the headers carry it (CRCs big-endian). */
  digest(): string;
}

function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

/** `x-amz-checksum-crc32` → 'crc32'; undefined for any other name. */
export function checksumHeaderAlgorithm(headerName: string): ChecksumAlgorithm | undefined {
  const name = headerName.toLowerCase();
  if (!name.startsWith('x-amz-checksum-')) return undefined;
  const algorithm = name.slice('x-amz-checksum-'.length);
  return isChecksumAlgorithm(algorithm) ? algorithm : undefined;
}

export function runningChecksum(algorithm: ChecksumAlgorithm): RunningChecksum {
  switch (algorithm) {
    case 'crc32': {
      let value = 0;
      return { update: (data) => { value = crc32(data, value); }, digest: () => uint32Base64(value) };
    }
    case 'crc32c': {
      const crc = new Crc32c();
      return { update: (data) => { crc.update(data); }, digest: () => uint32Base64(crc.digest()) };
    }
    case 'crc64nvme':
      return new Crc64Nvme();
    case 'sha1':
    case 'sha256': {
      const hash: Hash = createHash(algorithm);
      return { update: (data) => { hash.update(data); }, digest: () => hash.digest('base64') };
    }
  }
}

/**
 * CRC-64/NVME (the S3 `CRC64NVME` checksum): reflected polynomial 0x9A6C9329AC4BC9B5, initial value
 * and final XOR all ones. Kept as two 32-bit halves, a byte at a time through a 256-entry table:
 * plain numbers, no BigInt in the loop.
 */
class Crc64Nvme implements RunningChecksum {
  private static high: Uint32Array | undefined;
  private static low: Uint32Array | undefined;
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Buffer): void {
    const high = (Crc64Nvme.high ??= Crc64Nvme.table().high);
    const low = (Crc64Nvme.low ??= Crc64Nvme.table().low);
    let { hi, lo } = this;
    for (let i = 0; i < data.length; i++) {
      const index = (lo ^ data[i]) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ low[index]) >>> 0;
      hi = ((hi >>> 8) ^ high[index]) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
  }

  digest(): string {
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeUInt32BE((~this.hi) >>> 0, 0);
    bytes.writeUInt32BE((~this.lo) >>> 0, 4);
    return bytes.toString('base64');
  }

  private static table(): { high: Uint32Array; low: Uint32Array } {
    const high = new Uint32Array(256);
    const low = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let hi = 0;
      let lo = n;
      for (let bit = 0; bit < 8; bit++) {
        const carry = lo & 1;
        lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
        hi >>>= 1;
        if (carry) {
          hi = (hi ^ 0x9a6c9329) >>> 0;
          lo = (lo ^ 0xac4bc9b5) >>> 0;
        }
      }
      high[n] = hi;
      low[n] = lo;
    }
    return { high, low };
  }
}

function uint32Base64(value: number): string {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

/** S3: a checksum value that is not base64 of the algorithm's digest size is InvalidRequest, before any body is read. */
export function checkChecksumValue(algorithm: ChecksumAlgorithm, value: string): void {
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== DIGEST_BYTES[algorithm] || bytes.toString('base64') !== value) {
    throw new AuthError('InvalidRequest', `Value for x-amz-checksum-${algorithm} header is invalid.`, 400);
  }
}

/** S3's BadDigest for an additional checksum, e.g. "The CRC32 you specified did not match the calculated checksum." */
export function checksumMismatch(algorithm: ChecksumAlgorithm): AuthError {
  return new AuthError('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`, 400);
}
