import type { Client } from 'aedes';
import type { BoundPolicy } from './policy.js';

/** What the broker knows about one authenticated connection. */
export interface Session {
  /** The thing the connection authenticated as; null for an anonymous client. */
  thing: string | null;
  policy: BoundPolicy;
  address: string;
  since: number;
  via: 'password' | 'certificate' | 'anonymous';
  /**
   * Whether the client was ever granted a filter starting with `+` or `#`, the only kind that can
   * match a `$` topic wrongly (MQTT-4.7.2-1). Set, never cleared: a stale true costs a check, not
   * correctness.
   */
  leadingWildcard?: boolean;
}

/** Sessions by aedes client, kept beside aedes' own state so both go away together. */
export class Sessions {
  private readonly byClient = new WeakMap<Client, Session>();
  /** Zero-length client id with clean session 0, noticed in preConnect (aedes replaces the id before authenticate). */
  readonly emptyPersistentIds = new WeakSet<Client>();

  set(client: Client, session: Session): void {
    this.byClient.set(client, session);
  }

  get(client: Client | null | undefined): Session | undefined {
    return client ? this.byClient.get(client) : undefined;
  }
}

export function remoteAddress(client: Client): string {
  const conn = client.conn as { remoteAddress?: string; remotePort?: number; _socket?: { remoteAddress?: string; remotePort?: number } };
  const socket = conn.remoteAddress ? conn : conn._socket;
  return socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unknown';
}
