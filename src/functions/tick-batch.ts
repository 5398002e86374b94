import type { GroupCommit } from '../store/group-commit.js';

/**
 * Writes of one kind asked for during one tick, run as a single group-commit write: the group commit
 * wraps each write in a savepoint of its own, which costs more than a small INSERT or DELETE, so a
 * burst of thousands of events pays one savepoint per tick instead of one per event. The writes of
 * a batch commit or fail together (a failure rejects every promise of the batch and changes nothing).
 */
export class TickBatch<T, R> {
  private current: { items: T[]; done: Promise<R[]> } | undefined;

  constructor(private readonly commit: GroupCommit, private readonly write: (items: T[]) => R[]) {}

  /** Resolves with this item's result once its batch is committed. */
  add(item: T): Promise<R> {
    let batch = this.current;
    if (!batch) {
      const items: T[] = [];
      const done = this.commit.run(() => {
        // From here on, new items go to the next batch.
        if (this.current?.items === items) this.current = undefined;
        return this.write(items);
      });
      batch = this.current = { items, done };
    }
    const index = batch.items.push(item) - 1;
    return batch.done.then((results) => results[index]);
  }
}
