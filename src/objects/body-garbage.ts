import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Every socket read of a request body reaches JavaScript as a new ArrayBuffer of up to 64 KiB
 * (Node's HTTP parser copies the body out of its one read buffer), dead as soon as it is written.
 * V8 frees such buffers only when its external-memory heuristics call for a collection: about
 * 32 MiB of them pile up during a large upload (bench/objects, --trace-gc), each one an mmap of
 * its own where a board profile sets MALLOC_MMAP_THRESHOLD_ to 64 KiB. A minor GC after every
 * few MiB of body frees them while they are few (a median 0.8 ms each in bench/objects).
 */
const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

/** V8's gc(), taken from a context made while --expose-gc was on, without exposing it to the daemon's own globals. */
const collect = (() => {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as (options: { type: 'minor' }) => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
})();

let uncollected = 0;

/** Counts `bytes` of request body written out (every upload together): a minor GC once they add up to COLLECT_EVERY_BYTES. */
export function collectBodyGarbage(bytes: number): void {
  uncollected += bytes;
  if (uncollected < COLLECT_EVERY_BYTES) return;
  uncollected = 0;
  collect({ type: 'minor' });
}
