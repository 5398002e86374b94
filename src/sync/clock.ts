import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

/**
 * The sync agent's two clocks. Ages (TTL, maxAgeSeconds, "oldest item") use `monotonicMs`:
 * CLOCK_MONOTONIC counts from this boot of the board and never jumps with NTP or a missing RTC,
 * so it is comparable across restarts of outpostd within one boot id. The wall clock is only
 * shown to people (and put in envelopes), never compared.
 */
export interface SyncClock {
  /** /proc/sys/kernel/random/boot_id: changes on every boot, so monotonic times of different boots are never compared. */
  bootId: string;
  monotonicMs(): number;
  wallMs(): number;
}

/**
 * For the tests only (faketime is not available): `OUTPOST_TEST_WALL_CLOCK_OFFSET_MS` shifts the
 * wall clock the sync agent sees, showing that ages do not depend on it; `OUTPOST_TEST_BOOT_ID`
 * stands for a reboot of the board between two runs.
 */
export function systemClock(env: NodeJS.ProcessEnv = process.env): SyncClock {
  const offset = Number(env.OUTPOST_TEST_WALL_CLOCK_OFFSET_MS ?? 0) || 0;
  return {
    bootId: env.OUTPOST_TEST_BOOT_ID || readBootId(),
    monotonicMs: () => Number(process.hrtime.bigint() / 1_000_000n),
    wallMs: () => Date.now() + offset,
  };
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // Not Linux: a fresh id per process, so ages restart at each start instead of being misread.
    return `process-${randomUUID()}`;
  }
}
