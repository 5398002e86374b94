import { randomBytes, randomInt } from 'node:crypto';
import type { Migrations, Store } from '../store/store.js';

export type Permission = 'read' | 'read-write';

export interface AccessKeyGrant {
  /** A bucket name, or '*' for every bucket. */
  bucket: string;
  permission: Permission;
}

export interface AccessKeyInfo {
  accessKeyId: string;
  grants: AccessKeyGrant[];
  /** The IoT data plane (HTTP) serves this key as this thing, under the thing's broker policy. */
  thing?: string;
  description?: string;
  /** Set on the keys the daemon made for its own consumers (e.g. 'functions'). */
  service?: string;
  createdAt: number;
}

export interface AccessKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

interface KeyRow {
  access_key_id: string;
  secret: string;
  grants: string;
  thing: string | null;
  description: string | null;
  service: string | null;
  created_at: number;
}

const migrations: Migrations = [
  // SigV4 is an HMAC keyed by the secret, so the verifier needs the secret itself: unlike
  // passwords it cannot be stored hashed (AWS keeps it retrievable too). The database file is 0600.
  `CREATE TABLE access_keys (
     access_key_id TEXT PRIMARY KEY,
     secret TEXT NOT NULL,
     grants TEXT NOT NULL,
     description TEXT,
     service TEXT UNIQUE,
     created_at INTEGER NOT NULL
   )`,
  'ALTER TABLE access_keys ADD COLUMN thing TEXT',
];

const FULL_ACCESS: AccessKeyGrant[] = [{ bucket: '*', permission: 'read-write' }];
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** An id shaped like AWS's (20 upper-case characters) so SDKs and tools that check the form accept it. */
function newAccessKeyId(): string {
  let id = 'AKIA';
  for (let i = 0; i < 16; i++) id += BASE32[randomInt(BASE32.length)];
  return id;
}

/** 40 characters, as AWS secrets are. */
function newSecret(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'B');
}

/**
 * Access keys of the AWS-compatible APIs (S3, IoT data plane), kept in SQLite and cached in
 * memory: every signed request looks its key up, and there are few keys.
 */
export class AccessKeys {
  private readonly keys = new Map<string, KeyRow>();
  private readonly creatingServiceKeys = new Map<string, Promise<KeyRow>>();

  constructor(private readonly store: Store) {
    store.migrate('auth', migrations);
    for (const row of store.db.prepare('SELECT * FROM access_keys').all() as KeyRow[]) this.keys.set(row.access_key_id, row);
  }

  /** The secret is returned once, here. */
  async create(grants: AccessKeyGrant[], options: { description?: string; thing?: string } = {}): Promise<AccessKeyPair & AccessKeyInfo> {
    const row = await this.insert({ grants: JSON.stringify(grants), description: options.description ?? null, thing: options.thing ?? null, service: null });
    return { ...infoOf(row), secretAccessKey: row.secret };
  }

  list(): AccessKeyInfo[] {
    return [...this.keys.values()].sort((a, b) => a.created_at - b.created_at).map(infoOf);
  }

  /** False when there is no such key. */
  async remove(accessKeyId: string): Promise<boolean> {
    if (!this.keys.has(accessKeyId)) return false;
    // of two removals at once, the second finds no row
    const { changes } = await this.store.commit.run(() => this.store.db.prepare('DELETE FROM access_keys WHERE access_key_id = ?').run(accessKeyId));
    this.keys.delete(accessKeyId);
    return changes > 0;
  }

  /**
   * Deletes the keys the data plane serves as `thing` (when the thing is removed): kept, they would
   * serve a new thing of the same name, and keep their bucket grants, for whoever held them.
   */
  async removeBoundTo(thing: string): Promise<string[]> {
    const bound = [...this.keys.values()].filter((key) => key.thing === thing).map((key) => key.access_key_id);
    for (const accessKeyId of bound) await this.remove(accessKeyId);
    return bound;
  }

  secretOf(accessKeyId: string): string | undefined {
    return this.keys.get(accessKeyId)?.secret;
  }

  allows(accessKeyId: string, bucket: string, action: 'read' | 'write'): boolean {
    const row = this.keys.get(accessKeyId);
    if (!row) return false;
    const grants = row.service ? FULL_ACCESS : JSON.parse(row.grants) as AccessKeyGrant[];
    return grants.some((grant) => (grant.bucket === '*' || grant.bucket === bucket) && (action === 'read' || grant.permission === 'read-write'));
  }

  /** Whether the key may change buckets themselves (delete them, set their notifications, lifecycle, …): read-write on every bucket. */
  administersBuckets(accessKeyId: string): boolean {
    return this.allows(accessKeyId, '*', 'write');
  }

  /** What the IoT data plane serves a key as: a thing (under its policy), the daemon's own consumer (everything), or nothing. */
  dataPlaneIdentity(accessKeyId: string): { thing: string } | { service: string } | undefined {
    const row = this.keys.get(accessKeyId);
    if (row?.service) return { service: row.service };
    if (row?.thing) return { thing: row.thing };
    return undefined;
  }

  /** The key of one of the daemon's own consumers (e.g. 'functions'), created on first use and kept; full access. */
  async serviceKey(name: string): Promise<AccessKeyPair> {
    let row = [...this.keys.values()].find((key) => key.service === name);
    if (!row) {
      let creating = this.creatingServiceKeys.get(name);
      if (!creating) {
        creating = this.insert({ grants: JSON.stringify(FULL_ACCESS), description: `used by outpostd's ${name}`, thing: null, service: name })
          .finally(() => this.creatingServiceKeys.delete(name));
        this.creatingServiceKeys.set(name, creating);
      }
      row = await creating;
    }
    return { accessKeyId: row.access_key_id, secretAccessKey: row.secret };
  }

  private async insert(fields: Pick<KeyRow, 'grants' | 'description' | 'thing' | 'service'>): Promise<KeyRow> {
    const row: KeyRow = { access_key_id: newAccessKeyId(), secret: newSecret(), created_at: Date.now(), ...fields };
    await this.store.commit.run(() => this.store.db.prepare(`INSERT INTO access_keys (access_key_id, secret, grants, description, thing, service, created_at)
      VALUES (@access_key_id, @secret, @grants, @description, @thing, @service, @created_at)`).run(row));
    this.keys.set(row.access_key_id, row);
    return row;
  }
}

function infoOf(row: KeyRow): AccessKeyInfo {
  return {
    accessKeyId: row.access_key_id,
    grants: JSON.parse(row.grants) as AccessKeyGrant[],
    ...(row.thing ? { thing: row.thing } : {}),
    ...(row.description ? { description: row.description } : {}),
    ...(row.service ? { service: row.service } : {}),
    createdAt: row.created_at,
  };
}
