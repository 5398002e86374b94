import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

// scrypt N=2^14, r=8: ~16 MiB and a few tens of ms per hash on a Pi 3 — costly
// to brute-force, so verifications run one at a time (see PasswordVerifier).
const COST = 16384;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const KEY_LENGTH = 32;
const MAX_MEMORY = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, cost = COST, blockSize = BLOCK_SIZE, parallelism = PARALLELISM): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N: cost, r: blockSize, p: parallelism, maxmem: MAX_MEMORY }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salt$hash`, base64 parts, self-describing so the cost can change later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt);
  return ['scrypt', COST, BLOCK_SIZE, PARALLELISM, salt.toString('base64'), key.toString('base64')].join('$');
}

async function checkHash(password: string, encoded: string): Promise<boolean> {
  const [scheme, cost, blockSize, parallelism, salt, hash] = encoded.split('$');
  if (scheme !== 'scrypt' || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await derive(password, Buffer.from(salt, 'base64'), Number(cost), Number(blockSize), Number(parallelism));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Thrown by PasswordVerifier.verify when too many checks already wait for their scrypt run. */
export class VerifierBusyError extends Error {}

/**
 * Verifies passwords one scrypt at a time (bounding memory on a small board) and
 * remembers recent successes as a salted SHA-256 so a device that reconnects
 * every few seconds costs microseconds, not a scrypt run. At most `maxWaiting`
 * checks wait their turn (a few seconds of scrypt runs on a Pi): beyond, a check
 * is refused at once, so a flood of logins cannot queue without bound.
 */
export class PasswordVerifier {
  private readonly recent = new Map<string, Buffer>();
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private readonly pepper = randomBytes(16);

  constructor(private readonly maxRemembered = 4096, private readonly maxWaiting = 128) {}

  async verify(thing: string, password: string, encoded: string): Promise<boolean> {
    const fingerprint = createHash('sha256').update(this.pepper).update(encoded).update('\0').update(password).digest();
    if (this.remembers(thing, fingerprint)) return true;
    if (this.waiting >= this.maxWaiting) throw new VerifierBusyError(`${this.waiting} password checks are waiting`);
    this.waiting++;
    // a check of the same password that succeeded meanwhile (the device's own retry) spares this one its run
    const result = this.queue.then(() => this.remembers(thing, fingerprint) || checkHash(password, encoded)).finally(() => { this.waiting--; });
    this.queue = result.catch(() => false);
    const ok = await result;
    if (ok) this.remember(thing, fingerprint);
    return ok;
  }

  private remembers(thing: string, fingerprint: Buffer): boolean {
    const remembered = this.recent.get(thing);
    return remembered !== undefined && timingSafeEqual(remembered, fingerprint);
  }

  forget(thing: string): void {
    this.recent.delete(thing);
  }

  private remember(thing: string, fingerprint: Buffer): void {
    this.recent.delete(thing);
    this.recent.set(thing, fingerprint);
    if (this.recent.size > this.maxRemembered) this.recent.delete(this.recent.keys().next().value!);
  }
}
