import type { ContentHashRequest } from './content-hash-worker.js';
import type { ObjectsThread } from './objects-thread.js';

/** The MD5 of one body, computed in the objects thread from memory shared with it. */
export interface BodyHash {
  /** Hashes `chunk`, a view of shared memory; resolves once the thread is done with it (it may be refilled). */
  update(chunk: Uint8Array): Promise<void>;
  digest(): Promise<Buffer>;
  /** The body failed: its state in the thread goes. */
  discard(): void;
}

/**
 * Large bodies hashed in the objects thread (content-hash-worker.ts). Bodies hashed at the same time
 * take turns in it, each in order.
 */
export class ContentHashes {
  /**
   * Bodies from `body()` to their digest or discard. Their running hashes live in the thread, so it
   * is not ended while one is open, however slowly its body comes (a sender pausing for more than the
   * thread's idle time would otherwise get the MD5 of what came after the pause only).
   */
  private open = 0;
  private nextBody = 1;

  constructor(private readonly thread: ObjectsThread) {
    thread.holdWhile(() => this.open > 0);
  }

  body(): BodyHash {
    const body = this.nextBody++;
    this.open++;
    let closed = false;
    const close = () => {
      if (!closed) this.open--;
      closed = true;
    };
    let generation: number | undefined;
    // one thread holds the body's running hash: if it died, one started since has not seen the body's start
    const ask = (request: ContentHashRequest) => {
      const answered = this.thread.request(request);
      generation ??= this.thread.generation;
      if (generation === this.thread.generation) return answered;
      answered.catch(() => undefined);
      return Promise.reject(new Error('the content hash thread ended during the body; its MD5 cannot be known'));
    };
    return {
      update: async (chunk) => {
        await ask({ kind: 'update', body, memory: chunk.buffer as SharedArrayBuffer, offset: chunk.byteOffset, bytes: chunk.byteLength });
      },
      digest: async () => {
        try {
          const { md5 } = await ask({ kind: 'digest', body });
          return Buffer.from(md5!.buffer, md5!.byteOffset, md5!.byteLength);
        } finally {
          close();
        }
      },
      discard: () => {
        close();
        this.thread.tell({ kind: 'discard', body });
      },
    };
  }
}
