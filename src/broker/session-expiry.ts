import { steadyNow } from '../steady-clock.js';

export interface ExpiringSessions {
  /** The client ids of the persistent sessions stored. */
  storedSessionIds(): Set<string>;
  holdsSession(clientId: string): boolean;
  dropSession(clientId: string): Promise<void>;
}

/**
 * Ends persistent sessions whose client stayed away mqtt.persistentSessionExpiry seconds, as AWS
 * IoT does (1 hour by default there): otherwise the session of a device gone for good keeps its
 * filters and queues its messages on disk for ever. Time away is counted while the daemon runs,
 * on the steady clock: a clock NTP steps at boot expires no session early, and a restart counts
 * afresh from the start (never early, at worst later).
 */
export class SessionExpiry {
  /** Since when each stored session's client has been away. */
  private readonly awaySince = new Map<string, number>();
  /** The same, for sessions whose client id a CONNECT being checked names: its login may fail. */
  private readonly pausedSince = new Map<string, number>();
  /** The client id each connection's CONNECT named (aedes may not have set the client's id when it refuses one early). */
  private readonly named = new WeakMap<object, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly expiryMs: number,
    private readonly sessions: ExpiringSessions,
    /** Whether a client with this id is connected or logging in now. */
    private readonly present: (clientId: string) => boolean,
    private readonly onExpired: (clientIds: string[]) => void,
    private readonly onError: (error: Error) => void,
  ) {}

  /** Starts counting for every stored session (none of their clients is connected yet). */
  start(): void {
    if (this.expiryMs === 0) return;
    const now = steadyNow();
    for (const clientId of this.sessions.storedSessionIds()) this.awaySince.set(clientId, now);
    this.timer = setInterval(() => this.sweep(), Math.min(60_000, this.expiryMs));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A CONNECT for `clientId` arrived on `connection`: its session is not away while the login is checked. */
  arrived(connection: object, clientId: string): void {
    this.named.set(connection, clientId);
    const since = this.awaySince.get(clientId);
    if (since === undefined) return;
    this.awaySince.delete(clientId);
    this.pausedSince.set(clientId, since);
  }

  /**
   * `connection` closed; if nobody else holds its client id now, the id's session (if any) is away
   * from now on — or, when that connection was never admitted, still since it was: anyone could
   * otherwise keep another's session for ever with CONNECTs that fail.
   */
  left(connection: object, admitted: boolean): void {
    const clientId = this.named.get(connection);
    if (clientId === undefined) return;
    const paused = this.pausedSince.get(clientId);
    this.pausedSince.delete(clientId);
    if (this.expiryMs === 0 || this.present(clientId) || !this.sessions.holdsSession(clientId)) return;
    if (!admitted && this.awaySince.has(clientId)) return;
    const since = !admitted && paused !== undefined ? paused : steadyNow();
    this.awaySince.set(clientId, since);
    // overdue while logins naming it were checked: ends now, not at a sweep that may find the next one in progress
    if (since <= steadyNow() - this.expiryMs) this.sweep();
  }

  private sweep(): void {
    const due = steadyNow() - this.expiryMs;
    const expired: string[] = [];
    for (const [clientId, since] of this.awaySince) {
      if (since > due) continue;
      this.awaySince.delete(clientId);
      if (this.present(clientId) || !this.sessions.holdsSession(clientId)) continue;
      expired.push(clientId);
    }
    if (expired.length === 0) return;
    Promise.all(expired.map((clientId) => this.sessions.dropSession(clientId))).then(() => this.onExpired(expired), this.onError);
  }
}
