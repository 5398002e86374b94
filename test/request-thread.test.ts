import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
// The built modules: a RequestThread starts its worker from a built file beside it.
import { ContentHashes } from '../dist/objects/content-hash.js';
import { objectsThread } from '../dist/objects/objects-thread.js';

/** The MD5 of `data` as the objects thread computes it, from shared memory as the store hands it. */
async function hashInThread(hashes: ContentHashes, data: Buffer): Promise<string> {
  const shared = new Uint8Array(new SharedArrayBuffer(data.length));
  shared.set(data);
  const body = hashes.body();
  await body.update(shared);
  return (await body.digest()).toString('hex');
}

describe('a worker thread answering requests (RequestThread)', () => {
  it('serves a request made while the thread before it is ending: that one\'s exit fails only its own requests', async () => {
    const thread = objectsThread();
    const hashes = new ContentHashes(thread);
    const first = randomBytes(4096);
    expect(await hashInThread(hashes, first)).toBe(createHash('md5').update(first).digest('hex'));
    // the thread ends (as after its idle time) and the next request starts another before the first's exit
    const ending = thread.stop();
    const second = randomBytes(4096);
    const answered = hashInThread(hashes, second);
    await ending;
    expect(await answered).toBe(createHash('md5').update(second).digest('hex'));
    await thread.stop();
  });
});
