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
  /** The filters the connection holds (granted, not unsubscribed): bounded by mqtt.maxSubscriptionsPerClient. */
  filters: Set<string>;
}

/** Sessions by aedes client, kept beside aedes' own state so both go away together. */
export class Sessions {
  private readonly byClient = new WeakMap<Client, Session>();
  /** Zero-length client id with clean session 0, noticed in preConnect (aedes replaces the id before authenticate). */
  readonly emptyPersistentIds = new WeakSet<Client>();
  /** Filters held by connected clients, all sessions together: each costs ~1 KiB of heap in aedes' router. */
  liveFilters = 0;
  /**
   * The connections of each thing, so that a change to the thing reaches the connections already
   * admitted; under null the anonymous ones.
   */
  private readonly byThing = new Map<string | null, Set<Client>>();
  /** Connections whose socket closed: a login that completes after it is not indexed (it would never leave byThing). */
  private readonly gone = new WeakSet<Client>();

  set(client: Client, session: Session): void {
    this.byClient.set(client, session);
    if (this.gone.has(client)) return;
    let clients = this.byThing.get(session.thing);
    if (!clients) this.byThing.set(session.thing, clients = new Set());
    clients.add(client);
  }

  /** The connections admitted as `thing` and still open (those that logged in `via` one way, when given). */
  ofThing(thing: string, via?: Session['via']): Client[] {
    return [...this.byThing.get(thing) ?? []].filter((client) => via === undefined || this.byClient.get(client)?.via === via);
  }

  /** The anonymous connections still open. */
  anonymous(): Client[] {
    return [...this.byThing.get(null) ?? []];
  }

  get(client: Client | null | undefined): Session | undefined {
    return client ? this.byClient.get(client) : undefined;
  }

  addFilter(session: Session, filter: string): void {
    if (session.filters.has(filter)) return;
    session.filters.add(filter);
    this.liveFilters++;
  }

  removeFilters(client: Client, filters: readonly string[]): void {
    const session = this.byClient.get(client);
    for (const filter of filters) if (session?.filters.delete(filter)) this.liveFilters--;
  }

  /** The connection closed: its filters leave aedes' router (a persistent session's stay in the store's). */
  closed(client: Client): void {
    this.gone.add(client);
    const session = this.byClient.get(client);
    if (!session) return;
    const clients = this.byThing.get(session.thing);
    clients?.delete(client);
    if (clients?.size === 0) this.byThing.delete(session.thing);
    this.liveFilters -= session.filters.size;
    session.filters.clear();
  }
}

export function remoteAddress(client: Client): string {
  const conn = client.conn as { remoteAddress?: string; remotePort?: number; _socket?: { remoteAddress?: string; remotePort?: number } };
  const socket = conn.remoteAddress ? conn : conn._socket;
  return socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unknown';
}
