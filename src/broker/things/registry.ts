import { randomBytes, X509Certificate } from 'node:crypto';
import { policySchema, type Policy } from '../../config/schema.js';
import type { Store } from '../../store/store.js';
import { formatConfigIssues } from '../../config/load.js';
import { thingsMigrations } from './migrations.js';
import { hashPassword, PasswordVerifier } from './password.js';

/** AWS IoT thing names: 1-128 of `[a-zA-Z0-9:_-]`. */
export const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const MAX_THING_NAME = 128;

/** AWS IoT's thing names, else 400: a malformed name names no thing, so it is refused rather than not found. */
export function checkThingName(name: string): string {
  if (!THING_NAME.test(name)) throw new ThingError(400, `invalid thing name "${name}": expected 1-128 characters of [a-zA-Z0-9:_-]`);
  return name;
}

export interface Thing {
  name: string;
  hasPassword: boolean;
  certFingerprint: string | null;
  /** The thing's own policy; null means the configured default policy. */
  policy: Policy | null;
  createdAt: number;
}

interface ThingRow {
  name: string;
  password_hash: string | null;
  cert_fingerprint: string | null;
  policy: string | null;
  created_at: number;
}

export class ThingError extends Error {
  constructor(readonly status: 400 | 404 | 409, message: string) {
    super(message);
    this.name = 'ThingError';
  }
}

/** The registry of things: identities that may connect, with their credentials and policies. */
export class ThingRegistry {
  private readonly verifier = new PasswordVerifier();
  /** What a login of an unknown thing, or of one without a password, is checked against. */
  private decoyHash: Promise<string> | undefined;
  private readonly select;
  private readonly selectByFingerprint;

  constructor(private readonly store: Store) {
    store.migrate('things', thingsMigrations);
    this.select = store.db.prepare<[string], ThingRow>('SELECT * FROM things WHERE name = ?');
    this.selectByFingerprint = store.db.prepare<[string], ThingRow>('SELECT * FROM things WHERE cert_fingerprint = ?');
  }

  list(): Thing[] {
    return this.store.db.prepare<[], ThingRow>('SELECT * FROM things ORDER BY name').all().map(toThing);
  }

  get(name: string): Thing | undefined {
    const row = this.select.get(name);
    return row && toThing(row);
  }

  byFingerprint(fingerprint: string): Thing | undefined {
    const row = this.selectByFingerprint.get(normaliseFingerprint(fingerprint));
    return row && toThing(row);
  }

  /**
   * The registered thing a client id belongs to: of the things whose name is the id or, followed by
   * `-`, begins it (the default policy's `${thing}` and `${thing}-*`), the one with the longest name.
   * Without it thing `greenhouse` could take client id `greenhouse-1` from thing `greenhouse-1`.
   */
  clientIdOwner(clientId: string): string | undefined {
    // names are at most 128 characters: only the prefixes that short are looked up
    let end = clientId.length <= MAX_THING_NAME ? clientId.length : clientId.lastIndexOf('-', MAX_THING_NAME);
    for (; end > 0; end = clientId.lastIndexOf('-', end - 1)) {
      const name = clientId.slice(0, end);
      if (THING_NAME.test(name) && this.select.get(name)) return name;
    }
    return undefined;
  }

  async add(name: string, credentials: { password?: string; certificatePem?: string; fingerprint?: string }): Promise<Thing> {
    checkThingName(name);
    const fingerprint = credentials.certificatePem ? certificateFingerprint(credentials.certificatePem)
      : credentials.fingerprint ? normaliseFingerprint(credentials.fingerprint) : null;
    this.checkUnused(name, fingerprint);
    const passwordHash = credentials.password === undefined ? null : await hashPassword(credentials.password);
    const createdAt = Date.now();
    await this.store.commit.run(() => {
      // again in the transaction: an add of the same name or certificate may have come while the password was hashed
      this.checkUnused(name, fingerprint);
      this.store.db.prepare('INSERT INTO things (name, password_hash, cert_fingerprint, policy, created_at) VALUES (?, ?, ?, NULL, ?)')
        .run(name, passwordHash, fingerprint, createdAt);
    });
    return { name, hasPassword: passwordHash !== null, certFingerprint: fingerprint, policy: null, createdAt };
  }

  private checkUnused(name: string, fingerprint: string | null): void {
    if (this.select.get(name)) throw new ThingError(409, `thing ${name} already exists`);
    if (fingerprint && this.selectByFingerprint.get(fingerprint)) throw new ThingError(409, 'that certificate is already registered to another thing');
  }

  async remove(name: string): Promise<void> {
    const result = await this.store.commit.run(() => this.store.db.prepare('DELETE FROM things WHERE name = ?').run(name));
    if (result.changes === 0) throw new ThingError(404, `no such thing: ${name}`);
    this.verifier.forget(name);
  }

  async setPassword(name: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    const result = await this.store.commit.run(() => this.store.db.prepare('UPDATE things SET password_hash = ? WHERE name = ?').run(hash, name));
    if (result.changes === 0) throw new ThingError(404, `no such thing: ${name}`);
    this.verifier.forget(name);
  }

  /**
   * Replaces the thing's policy by what `change` makes of its current one (null: its own is none),
   * read in the write's transaction, so that two changes at once both count; null returns it to the
   * configured default.
   */
  async setPolicy(name: string, change: (current: Policy | null) => unknown): Promise<Thing> {
    return this.store.commit.run(() => {
      const thing = this.get(name);
      if (!thing) throw new ThingError(404, `no such thing: ${name}`);
      this.store.db.prepare('UPDATE things SET policy = ? WHERE name = ?').run(policyText(change(thing.policy)), name);
      return this.get(name)!;
    });
  }

  /**
   * The thing if `password` is its password; undefined for an unknown thing or a wrong password.
   * The check may wait its turn (scrypt): the thing is read again after it, so one removed, given
   * another password or another policy meanwhile is not admitted as it was.
   */
  async checkPassword(name: string, password: string): Promise<Thing | undefined> {
    const row = this.select.get(name);
    if (!row?.password_hash) {
      // checked against a hash of no thing's all the same: answered at once, an unknown name would
      // tell a client probing names which things exist (and skip the queue of checks)
      this.decoyHash ??= hashPassword(randomBytes(32).toString('base64'));
      await this.verifier.verify(name, password, await this.decoyHash);
      return undefined;
    }
    if (!(await this.verifier.verify(name, password, row.password_hash))) return undefined;
    const now = this.select.get(name);
    return now?.password_hash === row.password_hash ? toThing(now) : undefined;
  }
}

function toThing(row: ThingRow): Thing {
  return {
    name: row.name,
    hasPassword: row.password_hash !== null,
    certFingerprint: row.cert_fingerprint,
    policy: row.policy ? (JSON.parse(row.policy) as Policy) : null,
    createdAt: row.created_at,
  };
}

/** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it. */
export function certificateFingerprint(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch (error) {
    throw new ThingError(400, `not a PEM certificate: ${(error as Error).message}`);
  }
}

function normaliseFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/^sha256 fingerprint=/i, '').replace(/[^0-9a-f]/gi, '').toUpperCase();
  if (hex.length !== 64) throw new ThingError(400, 'expected a SHA-256 fingerprint (64 hex digits)');
  return hex.match(/../g)!.join(':');
}

/** A policy as stored (JSON), once valid; null for none. */
function policyText(policy: unknown): string | null {
  if (policy === null) return null;
  const parsed = policySchema().safeParse(policy);
  if (!parsed.success) {
    // the configuration's words for the same policy keys, on one line
    const problems = formatConfigIssues(parsed.error.issues, policy).split('\n').map((line) => line.trim().replace(/^\(top level\)/, 'policy'));
    throw new ThingError(400, `invalid policy: ${problems.join('; ')}`);
  }
  return JSON.stringify(parsed.data);
}
