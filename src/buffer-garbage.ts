import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Large buffers made and dropped in a stream — request body chunks written out, retained payloads
 * read from SQLite and sent — are freed by V8 only when its external-memory heuristics call for a
 * collection. Every socket read of a request body reaches JavaScript as a new ArrayBuffer of up to 64 KiB
 * (Node's HTTP parser copies the body out of its one read buffer), dead as soon as it is copied
 * out. V8 frees such buffers only when its external-memory heuristics call for a collection: about
 * 32 MiB of them piled up during a large upload (bench/objects, --trace-gc, when each was an mmap
 * of its own). A minor GC after every few MiB of body frees them while they are few (a median
 * 0.8 ms each in bench/objects). With the board profiles' malloc threshold above 64 KiB a 1 GiB PUT
 * grew RSS by only 2.3-2.7 MiB without it, but cost more CPU (6.0-7.1 against 5.2-5.3 ms/MiB):
 * the collections V8 chose instead were the larger ones.
 *
 * Every MiB rather than every 4: small reads (the AWS CLI sends its bodies in 8 KiB writes) land in
 * malloc's main heap, and what is still in use when it grows keeps it from shrinking. Through three
 * rounds of `aws s3 cp` of 64 MiB (bench/objects/aws-cli-rss.mjs) its heap peaked at 11-16 instead
 * of 15-24 MiB and RSS at 102-106 instead of 106-110 MiB, for the same CPU per MiB (4.5-4.8 ms in
 * run.mjs; every 512 KiB cost 5 % more).
 */
const COLLECT_EVERY_BYTES = 1024 * 1024;

let uncollected = 0;
/** Made on the first collection: a daemon that never moves a large body keeps no extra context. */
let collect: NodeJS.GCFunction | undefined;

/** Counts `bytes` of buffers just dropped (every stream together): a minor GC once they add up to COLLECT_EVERY_BYTES. */
export function collectBufferGarbage(bytes: number): void {
  uncollected += bytes;
  if (uncollected < COLLECT_EVERY_BYTES) return;
  uncollected = 0;
  (collect ??= exposedGc())({ type: 'minor' });
}

/**
 * A full collection now, for a thread about to rest with large garbage: V8 collects a heap as it
 * allocates, so one that stops allocating keeps what it dropped last (a function environment, the
 * 6 MB answer and the value it was made of: ~12 MB for each warm environment until its next use).
 */
export function collectAllGarbage(): void {
  (collect ??= exposedGc())({ type: 'major' });
}

/**
 * V8's gc(): the global one when node runs with --expose-gc, else one from a context made while
 * the flag was briefly on, so the daemon's own globals (and contexts made later) do not get it.
 */
function exposedGc(): NodeJS.GCFunction {
  if (globalThis.gc) return globalThis.gc;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as NodeJS.GCFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
