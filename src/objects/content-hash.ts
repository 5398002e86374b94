import { RequestThread } from './request-thread.js';
import type { ContentHashReply, ContentHashRequest } from './content-hash-worker.js';

/** The MD5 of one body, computed in the content hash thread from memory shared with it. */
export interface BodyHash {
  /** Hashes `chunk`, a view of shared memory; resolves once the thread is done with it (it may be refilled). */
  update(chunk: Uint8Array): Promise<void>;
  digest(): Promise<Buffer>;
  /** The body failed: its state in the thread goes. */
  discard(): void;
}

/**
 * The thread hashing large bodies (content-hash-worker.ts), started on the first and ended when
 * idle: ~3 MB while it runs. Bodies hashed at the same time take turns in it, each in order.
 */
export class ContentHashThread {
  private readonly thread = new RequestThread<ContentHashRequest, ContentHashReply>(new URL('./content-hash-worker.js', import.meta.url),
    { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 });
  private nextBody = 1;

  body(): BodyHash {
    const body = this.nextBody++;
    return {
      update: async (chunk) => {
        await this.thread.request({ kind: 'update', body, memory: chunk.buffer as SharedArrayBuffer, offset: chunk.byteOffset, bytes: chunk.byteLength });
      },
      digest: async () => {
        const { md5 } = await this.thread.request({ kind: 'digest', body });
        return Buffer.from(md5!.buffer, md5!.byteOffset, md5!.byteLength);
      },
      discard: () => this.thread.tell({ kind: 'discard', body }),
    };
  }

  stop(): Promise<void> {
    return this.thread.stop();
  }
}
