/**
 * One holder at a time per key, in arrival order: an object's metadata commit and the rename of
 * its content, and a reader's look at both, never interleave. Entries go when their queue empties.
 */
export class KeyLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether someone holds or waits for the key. */
  held(key: string): boolean {
    return this.tails.has(key);
  }

  async with<T>(key: string, critical: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await critical();
    } finally {
      release();
    }
  }

  /** Resolves once the key is held, with the function that lets it go (for holders of several keys at once). */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const tail = new Promise<void>((resolve) => { release = resolve; });
    this.tails.set(key, tail);
    if (previous) await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
