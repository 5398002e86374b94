/** A set of buffers lent to one body, and how to return it once nothing reads into or writes from it any more. */
export interface LentBuffers {
  buffers: Buffer[];
  giveBack(): void;
}

/** Kept sets are let go after this long without a body: an idle gateway holds none. */
const IDLE_SETS_MS = 10_000;

/**
 * Sets of buffers that large bodies stream through, lent to `pooled` bodies at a time and kept for
 * the next ones: back-to-back transfers reuse the same memory instead of leaving a set each for
 * the collector (or, shared with a thread, for that thread's collector too). Bodies beyond
 * `pooled` at once get a set from `overflow`, not kept, so memory stays bounded by what they
 * choose.
 */
export class BufferSets {
  private readonly idle: Buffer[][] = [];
  private lent = 0;
  private letGo: NodeJS.Timeout | undefined;

  constructor(private readonly pooled: number, private readonly make: () => Buffer[], private readonly overflow: () => Buffer[] = make) {}

  lend(): LentBuffers {
    if (this.lent >= this.pooled) return { buffers: this.overflow(), giveBack: () => undefined };
    this.lent++;
    const buffers = this.idle.pop() ?? this.make();
    return {
      buffers,
      giveBack: () => {
        this.lent--;
        this.idle.push(buffers);
        clearTimeout(this.letGo);
        this.letGo = setTimeout(() => { this.idle.length = 0; }, IDLE_SETS_MS).unref();
      },
    };
  }
}
