/**
 * Milliseconds of the wall clock as it read when the daemon started, advanced since then by the
 * monotonic clock. A board without a real-time clock starts on a stale time and NTP steps it later,
 * by hours or years: due times and ages taken with this clock are not moved by such a step while
 * the daemon runs. (Across a restart it is the wall clock again: what was stored is compared to it.)
 */
const wallAtStart = Date.now();
const monotonicAtStart = performance.now();

export function steadyNow(): number {
  return wallAtStart + (performance.now() - monotonicAtStart);
}

/** The longest delay Node's timers take (about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
