import { RequestThread } from '../request-thread.js';
import type { ContentHashReply, ContentHashRequest } from './content-hash-worker.js';
import type { ShareCopyReply, ShareCopyRequest } from './share-copy-worker.js';

export type ObjectsThreadRequest = ContentHashRequest | ShareCopyRequest;
export type ObjectsThread = RequestThread<ObjectsThreadRequest, ContentHashReply & ShareCopyReply>;

/**
 * The object store's worker thread (objects-thread-worker.ts): hashes large bodies (ContentHashes)
 * and writes share copies (ShareFileCalls), started on the first request and ended when idle. One
 * thread for both: a second cost another ~6 MB whenever large and small bodies came within its idle
 * time of each other. Their requests take turns in it: a batch of copies (BATCH in share-copies.ts,
 * ~60 µs each) holds a large body's next hash update for that long.
 */
export function objectsThread(): ObjectsThread {
  return new RequestThread(new URL('./objects-thread-worker.js', import.meta.url), { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 });
}
