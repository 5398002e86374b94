import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { AuthError } from './sigv4.js';

/**
 * The S3 additional checksums (`x-amz-checksum-crc32|crc32c|sha1|sha256`), computed incrementally
 * over a body and compared with what the client sent in a header or an aws-chunked trailer.
 */

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'sha1', 'sha256'] as const;
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
    case 'sha1':
    case 'sha256': {
      const hash: Hash = createHash(algorithm);
      return { update: (data) => { hash.update(data); }, digest: () => hash.digest('base64') };
    }
  }
}

function uint32Base64(value: number): string {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, sha1: 20, sha256: 32 };

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
