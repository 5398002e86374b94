/** A set of buffers lent to one body, and how to return it once nothing reads into or writes from it any more. */
export interface LentBuffers {
  buffers: Buffer[];
  giveBack(): void;
}

/** Kept memory is let go after this long without a body: an idle gateway holds none. */
const IDLE_SLABS_MS = 10_000;

/** The unit of kept memory: every pooled set is cut from slabs of this size. */
export const SLAB_BYTES = 1024 * 1024;

/**
 * Slabs no set uses now, shared by every BufferSets: uploads and downloads that take turns reuse
 * the same memory (an `aws s3 cp` up, then down, then up again held both kinds of sets at once).
 * Shared memory, so that a set may be hashed in a thread. Only slabs of sets given back come here:
 * never more than the pooled sets of every BufferSets hold at once.
 */
const idleSlabs: SharedArrayBuffer[] = [];
let letGo: NodeJS.Timeout | undefined;

function takeSlab(): SharedArrayBuffer {
  return idleSlabs.pop() ?? new SharedArrayBuffer(SLAB_BYTES);
}

function keepSlabs(slabs: SharedArrayBuffer[]): void {
  idleSlabs.push(...slabs);
  clearTimeout(letGo);
  letGo = setTimeout(() => { idleSlabs.length = 0; }, IDLE_SLABS_MS).unref();
}

/**
 * Sets of `count` buffers of `bytes` that large bodies stream through, lent to `pooled` bodies at
 * a time and cut from kept slabs: back-to-back transfers reuse the same memory instead of leaving
 * a set each for the collector (or, shared with a thread, for that thread's collector too). Bodies
 * beyond `pooled` at once get a set from `overflow`, not kept, so memory stays bounded by what
 * they choose.
 */
export class BufferSets {
  private lent = 0;

  constructor(private readonly pooled: number, private readonly count: number, private readonly bytes: number, private readonly overflow: () => Buffer[]) {
    if (bytes > SLAB_BYTES || SLAB_BYTES % bytes !== 0) throw new Error(`buffers of ${bytes} bytes do not divide a slab`);
  }

  lend(): LentBuffers {
    if (this.lent >= this.pooled) return { buffers: this.overflow(), giveBack: () => undefined };
    this.lent++;
    const perSlab = SLAB_BYTES / this.bytes;
    const slabs = Array.from({ length: Math.ceil(this.count / perSlab) }, takeSlab);
    const buffers = Array.from({ length: this.count }, (_, i) => Buffer.from(slabs[Math.floor(i / perSlab)], (i % perSlab) * this.bytes, this.bytes));
    return {
      buffers,
      giveBack: () => {
        this.lent--;
        keepSlabs(slabs);
      },
    };
  }
}
