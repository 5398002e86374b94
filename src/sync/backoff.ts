/**
 * Full jitter: a wait drawn uniformly from [min, min(max, min·2ⁿ)] after the n-th failure in a row
 * (n ≥ 1). Already the first wait is spread over [min, 2·min]: gateways that lost the same broker
 * at the same moment do not all come back at the same moment.
 */
export function fullJitterMs(min: number, max: number, failuresInARow: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(Math.max(1, failuresInARow), 30));
  return min + Math.random() * (ceiling - min);
}

export interface BackoffLimits {
  minMs: number;
  /** The longest wait after a failure that may heal by itself (no answer, busy, restarting). */
  maxMs: number;
  /**
   * The longest wait after a refusal that no retry heals (not authorised, a wrong key): only the
   * operator can, and trying again at `maxMs` would spend a metered uplink and fill the log meanwhile.
   */
  refusedMaxMs: number;
}

/**
 * The retry schedule of one loop: failures in a row, full jitter between attempts (the AWS SDKs'
 * standard retry strategy), started again from `minMs` after a success, and when the next attempt
 * is due while one waits (wall clock, for the status).
 */
export class Backoff {
  private failures = 0;
  private nextAttemptMs: number | null = null;

  constructor(private readonly limits: BackoffLimits, private readonly wallMs: () => number) {}

  /** One more failure in a row; the wait before the next attempt. */
  failed(refused: boolean): number {
    const { minMs, maxMs, refusedMaxMs } = this.limits;
    // never below minMs, whatever the caps say (shadow sync's minimum is its own)
    const wait = fullJitterMs(minMs, Math.max(minMs, refused ? Math.max(maxMs, refusedMaxMs) : maxMs), ++this.failures);
    this.nextAttemptMs = this.wallMs() + wait;
    return wait;
  }

  /** The wait is over: the attempt is being made. */
  attempting(): void {
    this.nextAttemptMs = null;
  }

  succeeded(): void {
    this.failures = 0;
    this.nextAttemptMs = null;
  }

  /** The ISO time of the next attempt, null while none waits. */
  get nextAttempt(): string | null {
    return this.nextAttemptMs === null ? null : new Date(this.nextAttemptMs).toISOString();
  }
}
