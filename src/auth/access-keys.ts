import type { Store } from '../store/store.js';

export type Permission = 'read' | 'read-write';

export interface AccessKeyGrant {
  /** A bucket name, or '*' for every bucket. */
  bucket: string;
  permission: Permission;
}

export interface AccessKeyInfo {
  accessKeyId: string;
  grants: AccessKeyGrant[];
  description?: string;
  createdAt: number;
}

export interface AccessKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Access keys of the AWS-compatible APIs (S3, IoT data plane), kept in SQLite. */
export class AccessKeys {
  constructor(_store: Store) {}

  /** The secret is returned once, here. */
  create(_grants: AccessKeyGrant[], _description?: string): Promise<AccessKeyPair & AccessKeyInfo> {
    throw new Error('not implemented');
  }

  list(): AccessKeyInfo[] {
    return [];
  }

  remove(_accessKeyId: string): Promise<boolean> {
    throw new Error('not implemented');
  }

  secretOf(_accessKeyId: string): string | undefined {
    return undefined;
  }

  allows(_accessKeyId: string, _bucket: string, _action: 'read' | 'write'): boolean {
    return false;
  }

  /** The key of one of the daemon's own consumers (e.g. 'functions'), created on first use and kept; full access. */
  serviceKey(_name: string): Promise<AccessKeyPair> {
    throw new Error('not implemented');
  }
}
