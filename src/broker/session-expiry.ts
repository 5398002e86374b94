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

  /** A CONNECT for `clientId` arrived: its session is not away, whatever the login's outcome. */
  arrived(clientId: string): void {
    this.awaySince.delete(clientId);
  }

  /** A connection of `clientId` closed; if nobody else holds the id now, its session (if any) is away from now on. */
  left(clientId: string): void {
    if (this.expiryMs === 0 || this.present(clientId) || !this.sessions.holdsSession(clientId)) return;
    this.awaySince.set(clientId, steadyNow());
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
