import { readdirSync } from 'node:fs';
import { eventually } from './eventually.js';

/** The threads of process `pid` now. */
export function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

/** The thread count of process `pid` once it has not changed for 500 ms (threads starting or ending have done so). */
export function steadyThreadCount(pid: number, timeoutMs = 20_000): Promise<number> {
  return eventually(async () => {
    const count = threadCount(pid);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return threadCount(pid) === count ? count : undefined;
  }, timeoutMs);
}
