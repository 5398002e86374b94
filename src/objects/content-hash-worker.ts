// The MD5 (the ETag) of large bodies, in the objects thread (objects-thread-worker.ts): at ~500 MB/s
// on one core here it took two thirds of the event loop's time during a large PUT, which now reads
// the socket and writes the file while this thread hashes. Only Node's built-ins are loaded.
import { createHash, type Hash } from 'node:crypto';
import type { ThreadReply } from '../request-thread.js';

export type ContentHashRequest =
  /** The next `bytes` of body `body`, at `offset` in memory shared with the event loop (not to be changed until answered). */
  | { kind: 'update'; body: number; memory: SharedArrayBuffer; offset: number; bytes: number }
  /** The MD5 of everything body `body` was updated with; its state is gone afterwards. */
  | { kind: 'digest'; body: number }
  /** Forgets body `body` (a failed upload). */
  | { kind: 'discard'; body: number };

export type ContentHashReply = ThreadReply & { md5?: Uint8Array };

const hashes = new Map<number, Hash>();

export function answerContentHash(request: ContentHashRequest): { reply: Omit<ContentHashReply, 'id'> } | void {
  if (request.kind === 'update') {
    let hash = hashes.get(request.body);
    if (!hash) hashes.set(request.body, (hash = createHash('md5')));
    hash.update(new Uint8Array(request.memory, request.offset, request.bytes));
    return;
  }
  const hash = hashes.get(request.body);
  hashes.delete(request.body);
  if (request.kind === 'digest') {
    const md5 = (hash ?? createHash('md5')).digest();
    return { reply: { md5 } };
  }
}
